// Reading a log directory's segments back on open, one unit at a time (segment-files.ts streams
// each file): the checks that the segments follow each other, the log position and the term and
// vote they end at, and each unit handed on to the caller, who replays it (file-log.ts). Nothing
// here holds a unit past the call: open's memory stays bounded by the window a file is read
// through and the tail cache, however many segments the log keeps.
//
// The checks (see segment-files.ts' invariants): a segment older than the last ends with an end
// record (checked once all are read: `finish`); a segment after the first begins with the term
// and vote (once one was written) and starts at the log's last entry, with its term, unless its
// first unit starts the log over at a snapshot; a segment's first entry follows its header's entry.

import { CorruptDataError } from '../errors.js';
import type { SegmentHeader } from './segment-header.js';
import type { UnitRecord } from './unit-codec.js';

/** A log position: an entry's index and term. */
export interface LogPoint {
  readonly index: number;
  readonly term: number;
}

export interface TermVote {
  readonly term: number;
  readonly vote: string;
}

/** Where a unit lies: its segment's sequence and its offset there. */
export interface UnitLocation {
  readonly sequence: number;
  readonly offset: number;
}

/**
 * A unit read back on open: where it lies and its records (end records left out). Entry data are
 * views of a buffer read for this unit alone: a caller that keeps them past the call copies them.
 */
export interface ReadBackUnit extends UnitLocation {
  readonly records: readonly UnitRecord[];
}

/** What open hands a log's segments to, as it reads them. */
export interface ReadBackVisitor {
  /** Each segment's header, before its units. */
  segment?(header: SegmentHeader): void;
  /** Each unit that holds a record besides an end record, in write order. */
  unit(unit: ReadBackUnit): void;
}

/** Where a segment being read back is: its file (for errors), sequence, and whether it is the oldest. */
export interface SegmentBeingRead {
  readonly file: string;
  readonly sequence: number;
  readonly first: boolean;
}

export class ReadBack {
  /** The headers of the segments read, oldest first. */
  readonly headers: SegmentHeader[] = [];
  /** The last entry (or the snapshot point a snapshot record set) of what was read. */
  last: LogPoint = { index: 0, term: 0 };
  /** The latest term and vote read. */
  termVote: TermVote | null = null;
  /** Each segment read: its file, and whether it ended with an end record. */
  private readonly ends: { file: string; closed: boolean }[] = [];
  private segment: SegmentBeingRead | null = null;
  private header: SegmentHeader | null = null;
  private unitsInSegment = 0;
  private entrySeen = false;

  /** `visitor` gets every segment's header, and every unit that holds a record besides an end record, in write order. */
  constructor(private readonly visitor: ReadBackVisitor) {}

  /** The next segment's header, before any of its units. */
  beginSegment(segment: SegmentBeingRead, header: SegmentHeader): void {
    this.segment = segment;
    this.header = header;
    this.unitsInSegment = 0;
    this.entrySeen = false;
    if (segment.first) this.last = { index: header.prevIndex, term: header.prevTerm };
    this.visitor.segment?.(header);
  }

  /** The segment's next whole unit. */
  unit(offset: number, records: readonly UnitRecord[]): void {
    const { segment, header } = this.current();
    if (this.unitsInSegment++ === 0 && !segment.first) this.checkSegmentStart(header, records);
    if (!this.entrySeen) {
      const first = firstEntryIndex(records);
      if (first !== undefined && first !== header.prevIndex + 1)
        this.corrupt(
          `its first entry is ${first}, not ${header.prevIndex + 1} (after its header's entry ${header.prevIndex})`,
        );
      this.entrySeen = first !== undefined;
    }
    // End records are the segment's structure, not the log's.
    const kept = records.filter((record) => record.kind !== 'end');
    for (const record of kept) {
      if (record.kind === 'termVote') this.termVote = { term: record.term, vote: record.vote };
      this.last = advanced(this.last, record);
    }
    if (kept.length > 0) this.visitor.unit({ sequence: segment.sequence, offset, records: kept });
  }

  /** The end of the segment's units: `closed` when the last was an end record. */
  endSegment(closed: boolean): void {
    const { segment, header } = this.current();
    this.headers.push(header);
    this.ends.push({ file: segment.file, closed });
    this.segment = null;
    this.header = null;
  }

  /** Forgets the newest segment, which had no unit (open deletes it). */
  dropEmptyNewest(): void {
    this.headers.pop();
    this.ends.pop();
    if (this.headers.length === 0) this.last = { index: 0, term: 0 };
  }

  /**
   * After every segment was read (and an empty newest one dropped): refuses a segment older than
   * the last that was never closed. Checked only now, so that the segment before a dropped empty
   * one counts as the last, as it is once that one is deleted.
   */
  finish(): void {
    for (const end of this.ends.slice(0, -1)) {
      if (!end.closed) throw new CorruptDataError(`${end.file}: a segment older than the last that was never closed`);
    }
  }

  private checkSegmentStart(header: SegmentHeader, head: readonly UnitRecord[]): void {
    if (this.termVote !== null && head[0]?.kind !== 'termVote')
      this.corrupt('a segment that does not begin with the term and vote');
    const snapshot = head.find((r) => r.kind === 'snapshot');
    const atSnapshot =
      snapshot?.kind === 'snapshot' && snapshot.index === header.prevIndex && snapshot.term === header.prevTerm;
    if (!atSnapshot && header.prevIndex > this.last.index)
      this.corrupt(`a segment after entry ${header.prevIndex}, beyond the log's last entry ${this.last.index}`);
    if (!atSnapshot && header.prevIndex === this.last.index && header.prevTerm !== this.last.term)
      this.corrupt(
        `a segment after entry ${header.prevIndex} of term ${header.prevTerm}, which has term ${this.last.term}`,
      );
  }

  private current(): { segment: SegmentBeingRead; header: SegmentHeader } {
    if (this.segment === null || this.header === null) throw new Error('no segment is being read back');
    return { segment: this.segment, header: this.header };
  }

  private corrupt(what: string): never {
    throw new CorruptDataError(`${this.segment?.file ?? 'a log segment'}: ${what}`);
  }
}

/** The index of the first entry in `records`, if any holds one. */
export function firstEntryIndex(records: readonly UnitRecord[]): number | undefined {
  for (const record of records)
    if (record.kind === 'entries' && record.entries[0] !== undefined) return record.entries[0].index;
  return undefined;
}

/** The log position after `record`: an entries record ends at its last entry (truncating any suffix). */
export function advanced(last: LogPoint, record: UnitRecord): LogPoint {
  if (record.kind === 'snapshot') return { index: record.index, term: record.term };
  if (record.kind !== 'entries') return last;
  const final = record.entries[record.entries.length - 1];
  return final === undefined ? last : { index: final.index, term: final.term };
}
