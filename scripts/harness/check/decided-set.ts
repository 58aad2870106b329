// Memoization, part one: the set of decided operations of a configuration, as a bitset with an
// incremental hash (configuration-set.ts stores the configurations).

const FULL_WORD = 0xffffffff;

/**
 * The set of decided (linearized or dropped) operations, as a bitset in 32-bit words, with
 *  - an incremental hash: two 32-bit XORs of per-operation random keys, updated in O(1) per change;
 *  - the exact bounds of its interesting part: every word below `low` is full and every word from
 *    `high` on is empty. The search decides operations roughly in time order, so the decided set is
 *    "everything up to about here, plus a few more" and words[low..high) is a handful of words however
 *    long the history. (low, words[low..high)) identifies the set, so configurations are stored and
 *    compared by that slice only.
 */
export class DecidedSet {
  readonly words: Uint32Array;
  hashA = 0;
  hashB = 0;
  low = 0;
  high = 0;
  private readonly keysA: Uint32Array;
  private readonly keysB: Uint32Array;
  private readonly lastWordFull: number;

  /** `random` makes the per-operation hash keys; tests pass a degenerate one to force collisions. */
  constructor(size: number, random: () => number = splitMix32(0x5eed_1234)) {
    this.words = new Uint32Array(Math.ceil(size / 32));
    this.keysA = Uint32Array.from({ length: size }, random);
    this.keysB = Uint32Array.from({ length: size }, random);
    const bitsInLastWord = size % 32;
    this.lastWordFull = bitsInLastWord === 0 ? FULL_WORD : 2 ** bitsInLastWord - 1;
  }

  add(i: number): void {
    // i < size (an operation index), so w < ceil(size / 32) = words.length.
    const w = i >>> 5;
    this.words[w] = this.words[w]! | (1 << (i & 31));
    this.toggleHash(i);
    if (w + 1 > this.high) this.high = w + 1;
    while (this.low < this.words.length && this.words[this.low] === this.fullWord(this.low)) this.low++;
  }

  remove(i: number): void {
    // i < size (an operation index), so w < ceil(size / 32) = words.length.
    const w = i >>> 5;
    this.words[w] = this.words[w]! & ~(1 << (i & 31));
    this.toggleHash(i);
    if (w < this.low) this.low = w;
    while (this.high > 0 && this.words[this.high - 1] === 0) this.high--;
  }

  private toggleHash(i: number): void {
    // i < size (an operation index), and there are size keys of each kind.
    this.hashA = (this.hashA ^ this.keysA[i]!) >>> 0;
    this.hashB = (this.hashB ^ this.keysB[i]!) >>> 0;
  }

  private fullWord(w: number): number {
    return w === this.words.length - 1 ? this.lastWordFull : FULL_WORD;
  }
}

/** A deterministic stream of 32-bit random numbers (splitmix32), so that runs are reproducible. */
function splitMix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
}
