// The bundled entry warns when tsc built dist/ again after it was made (src/stale-bundle.ts). The
// bundle gets RAFTKV_TSC_BUILD from esbuild's define; here it is a global, which the identifier
// resolves to just the same.
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { staleBundleWarning } from '../../src/stale-bundle.js';

const globals = globalThis as { RAFTKV_TSC_BUILD?: string };
const dirs: string[] = [];

afterEach(async () => {
  delete globals.RAFTKV_TSC_BUILD;
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

async function distWith(buildInfo: string | null): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'raftkv-dist-'));
  dirs.push(dir);
  if (buildInfo !== null) await writeFile(join(dir, '.tsbuildinfo'), buildInfo);
  return pathToFileURL(join(dir, 'main.js')).href;
}

const sha1 = (text: string): string => createHash('sha1').update(text).digest('hex');

describe('a stale bundle', () => {
  it('is told apart from the tsc build it was made after', async () => {
    const entry = await distWith('{"version":"5.9","program":1}');
    globals.RAFTKV_TSC_BUILD = sha1('{"version":"5.9","program":1}');
    expect(staleBundleWarning(entry)).toBeNull();
    globals.RAFTKV_TSC_BUILD = sha1('{"version":"5.9","program":0}');
    expect(staleBundleWarning(entry)).toMatch(/older than the last tsc build of dist\/: run `npm run build`/);
  });

  it("is never reported for tsc's own entry, or for a dist/ without build info", async () => {
    expect(staleBundleWarning(await distWith('anything'))).toBeNull();
    globals.RAFTKV_TSC_BUILD = sha1('anything');
    expect(staleBundleWarning(await distWith(null))).toBeNull();
  });
});
