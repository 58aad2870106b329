// ESLint (flat config): code rules for the whole repository, and the architecture as rules.
//
// The architecture (ARCHITECTURE.md, "Layout"):
//  - src/raft is the pure Raft core: it imports nothing outside src/raft, no Node module and no
//    package, and uses no clock, timer, randomness, Promise or I/O. That is what lets the simulation
//    explore thousands of fault schedules per second and replay any of them.
//  - src/ is what ships: it imports neither test/ nor scripts/.
//  - Only test/ imports test/.
// Import cycles and devDependencies imported from src/ are dependency-cruiser's (.dependency-cruiser.cjs).
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import tseslint from 'typescript-eslint';

/** Imports that leave src/raft, or reach a package or a Node module. */
const RAFT_IMPORTS = {
  patterns: [
    {
      regex: '^(?!\\./)',
      message:
        'src/raft is the pure core: import only its own files (./...), no package, no Node module, nothing else of src/.',
    },
  ],
};

/** What the pure core must not touch: clocks, timers, randomness, asynchrony, the process. */
const RAFT_GLOBALS = [
  ['Date', 'the core reads no clock: time is tick()'],
  ['performance', 'the core reads no clock: time is tick()'],
  ['setTimeout', 'the core sets no timer: time is tick()'],
  ['setInterval', 'the core sets no timer: time is tick()'],
  ['setImmediate', 'the core sets no timer: time is tick()'],
  ['queueMicrotask', 'the core is synchronous'],
  ['Promise', 'the core is synchronous: output is a Ready'],
  ['process', 'the core does no I/O'],
  ['console', 'the core does no I/O: the driver logs'],
  ['require', 'the core imports only its own files'],
  ['fetch', 'the core does no I/O'],
].map(([name, why]) => ({ name, message: `src/raft is pure: ${why}.` }));

const RAFT_SYNTAX = [
  {
    selector: 'FunctionDeclaration[async=true], FunctionExpression[async=true], ArrowFunctionExpression[async=true]',
    message: 'src/raft is pure: the core is synchronous (no async functions).',
  },
  { selector: 'AwaitExpression', message: 'src/raft is pure: the core is synchronous (no await).' },
  { selector: 'ImportExpression', message: 'src/raft is pure: no dynamic import.' },
  {
    selector: "MemberExpression[object.name='Math'][property.name='random']",
    message: 'src/raft is pure: randomness is the injected seeded PRNG.',
  },
];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'scripts/bench/results/**', 'chaos-runs/**', '.tmp/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // A forgotten promise is a lost error or a race; a Node server must not have them.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': [
        'error',
        { checksVoidReturn: { arguments: false, attributes: false } },
      ],
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
      '@typescript-eslint/no-non-null-assertion': 'off',
      eqeqeq: ['error', 'always', { null: 'ignore' }],
      'no-console': 'off',
    },
  },
  {
    // Only src/ must be free of `as any`; tests may reach into internals on purpose.
    files: ['src/**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { regex: '(^|/)(test|scripts)/', message: 'src/ is what ships: it imports neither test/ nor scripts/.' },
          ],
        },
      ],
    },
  },
  {
    files: ['src/raft/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', RAFT_IMPORTS],
      'no-restricted-globals': ['error', ...RAFT_GLOBALS],
      'no-restricted-syntax': ['error', ...RAFT_SYNTAX],
    },
  },
  {
    files: ['scripts/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { regex: '(^|/)test/', message: 'only test/ imports test/: shared tools live in scripts/harness/.' },
          ],
        },
      ],
    },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
  {
    files: ['**/*.js', '**/*.cjs'],
    ...tseslint.configs.disableTypeChecked,
  },
  {
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { module: 'writable', require: 'readonly' } },
  },
  prettier,
);
