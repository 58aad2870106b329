// pino-pretty when it is installed, for people watching a terminal; nothing when it is not.
//
// pino-pretty is a devDependency: a production install (`npm ci --omit=dev` plus a built dist/) has
// no pino-pretty, and a static import of it stopped every node there before it parsed its flags.
// It is loaded lazily, only by a caller that wants pretty output, and synchronously (createRequire:
// it is a CommonJS package) so a logger exists before its first line. Only a missing package is
// treated as "absent"; any other failure to load it propagates.
import { createRequire } from 'node:module';
import type PinoPretty from 'pino-pretty';

export type PinoPrettyModule = typeof PinoPretty;

const require = createRequire(import.meta.url);

/** The pino-pretty module, or null where the package is not installed. */
export function loadPinoPretty(): PinoPrettyModule | null {
  try {
    require.resolve('pino-pretty');
  } catch (error) {
    if (error instanceof Error && 'code' in error && error.code === 'MODULE_NOT_FOUND') return null;
    throw error;
  }
  return require('pino-pretty') as PinoPrettyModule;
}
