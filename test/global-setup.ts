// Builds dist/ once before the tests: the end-to-end tests run the real compiled node, as users do
// (tsc's dist/, and the bundled entry dist/main.js: scripts/bundle.ts).
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { bundleNode } from '../scripts/bundle.js';

export default async function setup(): Promise<void> {
  const root = join(import.meta.dirname, '..');
  execFileSync(
    process.execPath,
    [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json')],
    {
      stdio: 'inherit',
      cwd: root,
    },
  );
  await bundleNode(root);
}
