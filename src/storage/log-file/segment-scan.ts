// Reading a log segment back on open (docs/log-file-proposal.md, "Opening a data dir"): its header
// and its units in order, telling a torn last write (normal after a power loss) from corruption
// (refuse to start). Not used by the node yet: the log still lives in LevelDB.
//
// What a power loss can leave: segments are preallocated zeros, and each unit is appended by one
// write, on a sector boundary, after what was written before. A write cut by a power loss may keep
// any subset of its sectors; the sectors it did not keep still hold zeros. That write's unit was
// never acknowledged (it was not synced), and nothing was written after it. So a damaged unit is
// a torn write only when all of these hold:
//  - it is in the last segment;
//  - no whole unit begins on any sector boundary after it (one would show the damaged unit was not
//    the last write, so it was acknowledged);
//  - every nonzero byte after it lies within the span one unit may take;
//  - it has a sector that holds only zeros, or its length field is itself unbelievable (a sector
//    the write did not keep): damage to a unit whose every sector is there is not a torn write.
// Anything else is corruption: damage in an older segment, a damaged unit with a whole unit after
// it, a unit whose checksum matches but whose records do not decode, data after an end record, a
// segment header that does not check out.

import { CorruptDataError } from '../errors.js';
import { SEGMENT_HEADER_BYTES, decodeSegmentHeader, type SegmentHeader } from './segment-header.js';
import {
  MAX_UNIT_BODY_BYTES,
  UNIT_ALIGN_BYTES,
  UNIT_HEADER_BYTES,
  decodeUnitBody,
  unitChecksum,
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
    const endAt = records.findIndex((record) => record.kind === 'end');
    if (endAt >= 0 && endAt !== records.length - 1) corrupt(at, 'records after an end record');
    closed = endAt >= 0;
    units.push({ offset: at, records });
    at += unitSpan(bodyLength);
  }
  const nonzero = lastNonzero(bytes, at);
  if (nonzero < at) return { header, units, end: at, closed, torn: null };
  // Something is written at `at` that is no whole unit: a torn last write, or corruption.
  if (closed) corrupt(at, 'data after the end record');
  if (!last) corrupt(at, 'a damaged unit in a segment older than the last');
  const later = laterWholeUnit(bytes, at, nonzero);
  if (later !== null) corrupt(at, `a damaged unit, with a whole unit written after it (at offset ${later})`);
  if (nonzero >= at + unitSpan(MAX_UNIT_BODY_BYTES)) corrupt(at, 'data past the span of one unit after the last');
  if (!lostASector(bytes, at)) corrupt(at, 'a damaged unit whose every sector was written');
  return { header, units, end: at, closed, torn: { from: at, to: nonzero + 1 } };
}

/** The body length of the whole unit at `at` (length believable, checksum matching), or null. */
function wholeUnitLength(bytes: Uint8Array, at: number): number | null {
  const bodyLength = believableLength(bytes, at);
  if (bodyLength === null) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset + at, UNIT_HEADER_BYTES);
  const unit = bytes.subarray(at, at + UNIT_HEADER_BYTES + bodyLength);
  return view.getUint32(4) === unitChecksum(unit, at) ? bodyLength : null;
}

/** The length field at `at`, when a unit of that length could be there (not 0, bounded, fits). */
function believableLength(bytes: Uint8Array, at: number): number | null {
  if (at + UNIT_HEADER_BYTES > bytes.length) return null;
  const bodyLength = new DataView(bytes.buffer, bytes.byteOffset + at, 4).getUint32(0);
  const fits = bodyLength > 0 && bodyLength <= MAX_UNIT_BODY_BYTES;
  return fits && at + UNIT_HEADER_BYTES + bodyLength <= bytes.length ? bodyLength : null;
}

/** The offset of a whole unit on a sector boundary after `at`, up to `through`, or null. */
function laterWholeUnit(bytes: Uint8Array, at: number, through: number): number | null {
  for (let p = at + UNIT_ALIGN_BYTES; p <= through; p += UNIT_ALIGN_BYTES) {
    if (wholeUnitLength(bytes, p) !== null) return p;
  }
  return null;
}

/**
 * Whether the write of the damaged unit at `at` lost a sector: its length field is unbelievable
 * (the sector holding it was not kept, or only part of what it straddles), or some sector of the
 * span its length gives holds only zeros.
 */
function lostASector(bytes: Uint8Array, at: number): boolean {
  const bodyLength = believableLength(bytes, at);
  if (bodyLength === null) return true;
  const end = at + UNIT_HEADER_BYTES + bodyLength;
  for (let start = at; start < end; start += UNIT_ALIGN_BYTES) {
    const stop = Math.min(end, start + UNIT_ALIGN_BYTES);
    let zero = true;
    for (let i = start; i < stop && zero; i++) zero = bytes[i] === 0;
    if (zero) return true;
  }
  return false;
}

/** The offset of the last nonzero byte at or after `from`, or from - 1 when there is none. */
function lastNonzero(bytes: Uint8Array, from: number): number {
  for (let i = bytes.length - 1; i >= from; i--) if (bytes[i] !== 0) return i;
  return from - 1;
}
