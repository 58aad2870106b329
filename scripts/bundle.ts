// npx tsx scripts/bundle.ts (run by `npm run build` after tsc, and by the tests' global setup)
//
// Bundles the node's entry (src/main.ts and everything it imports) into one file, dist/main.js, in
// place of tsc's: a node's start was mostly module loading, about 0.9 s of 1.2-1.5 s on the 2-core
// machine, most of it the hundreds of small ESM files of typebox (0.39 s to import its compiler
// alone, 0.03 s bundled). tsc still builds and type-checks all of dist/ (the CLI tools and the read
// pool's worker run from there); this only replaces the entry. It bundles from the TypeScript
// sources, not from tsc's dist/main.js: tsc's incremental build does not rewrite an unchanged
// dist/main.js, and a bundle must never be bundled again.
//
// Left out of the bundle, loaded from node_modules at run time (a production install has them):
// packages that find their own files next to their code (classic-level's native addon, piscina's
// worker, msgpackr's optional native extension, which a bundle would silently lose).
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const BUNDLE_EXTERNALS = ['classic-level', 'piscina', 'msgpackr'] as const;

/**
 * Builds `root`/dist/main.js (and its source map) from `root`/src/main.ts; tsc must have built dist/
 * first. A file whose bytes did not change is left alone; a changed one is written beside and
 * renamed over the old, so a node starting meanwhile never loads half a bundle.
 */
export async function bundleNode(root: string): Promise<void> {
  const tscBuild = createHash('sha1')
    .update(await readFile(join(root, 'dist/.tsbuildinfo')))
    .digest('hex');
  const result = await build({
    entryPoints: [join(root, 'src/main.ts')],
    outfile: join(root, 'dist/main.js'),
    write: false,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    tsconfig: join(root, 'tsconfig.build.json'),
    external: [...BUNDLE_EXTERNALS],
    // src/stale-bundle.ts: the tsc build this bundle was made after.
    define: { RAFTKV_TSC_BUILD: JSON.stringify(tscBuild) },
    // CommonJS packages inside an ESM bundle call require(): give them Node's.
    banner: {
      js: "import { createRequire as raftkvCreateRequire } from 'node:module'; const require = raftkvCreateRequire(import.meta.url);",
    },
    sourcemap: true,
    logLevel: 'warning',
  });
  for (const file of result.outputFiles) {
    const old = await readFile(file.path).catch(() => null);
    if (old !== null && Buffer.compare(old, file.contents) === 0) continue;
    await writeFile(`${file.path}.tmp`, file.contents);
    await rename(`${file.path}.tmp`, file.path);
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  await bundleNode(resolve(import.meta.dirname, '..'));
}
