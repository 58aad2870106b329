// Whether the bundled entry (dist/main.js, scripts/bundle.ts) is older than tsc's build of the rest
// of dist/. The bundle is rebuilt by `npm run build`, not by tsc: a `tsc -p tsconfig.build.json`
// (or `tsc -w`) alone leaves it as it was while dist/reads/worker.js and the CLI tools move on, and
// the main thread and the read pool's workers could then run different code. The bundle carries a
// hash of the tsc build info it was made after; a node that finds another one says so.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Defined by scripts/bundle.ts in the bundle only: the SHA-1 of dist/.tsbuildinfo when it was made. */
declare const RAFTKV_TSC_BUILD: string | undefined;

/**
 * A warning to log when this is the bundle and tsc has built dist/ again since it was made; null
 * otherwise (tsc's own entry, tsx, or a dist/ without build info, as a production install may be).
 */
export function staleBundleWarning(entryUrl: string): string | null {
  if (typeof RAFTKV_TSC_BUILD === 'undefined') return null;
  let info: Buffer;
  try {
    info = readFileSync(join(dirname(fileURLToPath(entryUrl)), '.tsbuildinfo'));
  } catch {
    return null;
  }
  if (createHash('sha1').update(info).digest('hex') === RAFTKV_TSC_BUILD) return null;
  return 'dist/main.js is older than the last tsc build of dist/: run `npm run build`, which bundles the node again';
}
