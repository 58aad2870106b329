// Memoization, part two: the configurations (decided set, register value) the search has explored.
import type { DecidedSet } from './decided-set.js';

/**
 * A hash set of configurations (decided set, register value), stored flat in typed arrays so that
 * millions of them cost tens of bytes each and no garbage: per entry the two hashes, the value, `low`
 * and the offset of its slice of words in one shared word arena; open addressing with linear probing
 * over a power-of-two table kept at most half full. Lookups compare hashes first and words only on a
 * full hash match, so they are exact: a collision can never hide an unexplored configuration.
 */
export class ConfigurationSet {
  private table = new Int32Array(1024); // 0 = empty, else entry index + 1
  private count = 0;
  private hashA = new Uint32Array(512);
  private hashB = new Uint32Array(512);
  private state = new Int32Array(512);
  private low = new Int32Array(512);
  /** Entry i's words are arena[start[i] .. start[i + 1]). */
  private start = new Float64Array(513);
  private arena = new Uint32Array(4096);

  /** Adds (set, state) and returns true, or returns false if it was already present. */
  addIfAbsent(set: DecidedSet, state: number): boolean {
    const mask = this.table.length - 1;
    // slot is masked by table.length - 1 (a power of two minus one), so it is always in the table.
    for (let slot = slotHash(set.hashA, set.hashB, state) & mask; ; slot = (slot + 1) & mask) {
      const entry = this.table[slot]! - 1;
      if (entry < 0) {
        this.table[slot] = this.append(set, state) + 1;
        if (2 * this.count > this.table.length) this.growTable();
        return true;
      }
      if (this.matches(entry, set, state)) return false;
    }
  }

  private matches(entry: number, set: DecidedSet, state: number): boolean {
    if (this.hashA[entry] !== set.hashA || this.hashB[entry] !== set.hashB || this.state[entry] !== state) {
      return false;
    }
    // entry < count (it comes from the table), and start has room for count + 1 offsets.
    const from = this.start[entry]!;
    const length = this.start[entry + 1]! - from;
    if (this.low[entry] !== set.low || length !== set.high - set.low) return false;
    for (let i = 0; i < length; i++) {
      if (this.arena[from + i] !== set.words[set.low + i]) return false;
    }
    return true;
  }

  private append(set: DecidedSet, state: number): number {
    const entry = this.count;
    if (entry === this.hashA.length) this.growEntries();
    // start has hashA.length + 1 offsets, and entry < hashA.length once grown.
    const from = this.start[entry]!;
    const length = set.high - set.low;
    if (from + length > this.arena.length) this.arena = grown(this.arena, from + length);
    this.arena.set(set.words.subarray(set.low, set.high), from);
    this.hashA[entry] = set.hashA;
    this.hashB[entry] = set.hashB;
    this.state[entry] = state;
    this.low[entry] = set.low;
    this.start[entry + 1] = from + length;
    this.count++;
    return entry;
  }

  private growEntries(): void {
    const size = this.hashA.length * 2;
    this.hashA = grown(this.hashA, size);
    this.hashB = grown(this.hashB, size);
    this.state = grown(this.state, size);
    this.low = grown(this.low, size);
    this.start = grown(this.start, size + 1);
  }

  private growTable(): void {
    const table = new Int32Array(this.table.length * 2);
    const mask = table.length - 1;
    // entry < count <= hashA.length = hashB.length = state.length.
    for (let entry = 0; entry < this.count; entry++) {
      let slot = slotHash(this.hashA[entry]!, this.hashB[entry]!, this.state[entry]!) & mask;
      while (table[slot] !== 0) slot = (slot + 1) & mask;
      table[slot] = entry + 1;
    }
    this.table = table;
  }
}

type GrowableArray = Uint32Array | Int32Array | Float64Array;

/** A copy of `array` with room for at least `minLength` elements (doubling, to amortize). */
function grown<T extends GrowableArray>(array: T, minLength: number): T {
  let length = Math.max(array.length * 2, 16);
  while (length < minLength) length *= 2;
  const bigger = new (array.constructor as new (length: number) => T)(length);
  bigger.set(array);
  return bigger;
}

/** Mixes a configuration's hashes and value into a table index (murmur3's 32-bit finalizer). */
function slotHash(hashA: number, hashB: number, state: number): number {
  let h = hashA ^ Math.imul(hashB ^ (hashB >>> 15), 0x2c1b3c6d) ^ Math.imul(state + 1, 0x9e3779b1);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}
