// Bytes of LevelDB batch operations (prefixed keys, stored values), carved from shared slabs.
//
// Why: every Ready writes a prefixed key per operation and a stored value per applied put, on every
// node. `new Uint8Array(n)` costs V8 a backing-store allocation when n > 64 bytes (0.4-0.8 us on the
// benchmark machine, and a sweep and a free on a GC thread later), and a smaller array, made on the
// V8 heap, costs the same the first time its `.buffer` is needed, which classic-level's native side
// needs for every key and value it reads. A view of a slab costs about 0.05 us (BENCHMARKS.md,
// profiling step 10).
//
// Invariant: slab bytes are handed out once and never reused or written again by this module, so a
// view stays valid and unaliased for as long as anyone holds it. Holding one keeps its whole slab
// alive, so only bytes that die with their batch belong here: LevelDB copies keys and values into
// its own batch when the write is made, and nothing keeps them after.

const SLAB_BYTES = 64 * 1024;
/** Larger requests get their own allocation: one would waste most of a slab. */
const MAX_CARVED_BYTES = 4 * 1024;

let slab = new ArrayBuffer(SLAB_BYTES);
let used = 0;

/** `length` zeroed bytes for a batch operation, a view of a shared slab (see the invariant above). */
export function batchBytes(length: number): Uint8Array {
  if (length > MAX_CARVED_BYTES) return new Uint8Array(length);
  if (used + length > SLAB_BYTES) {
    slab = new ArrayBuffer(SLAB_BYTES);
    used = 0;
  }
  const out = new Uint8Array(slab, used, length);
  used += length;
  return out;
}

/** `prefix` followed by `key`, in batch bytes. */
export function prefixedBytes(prefix: Uint8Array, key: Uint8Array): Uint8Array {
  const out = batchBytes(prefix.length + key.length);
  out.set(prefix, 0);
  out.set(key, prefix.length);
  return out;
}
