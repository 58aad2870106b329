// The core must stay pure and deterministic: that is what lets the simulation explore thousands of
// schedules per second and replay any of them. This test fails when src/raft/ reaches for I/O,
// clocks, global randomness or anything asynchronous.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '../../src/raft');
const files = readdirSync(root).filter((f) => f.endsWith('.ts'));

const FORBIDDEN: [RegExp, string][] = [
  [/from\s+['"]node:/, 'imports a node: module'],
  [/from\s+['"](?!\.\/)/, 'imports a package (only ./ siblings are allowed)'],
  [/\bimport\s*\(/, 'uses a dynamic import'],
  [/\brequire\s*\(/, 'uses require'],
  [/\bPromise\b/, 'uses Promise'],
  [/\basync\b/, 'uses async'],
  [/\bawait\b/, 'uses await'],
  [/\bDate\b/, 'reads the clock (Date)'],
  [/\bperformance\b/, 'reads the clock (performance)'],
  [/\bMath\.random\b/, 'uses Math.random'],
  [/\bset(Timeout|Interval|Immediate)\b/, 'uses a timer'],
  [/\bprocess\./, 'touches process'],
  [/\bqueueMicrotask\b/, 'schedules a microtask'],
  [/\bconsole\./, 'writes to the console'],
];

/** The code with comments and string contents blanked, so prose can mention forbidden words. */
function codeOnly(source: string): string {
  return source
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/\/\/.*$/gm, '')
    .replace(/`(?:\\.|[^`\\])*`/g, '``');
}

describe('src/raft is pure', () => {
  it('has files to check', () => {
    expect(files).toContain('core.ts');
  });

  for (const file of files) {
    it(`${file} does no I/O, reads no clock, and is synchronous`, () => {
      const code = codeOnly(readFileSync(join(root, file), 'utf8'));
      const problems = FORBIDDEN.filter(([pattern]) => pattern.test(code)).map(([, why]) => why);
      expect(problems).toEqual([]);
    });
  }

  it('the checker itself catches a violation', () => {
    const bad = codeOnly(
      "import { readFileSync } from 'node:fs';\nconst t = Date.now(); // Date in a comment is fine\n",
    );
    expect(FORBIDDEN.filter(([p]) => p.test(bad)).map(([, why]) => why)).toEqual([
      'imports a node: module',
      'imports a package (only ./ siblings are allowed)',
      'reads the clock (Date)',
    ]);
  });
});
