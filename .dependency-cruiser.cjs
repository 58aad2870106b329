// dependency-cruiser: the module graph's rules (npm run lint). ESLint holds the per-file rules
// (eslint.config.js); these need the whole graph: cycles, and what a production install lacks.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-cycles',
      severity: 'error',
      comment: 'No import cycles anywhere: a cycle means two modules are one concern split badly.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'raft-core-is-pure',
      severity: 'error',
      comment: 'src/raft imports only src/raft: no Node module, no package, nothing else of src/.',
      from: { path: '^src/raft/' },
      to: { pathNot: '^src/raft/' },
    },
    {
      name: 'src-ships-alone',
      severity: 'error',
      comment: 'src/ is what ships in dist/: it imports neither test/ nor scripts/.',
      from: { path: '^src/' },
      to: { path: '^(test|scripts)/' },
    },
    {
      name: 'only-tests-import-tests',
      severity: 'error',
      comment: 'Nothing outside test/ imports test/: tools shared with tests live in scripts/harness/.',
      from: { pathNot: '^test/' },
      to: { path: '^test/' },
    },
    {
      name: 'src-no-dev-dependencies',
      severity: 'error',
      comment: 'A node runs from npm ci --omit=dev: src/ must not import a devDependency.',
      from: { path: '^src/' },
      to: { dependencyTypes: ['npm-dev'], dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'no-unresolvable',
      severity: 'error',
      comment: 'Every import resolves.',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|node_modules|\\.tmp)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.js', '.cjs', '.json'],
    },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
