// Every way of starting a node uses the same V8 heap flags: the launcher and the test harness import
// NODE_HEAP_FLAGS, and package.json's `node` script, which cannot import, must repeat them.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { NODE_HEAP_FLAGS } from '../../src/node-flags.js';

describe('node heap flags', () => {
  it("package.json's node script passes NODE_HEAP_FLAGS", () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      scripts: Record<string, string>;
    };
    const script = pkg.scripts['node'] ?? '';
    expect(script).toContain(`node ${NODE_HEAP_FLAGS.join(' ')} dist/main.js`);
  });
});
