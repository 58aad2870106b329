// Deliberately broken behaviour, for proving that the chaos runner catches real bugs. Off unless
// RAFTKV_UNSAFE_TEST_MODE names a mode; a node started with one says so loudly. Never use in
// production: each mode breaks a guarantee on purpose.

export interface UnsafeModes {
  /** Serve "linearizable" reads from local state without a ReadIndex round (stale reads). */
  readonly localReads: boolean;
  /** Answer writes as soon as they are proposed, before commit and fsync on a majority (lost writes). */
  readonly earlyAck: boolean;
}

export const SAFE: UnsafeModes = { localReads: false, earlyAck: false };

const NAMES = { 'local-reads': 'localReads', 'early-ack': 'earlyAck' } as const;

export function parseUnsafeModes(value: string | undefined): UnsafeModes {
  if (value === undefined || value.trim() === '') return SAFE;
  const modes = { ...SAFE };
  for (const name of value.split(',').map((s) => s.trim())) {
    const key = NAMES[name as keyof typeof NAMES];
    if (key === undefined)
      throw new Error(`unknown RAFTKV_UNSAFE_TEST_MODE "${name}"; known: ${Object.keys(NAMES).join(', ')}`);
    modes[key] = true;
  }
  return modes;
}
