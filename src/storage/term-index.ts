// The term of every log entry, held in memory as runs: a Raft log's terms never decrease, and a
// term covers a run of consecutive entries, so a log of millions of entries written under a few
// hundred leaders needs a few hundred runs. `term(i)` is a binary search and never touches disk.

import { assert } from '../raft/assert.js';

export class TermIndex {
  /** runStarts[k] is the first index of run k, whose entries all have term runTerms[k]. */
  private runStarts: number[] = [];
  private runTerms: number[] = [];
  private last: number;
  /** The entry before the first one held (the snapshot point the log starts after): its term is known. */
  private base: { index: number; term: number };

  /** An empty index whose next entry is `firstIndex`; the entry before it has `baseTerm`. */
  constructor(firstIndex: number, baseTerm = 0) {
    this.last = firstIndex - 1;
    this.base = { index: firstIndex - 1, term: baseTerm };
  }

  /** The index of the entry the log starts after. */
  get baseIndex(): number {
    return this.base.index;
  }

  /** Forgets every entry up to `index` (compacted away); the term of `index` stays known. */
  compactTo(index: number): void {
    if (index <= this.base.index) return;
    assert(index <= this.last, () => `term index: cannot compact to ${index} beyond the last entry ${this.last}`);
    const term = this.termAt(index);
    // Drop the runs that end at or before `index`; the run holding index + 1 starts there now.
    let keep = 0;
    while (keep + 1 < this.runStarts.length && (this.runStarts[keep + 1] ?? Infinity) <= index + 1) keep++;
    this.runStarts = this.runStarts.slice(keep);
    this.runTerms = this.runTerms.slice(keep);
    if (this.runStarts.length > 0 && (this.runStarts[0] ?? 0) <= index) {
      if (index === this.last) {
        this.runStarts = [];
        this.runTerms = [];
      } else {
        this.runStarts[0] = index + 1;
      }
    }
    this.base = { index, term };
  }

  /** Starts over empty after (index, term): a snapshot replaced the whole log. */
  resetTo(index: number, term: number): void {
    this.runStarts = [];
    this.runTerms = [];
    this.last = index;
    this.base = { index, term };
  }

  get lastIndex(): number {
    return this.last;
  }

  get runCount(): number {
    return this.runStarts.length;
  }

  /** The term of the last entry (the base's when no entry is held); undefined for an empty log. */
  get lastTerm(): number | undefined {
    return this.runTerms[this.runTerms.length - 1] ?? (this.base.index > 0 ? this.base.term : undefined);
  }

  /** Adds entry `index` (the next one) with `term`, which must not be below the last term. */
  append(index: number, term: number): void {
    assert(index === this.last + 1, () => `term index: entry ${index} does not follow ${this.last}`);
    const lastTerm = this.lastTerm;
    assert(
      lastTerm === undefined || term >= lastTerm,
      () => `term index: entry ${index} has term ${term} < ${lastTerm}`,
    );
    // A new run for a new term, and for the first entry held (the base is not a run).
    if (this.runTerms.length === 0 || term !== lastTerm) {
      this.runStarts.push(index);
      this.runTerms.push(term);
    }
    this.last = index;
  }

  /** Forgets entries from `index` on (a conflicting suffix being replaced). */
  truncateFrom(index: number): void {
    if (index > this.last) return;
    assert(
      index > this.base.index,
      () => `term index: cannot truncate at ${index}, at or before the base ${this.base.index}`,
    );
    while (this.runStarts.length > 0 && (this.runStarts[this.runStarts.length - 1] ?? 0) >= index) {
      this.runStarts.pop();
      this.runTerms.pop();
    }
    this.last = index - 1;
  }

  /** The term of entry `index`, which must be in the index or be its base. */
  termAt(index: number): number {
    if (index === this.base.index) return this.base.term;
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
