// The architecture is enforced by the linters (`npm run lint`): ESLint's per-file rules
// (eslint.config.js: the pure core, src/ ships alone, only test/ imports test/) and
// dependency-cruiser's graph rules (.dependency-cruiser.cjs: no cycles, the core imports only
// itself, src/ imports no devDependency). These tests plant violations and require the rules to
// refuse them: a rule that cannot fail is no rule.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { ESLint } from 'eslint';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const eslint = new ESLint({ cwd: ROOT });

/** The rule ids ESLint reports for `code`, as if it were the file at `file` (relative to the repository). */
async function ruleIds(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: path.join(ROOT, file) });
  return (result?.messages ?? []).map((m) => `${m.ruleId ?? 'parse'}: ${m.message}`);
}

describe('ESLint: the pure core and the layering', () => {
  it('src/raft may not import a Node module, a package, or anything of src/ outside it', async () => {
    const messages = await ruleIds(
      'src/raft/core.ts',
      "import { readFileSync } from 'node:fs';\nimport { Pool } from 'undici';\nimport type { NodeStorage } from '../storage/node-storage.js';\nimport { assert } from './assert.js';\n" +
        'export const x = [readFileSync, Pool, assert] as unknown as NodeStorage;\n',
    );
    expect(messages.filter((m) => m.startsWith('no-restricted-imports'))).toHaveLength(3);
  });

  it('src/raft may not read a clock, set a timer, draw Math.random or be asynchronous', async () => {
    const messages = await ruleIds(
      'src/raft/core.ts',
      [
        'export const now = Date.now();',
        'export const r = Math.random();',
        'setTimeout(() => undefined, 1);',
        'export async function f(): Promise<void> { await Promise.resolve(); }',
        'console.log(now, r);',
      ].join('\n') + '\n',
    );
    const rules = messages.map((m) => m.slice(0, m.indexOf(':')));
    expect(rules).toEqual(expect.arrayContaining(['no-restricted-globals', 'no-restricted-syntax']));
    expect(messages.some((m) => m.includes('no clock'))).toBe(true);
    expect(messages.some((m) => m.includes('seeded PRNG'))).toBe(true);
    expect(messages.some((m) => m.includes('no async functions'))).toBe(true);
    expect(messages.some((m) => m.includes('the driver logs'))).toBe(true);
  });

  it('the real core passes the same rules', async () => {
    const results = await eslint.lintFiles([path.join(ROOT, 'src/raft')]);
    expect(results.flatMap((r) => r.messages.map((m) => `${r.filePath}: ${m.ruleId} ${m.message}`))).toEqual([]);
  });

  it('src/ may not import test/ or scripts/, and scripts/ may not import test/', async () => {
    const fromSrc = await ruleIds(
      'src/api/client-api.ts',
      "import { ProcessCluster } from '../../scripts/harness/cluster/process-cluster.js';\nimport { fake } from '../../test/api/fakes.js';\nexport const x = [ProcessCluster, fake];\n",
    );
    expect(fromSrc.filter((m) => m.startsWith('no-restricted-imports'))).toHaveLength(2);
    const fromScripts = await ruleIds(
      'scripts/sim.ts',
      "import { budget } from '../test/sim/budget.js';\nexport const x = budget;\n",
    );
    expect(fromScripts.filter((m) => m.startsWith('no-restricted-imports'))).toHaveLength(1);
  });
});

describe('dependency-cruiser: cycles, the core, devDependencies', () => {
  let dir: string | undefined;
  afterAll(async () => {
    if (dir !== undefined) await fs.rm(dir, { recursive: true, force: true });
  });

  it('refuses a cycle, the core importing outside itself, and src/ importing a devDependency', async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'raftkv-depcruise-'));
    const files: Record<string, string> = {
      'package.json': JSON.stringify({ name: 'planted', type: 'module', devDependencies: { 'fast-check': '*' } }),
      'node_modules/fast-check/package.json': JSON.stringify({ name: 'fast-check', main: 'index.js' }),
      'node_modules/fast-check/index.js': 'export default {};\n',
      'src/raft/core.ts': "import { x } from '../node/driver.js';\nexport const core = x;\n",
      'src/node/driver.ts': "import { a } from './a.js';\nexport const x = a;\n",
      'src/node/a.ts': "import { b } from './b.js';\nexport const a = b;\n",
      'src/node/b.ts': "import fc from 'fast-check';\nimport { a } from './a.js';\nexport const b = [a, fc];\n",
    };
    for (const [name, text] of Object.entries(files)) {
      await fs.mkdir(path.dirname(path.join(dir, name)), { recursive: true });
      await fs.writeFile(path.join(dir, name), text);
    }
    const require = createRequire(import.meta.url);
    const config = require(path.join(ROOT, '.dependency-cruiser.cjs')) as {
      forbidden: unknown[];
      options: Record<string, unknown>;
    };
    const { cruise } = (await import('dependency-cruiser')) as unknown as {
      cruise: (
        files: string[],
        options: Record<string, unknown>,
      ) => Promise<{ output: { summary: { violations: { rule: { name: string } }[] } } }>;
    };
    const cwd = process.cwd();
    process.chdir(dir);
    let violations: string[];
    try {
      const result = await cruise(['src'], {
        ruleSet: { forbidden: config.forbidden },
        validate: true,
        tsPreCompilationDeps: true,
        enhancedResolveOptions: { extensions: ['.ts', '.js'] },
      });
      violations = result.output.summary.violations.map((v) => v.rule.name);
    } finally {
      process.chdir(cwd);
    }
    expect(new Set(violations)).toEqual(new Set(['no-cycles', 'raft-core-is-pure', 'src-no-dev-dependencies']));
  });
});
