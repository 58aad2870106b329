// The term of every log entry, held in memory as runs: a Raft log's terms never decrease, and a
// term covers a run of consecutive entries, so a log of millions of entries written under a few
// hundred leaders needs a few hundred runs. `term(i)` is a binary search and never touches disk.

import { assert } from '../raft/assert.js';

export class TermIndex {
  /** runStarts[k] is the first index of run k, whose entries all have term runTerms[k]. */
  private readonly runStarts: number[] = [];
  private readonly runTerms: number[] = [];
  private last: number;

  /** An empty index whose next entry is `firstIndex`. */
  constructor(firstIndex: number) {
    this.last = firstIndex - 1;
  }

  get lastIndex(): number {
    return this.last;
  }

  get runCount(): number {
    return this.runStarts.length;
  }

  /** The term of the last entry, or undefined when the index is empty. */
  get lastTerm(): number | undefined {
    return this.runTerms[this.runTerms.length - 1];
  }

  /** Adds entry `index` (the next one) with `term`, which must not be below the last term. */
  append(index: number, term: number): void {
    assert(index === this.last + 1, () => `term index: entry ${index} does not follow ${this.last}`);
    const lastTerm = this.lastTerm;
    assert(lastTerm === undefined || term >= lastTerm, () => `term index: entry ${index} has term ${term} < ${lastTerm}`);
    if (term !== lastTerm) {
      this.runStarts.push(index);
      this.runTerms.push(term);
    }
    this.last = index;
  }

  /** Forgets entries from `index` on (a conflicting suffix being replaced). */
  truncateFrom(index: number): void {
    if (index > this.last) return;
    while (this.runStarts.length > 0 && (this.runStarts[this.runStarts.length - 1] ?? 0) >= index) {
      this.runStarts.pop();
      this.runTerms.pop();
    }
    this.last = index - 1;
  }

  /** The term of entry `index`, which must be in the index. */
  termAt(index: number): number {
    assert(
      index <= this.last && this.runStarts.length > 0 && index >= (this.runStarts[0] ?? Infinity),
      () => `term index: entry ${index} is outside [${this.runStarts[0] ?? this.last + 1}, ${this.last}]`,
    );
    // The last run whose start is <= index.
    let lo = 0;
    let hi = this.runStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if ((this.runStarts[mid] ?? Infinity) <= index) lo = mid;
      else hi = mid - 1;
    }
    return this.runTerms[lo] ?? 0;
  }
}
