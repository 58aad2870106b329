// Reading a log segment back on open (docs/log-file-proposal.md, "Opening a data dir"): its header
// and its units in order, telling a torn last write (normal after a power loss) from corruption
// (refuse to start). Used by data dirs of format 4 (the log in files).
//
// What a power loss can leave: segments are preallocated zeros, and each unit is appended by one
// write, on a sector boundary, after what was written before. A write cut by a power loss may keep
// any subset of its sectors; the sectors it did not keep still hold zeros. That write's unit was
// never acknowledged (it was not synced), and nothing was written after it. A unit's header lies in
// its first sector (unit-codec.ts), so it is there whole or all zeros. The rules:
//  - A unit whose header and body check out is whole.
//  - A nonzero header that fails its checksum is corruption (its sector was written whole).
//  - A damaged unit, or bytes after the last unit that no header describes, are a torn write only
//    when all of these hold: it is in the last segment, which is not closed; no whole unit begins
//    on any sector boundary after it (one would show it was not the last write, so it was
//    acknowledged); every nonzero byte after it lies within its span (or, with its header lost,
//    within the span of the largest unit); and, when its header is whole, a sector of its body
//    after the first holds only zeros (a sector the write did not keep).
//  - Anything else is corruption: damage in an older segment, a unit whose checksums match but
//    whose records do not decode, data after an end record, entries at or before the segment's
//    start, a segment header that does not check out.
// What these rules cannot tell apart: the last unit of the log damaged by bit rot when it also holds
// an all-zero sector after its first (a value of zeros). It is taken for torn and dropped, as etcd's
// WAL does; the checksums catch every other damage.

import { CorruptDataError } from '../errors.js';
import { SEGMENT_HEADER_BYTES, decodeSegmentHeader, type SegmentHeader } from './segment-header.js';
import {
  MAX_UNIT_BODY_BYTES,
  UNIT_ALIGN_BYTES,
  UNIT_HEADER_BYTES,
  bodyMatches,
  decodeUnitBody,
  readUnitHeader,
  unitSpan,
  type UnitRecord,
} from './unit-codec.js';

export interface ScannedUnit {
  /** Where the unit begins in the segment. */
  readonly offset: number;
  readonly records: readonly UnitRecord[];
}

export interface ScannedSegment {
  readonly header: SegmentHeader;
  readonly units: readonly ScannedUnit[];
  /** Where the next unit goes: the end of the last whole unit's span. */
  readonly end: number;
  /** Whether the segment ends with an `end` record (it was closed, and nothing may follow). */
  readonly closed: boolean;
  /** The bytes of a torn last write, [from, to): the caller zeroes them before appending. */
  readonly torn: { readonly from: number; readonly to: number } | null;
}

/**
 * Scans a whole segment's bytes. `last`: whether it is the newest segment, the only one a torn
 * write may end. `where` names the file in errors. Throws CorruptDataError (or the header's
 * StorageRefusedError for a newer format) when the segment cannot be trusted.
 */
export function scanSegment(bytes: Uint8Array, last: boolean, where: string): ScannedSegment {
  const header = decodeSegmentHeader(bytes, where);
  const units: ScannedUnit[] = [];
  let at = SEGMENT_HEADER_BYTES;
  let closed = false;
  const corrupt = (offset: number, what: string): never => {
    throw new CorruptDataError(`${where}, offset ${offset}: ${what}`);
  };
  while (!closed && at + UNIT_HEADER_BYTES <= bytes.length) {
    const bodyLength = wholeUnitLength(bytes, at);
    if (bodyLength === null) break; // nothing here, or damage: judged below
    const body = bytes.subarray(at + UNIT_HEADER_BYTES, at + UNIT_HEADER_BYTES + bodyLength);
    const records = decodeUnitBody(body, `${where}, offset ${at}`);
    closed = checkUnit(records, header, at, where);
    units.push({ offset: at, records });
    at += unitSpan(bodyLength);
  }
  const nonzero = lastNonzero(bytes, at);
  if (nonzero < at) return { header, units, end: at, closed, torn: null };
  // Something is written at `at` that is no whole unit: a torn last write, or corruption.
  if (closed) corrupt(at, 'data after the end record');
  if (!last) corrupt(at, 'a damaged unit in a segment older than the last');
  const unitHeader = at + UNIT_HEADER_BYTES <= bytes.length ? readUnitHeader(bytes.subarray(at), at) : null;
  if (unitHeader === null || unitHeader.kind === 'damaged') corrupt(at, 'a unit header that fails its checksum');
  // With its header whole, the torn unit's own span is known: what lies beyond it was written later.
  const span = unitHeader?.kind === 'unit' ? unitSpan(unitHeader.bodyLength) : unitSpan(MAX_UNIT_BODY_BYTES);
  if (nonzero >= at + span) corrupt(at, `a damaged unit, with data written after it (at offset ${nonzero})`);
  const later = laterWholeUnit(bytes, at + (unitHeader?.kind === 'unit' ? span : UNIT_ALIGN_BYTES), nonzero);
  if (later !== null) corrupt(at, `a damaged unit, with a whole unit written after it (at offset ${later})`);
  if (unitHeader?.kind === 'unit' && !lostALaterSector(bytes, at, unitHeader.bodyLength))
    corrupt(at, 'a damaged unit whose every sector was written');
  return { header, units, end: at, closed, torn: { from: at, to: nonzero + 1 } };
}

/**
 * Checks the records of the whole unit at `at` against the segment's rules, and says whether it
 * closes the segment (ends with an end record). Throws CorruptDataError naming `where` and `at`.
 * Shared by scanSegment and the streaming scan of a file (segment-files.ts), which must agree.
 */
export function checkUnit(records: readonly UnitRecord[], header: SegmentHeader, at: number, where: string): boolean {
  const corrupt = (what: string): never => {
    throw new CorruptDataError(`${where}, offset ${at}: ${what}`);
  };
  const endAt = records.findIndex((record) => record.kind === 'end');
  if (endAt >= 0 && endAt !== records.length - 1) corrupt('records after an end record');
  for (const record of records) {
    // Invariant: a segment's header names the entry before every entry in it (segment-files.ts
    // starts a new segment for a truncation that reaches below it).
    const first = record.kind === 'entries' ? record.entries[0] : undefined;
    if (first !== undefined && first.index <= header.prevIndex)
      corrupt(`entry ${first.index} in a segment that starts after entry ${header.prevIndex}`);
  }
  return endAt >= 0;
}

/** The body length of the whole unit at `at` (header and body checking out), or null. */
function wholeUnitLength(bytes: Uint8Array, at: number): number | null {
  const header = readUnitHeader(bytes.subarray(at), at);
  if (header.kind !== 'unit' || at + UNIT_HEADER_BYTES + header.bodyLength > bytes.length) return null;
  const start = at + UNIT_HEADER_BYTES;
  return bodyMatches(bytes.subarray(start, start + header.bodyLength), header.bodyChecksum) ? header.bodyLength : null;
}

/** The offset of a whole unit on a sector boundary from `from` up to `through`, or null. */
function laterWholeUnit(bytes: Uint8Array, from: number, through: number): number | null {
  for (let p = from; p <= through; p += UNIT_ALIGN_BYTES) {
    if (wholeUnitLength(bytes, p) !== null) return p;
  }
  return null;
}

/**
 * Whether a sector of the unit at `at` after its first (which holds the whole header, so it was
 * kept) holds only zeros over the unit's content: a sector the write did not keep.
 */
function lostALaterSector(bytes: Uint8Array, at: number, bodyLength: number): boolean {
  const end = Math.min(bytes.length, at + UNIT_HEADER_BYTES + bodyLength);
  for (let start = at + UNIT_ALIGN_BYTES; start < end; start += UNIT_ALIGN_BYTES) {
    if (isZero(bytes, start, Math.min(end, start + UNIT_ALIGN_BYTES))) return true;
  }
  return false;
}

const ZEROS = new Uint8Array(64 * 1024);

/** Whether bytes[from, to) are all zero (compared natively, a chunk at a time). */
function isZero(bytes: Uint8Array, from: number, to: number): boolean {
  for (let at = from; at < to; at += ZEROS.length) {
    const end = Math.min(to, at + ZEROS.length);
    if (Buffer.compare(bytes.subarray(at, end), ZEROS.subarray(0, end - at)) !== 0) return false;
  }
  return true;
}

/** The offset of the last nonzero byte at or after `from`, or from - 1 when there is none. */
function lastNonzero(bytes: Uint8Array, from: number): number {
  // Whole chunks from the end are skipped natively; only the chunk holding the last nonzero byte
  // is walked byte by byte. (A segment is 64 MiB, mostly zeros until it fills.)
  for (let end = bytes.length; end > from;) {
    const start = Math.max(from, end - ZEROS.length);
    if (!isZero(bytes, start, end)) {
      for (let i = end - 1; i >= start; i--) if (bytes[i] !== 0) return i;
    }
    end = start;
  }
  return from - 1;
}
