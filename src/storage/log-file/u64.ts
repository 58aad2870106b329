// The log files' 64-bit fields: big-endian, holding safe integers (below 2^53), so a JavaScript
// number reads and writes them exactly.

/** Writes `value` as a u64 at `at`; a value that is no safe non-negative integer is refused. */
export function writeU64(view: DataView, at: number, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${value} is not a u64 the log files hold`);
  view.setUint32(at, Math.floor(value / 2 ** 32));
  view.setUint32(at + 4, value >>> 0);
}

/** The u64 at `at`, or undefined when it is 2^53 or more (no field written here is). */
export function readU64(view: DataView, at: number): number | undefined {
  const high = view.getUint32(at);
  return high >= 2 ** 21 ? undefined : high * 2 ** 32 + view.getUint32(at + 4);
}
