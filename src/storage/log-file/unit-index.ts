// Where each log entry lies in the segment files: the unit that holds it (docs/log-file-proposal.md,
// "The log store over the files"). Used by data dirs of format 4 (the log in files).
//
// One span per unit that holds entries, in log order: {first, last} and the unit's location. A
// unit whose entries replace some (a conflicting suffix) trims or drops the spans after its first
// entry, as the log itself does. Invariant: spans are contiguous (each begins right after the one
// before it ends) and never empty, so a lookup is one binary search.

import type { UnitLocation } from './segment-files.js';

interface Span extends UnitLocation {
  readonly first: number;
  /** The last entry of the unit still in the log (a later truncation may lower it). */
  last: number;
}

export class UnitIndex {
  private spans: Span[] = [];

  /** The first entry indexed, or undefined when none is. */
  get firstIndex(): number | undefined {
    return this.spans[0]?.first;
  }

  /** The last entry indexed, or undefined when none is. */
  get lastIndex(): number | undefined {
    return this.spans[this.spans.length - 1]?.last;
  }

  /** How many units hold indexed entries. */
  get units(): number {
    return this.spans.length;
  }

  /**
   * A unit at `location` holds entries `first`..`last`: it follows the last entry, or replaces
   * every entry from `first` on. `first` must not leave a gap after the last entry.
   */
  add(location: UnitLocation, first: number, last: number): void {
    if (last < first) throw new RangeError(`a unit of entries ${first}..${last}`);
    const end = this.lastIndex;
    if (end !== undefined && first > end + 1) throw new RangeError(`entry ${first} leaves a gap after ${end}`);
    this.truncateFrom(first);
    this.spans.push({ sequence: location.sequence, offset: location.offset, first, last });
  }

  /** Forgets every entry from `index` on (a conflicting suffix, or a snapshot that replaced the log). */
  truncateFrom(index: number): void {
    while (this.spans.length > 0) {
      const tail = this.spans[this.spans.length - 1];
      if (tail === undefined || tail.last < index) return;
      if (tail.first >= index) this.spans.pop();
      else {
        tail.last = index - 1;
        return;
      }
    }
  }

  /** Forgets everything: an install started the log over after a snapshot. */
  clear(): void {
    this.spans = [];
  }

  /** Forgets the units of segments below `sequence` (deleted by compaction). */
  dropSegmentsBefore(sequence: number): void {
    let keep = 0;
    while (keep < this.spans.length && (this.spans[keep]?.sequence ?? Infinity) < sequence) keep++;
    if (keep > 0) this.spans = this.spans.slice(keep);
  }

  /** The unit holding entry `index`, or undefined when no indexed unit does. */
  find(index: number): UnitLocation | undefined {
    const span = this.spanOf(index);
    return span === undefined ? undefined : { sequence: span.sequence, offset: span.offset };
  }

  /**
   * The unit holding entry `index` and the last entry of it still in the log (the unit itself may
   * hold later ones that a conflicting suffix replaced), or undefined when no indexed unit does.
   */
  spanOf(index: number): (UnitLocation & { readonly last: number }) | undefined {
    let lo = 0;
    let hi = this.spans.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const span = this.spans[mid];
      if (span === undefined) return undefined;
      if (index < span.first) hi = mid - 1;
      else if (index > span.last) lo = mid + 1;
      else return { sequence: span.sequence, offset: span.offset, last: span.last };
    }
    return undefined;
  }
}
