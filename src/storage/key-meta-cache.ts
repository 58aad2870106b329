// The metadata (key-meta.ts) of recently applied user keys, so that applying a put does not read
// the key back from LevelDB. Every put needs the key's current version and create index; without
// this cache that is one `getSync` per applied write on every node (BENCHMARKS.md profiling step 9).
//
// Invariant: an entry says exactly what the durable applied state holds for its key. The state
// machine fills it only from LevelDB itself (a read that missed) or from a batch that has been
// written (KvStateMachine.rememberApplied, after the synced write returned), drops a key a batch
// deleted. A snapshot install switches to another cache, filled from the received pairs as they
// were staged (KvStateMachine.rememberStaged): once installed, those pairs are the durable state.
// A key it does not hold is simply read from LevelDB.
//
// Bounded in entries and in key bytes; when full, the CLOCK algorithm evicts a key not used since
// the hand last passed it. The layout is chosen for the garbage collector: one Map from key to a
// slot number and typed arrays for the numbers, so updating a cached key allocates nothing that
// lives (an earlier cache of whole stored values made writes slower, BENCHMARKS.md step 8).

import type { KeyMeta } from './key-meta.js';

const DEFAULT_META_CACHE_ENTRIES = 65_536;
const DEFAULT_META_CACHE_KEY_BYTES = 8 * 1024 * 1024;

export class KeyMetaCache {
  private readonly slots = new Map<string, number>();
  private readonly keys: (string | undefined)[];
  private readonly createIndex: Float64Array;
  private readonly modIndex: Float64Array;
  private readonly version: Float64Array;
  /** CLOCK's reference bits: set on use, cleared as the hand passes. */
  private readonly used: Uint8Array;
  /** Empty slots, the lowest on top. */
  private readonly free: number[] = [];
  private hand = 0;
  private keyBytes = 0;

  constructor(
    private readonly maxEntries = DEFAULT_META_CACHE_ENTRIES,
    private readonly maxKeyBytes = DEFAULT_META_CACHE_KEY_BYTES,
  ) {
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1)
      throw new RangeError('maxEntries must be a positive integer');
    this.keys = new Array<string | undefined>(maxEntries).fill(undefined);
    this.createIndex = new Float64Array(maxEntries);
    this.modIndex = new Float64Array(maxEntries);
    this.version = new Float64Array(maxEntries);
    this.used = new Uint8Array(maxEntries);
    this.clear();
  }

  get size(): number {
    return this.slots.size;
  }

  /** The cached metadata of `key` (a byteKey string), or undefined when it is not cached. */
  get(key: string): KeyMeta | undefined {
    const slot = this.slots.get(key);
    if (slot === undefined) return undefined;
    this.used[slot] = 1;
    return { createIndex: this.createIndex[slot]!, modIndex: this.modIndex[slot]!, version: this.version[slot]! };
  }

  /** Records what the durable state now holds for `key`. A key longer than the byte budget is not kept. */
  set(key: string, meta: KeyMeta): void {
    let slot = this.slots.get(key);
    if (slot === undefined) {
      if (key.length > this.maxKeyBytes) return;
      while (this.free.length === 0 || this.keyBytes + key.length > this.maxKeyBytes) this.evictOne();
      slot = this.free.pop()!;
      this.slots.set(key, slot);
      this.keys[slot] = key;
      this.keyBytes += key.length;
    }
    this.createIndex[slot] = meta.createIndex;
    this.modIndex[slot] = meta.modIndex;
    this.version[slot] = meta.version;
    this.used[slot] = 1;
  }

  /** The key is gone from the durable state (or its state is no longer known). */
  delete(key: string): void {
    const slot = this.slots.get(key);
    if (slot !== undefined) this.release(slot);
  }

  clear(): void {
    this.slots.clear();
    this.keys.fill(undefined);
    this.used.fill(0);
    this.free.length = 0;
    for (let slot = this.maxEntries - 1; slot >= 0; slot--) this.free.push(slot);
    this.keyBytes = 0;
  }

  private evictOne(): void {
    // Terminates: one full turn clears every reference bit, so the second turn finds a victim.
    for (;;) {
      const slot = this.hand;
      this.hand = (this.hand + 1) % this.maxEntries;
      if (this.keys[slot] === undefined) continue;
      if (this.used[slot] === 1) {
        this.used[slot] = 0;
        continue;
      }
      this.release(slot);
      return;
    }
  }

  private release(slot: number): void {
    const key = this.keys[slot]!;
    this.slots.delete(key);
    this.keys[slot] = undefined;
    this.keyBytes -= key.length;
    this.used[slot] = 0;
    this.free.push(slot);
  }
}
