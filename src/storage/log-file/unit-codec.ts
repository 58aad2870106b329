// The bytes of one unit of a log segment (docs/log-file-proposal.md): what one Ready appends to the
// Raft log file in one write. Used by data dirs of format 4 (the log in files).
//
//   unit   := header | body | zeros up to the next multiple of 512 bytes
//   header := u32 bodyLength | u32 bodyChecksum | u32 headerChecksum
//   body   := record+
//   record := u8 kind, then by kind:
//     entries  (1): u64 firstIndex, u32 count, count x (u64 term, u8 type, u32 dataLength, data)
//     termVote (2): u64 term, u16 voteLength, vote (UTF-8)
//     snapshot (3): u64 index, u64 term       (the log now starts after this entry)
//     end      (4): nothing                   (the segment is closed: nothing follows it)
//
// All integers big-endian; a u64 holds a safe integer (below 2^53). bodyChecksum is CRC-32 of the
// body; headerChecksum is CRC-32 of the unit's offset in its segment (8 bytes) and the header's
// first 8 bytes. Every unit begins on a sector boundary, so its 12-byte header lies in its first
// sector, which a power loss keeps whole or not at all: a nonzero header that fails its checksum is
// damage, never a torn write (segment-scan.ts builds its rules on this). The offset in the checksum
// means a unit's bytes read at any other offset are not a unit (a client's value that holds a
// well-formed unit is not one where it lies inside a real unit), and the sector alignment means a
// torn write never shares a sector with the unit before it.
// Invariant: decodeUnitBody accepts exactly the bodies encodeUnit makes, and a unit whose checksums
// match but whose records do not decode is corruption (a bug or tampering), never a torn write.

import { crc32 } from 'node:zlib';
import { EntryType, type Entry } from '../../raft/types.js';
import { CorruptDataError } from '../errors.js';
import { readU64, writeU64 } from './u64.js';

/** Bytes before a unit's body: its length and its two checksums. */
export const UNIT_HEADER_BYTES = 12;

/** Units begin on multiples of this (a disk sector: the smallest write a disk keeps whole). */
export const UNIT_ALIGN_BYTES = 512;

/** The bytes a unit with a body of `bodyLength` takes in a segment, padding included. */
export function unitSpan(bodyLength: number): number {
  return Math.ceil((UNIT_HEADER_BYTES + bodyLength) / UNIT_ALIGN_BYTES) * UNIT_ALIGN_BYTES;
}

/**
 * The largest body a unit may have. A Ready's entries are bounded well below this (a proposal batch
 * or one received append); the bound is what lets a reader tell a damaged length from a real one.
 */
export const MAX_UNIT_BODY_BYTES = 32 * 1024 * 1024;

/** A node id longer than this cannot be a vote (identity checks bound ids far below it). */
const MAX_VOTE_BYTES = 0xffff;

const RecordKind = { entries: 1, termVote: 2, snapshot: 3, end: 4 } as const;

export type UnitRecord =
  | { readonly kind: 'entries'; readonly entries: readonly Entry[] }
  | { readonly kind: 'termVote'; readonly term: number; readonly vote: string }
  | { readonly kind: 'snapshot'; readonly index: number; readonly term: number }
  | { readonly kind: 'end' };

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { fatal: true });

/** The unit holding `records` (at least one), padded, to be written at `offset` (a sector boundary). */
export function encodeUnit(records: readonly UnitRecord[], offset: number): Uint8Array {
  if (offset % UNIT_ALIGN_BYTES !== 0) throw new RangeError(`a unit cannot begin at ${offset}: not a sector boundary`);
  if (records.length === 0) throw new RangeError('a unit holds at least one record');
  const votes = records.map((record) => (record.kind === 'termVote' ? utf8.encode(record.vote) : null));
  let size = UNIT_HEADER_BYTES;
  records.forEach((record, i) => (size += recordBytes(record, votes[i] ?? null)));
  const bodyLength = size - UNIT_HEADER_BYTES;
  if (bodyLength > MAX_UNIT_BODY_BYTES)
    throw new RangeError(`a unit of ${bodyLength} bytes exceeds the ${MAX_UNIT_BODY_BYTES} a unit may hold`);
  const bytes = new Uint8Array(unitSpan(bodyLength));
  const view = new DataView(bytes.buffer);
  let at = UNIT_HEADER_BYTES;
  records.forEach((record, i) => (at = writeRecord(bytes, view, at, record, votes[i] ?? null)));
  view.setUint32(0, bodyLength);
  view.setUint32(4, crc32(bytes.subarray(UNIT_HEADER_BYTES, UNIT_HEADER_BYTES + bodyLength)));
  view.setUint32(8, headerChecksum(bytes, offset));
  return bytes;
}

/** What the header at the start of `bytes` says, for a unit at `offset` of its segment. */
export type UnitHeader =
  | { readonly kind: 'empty' } // all zeros: nothing was written here
  | { readonly kind: 'damaged' } // fails its checksum, or gives a length no unit has
  | { readonly kind: 'unit'; readonly bodyLength: number; readonly bodyChecksum: number };

/** Reads the unit header at the start of `bytes` (UNIT_HEADER_BYTES or more), for a unit at `offset`. */
export function readUnitHeader(bytes: Uint8Array, offset: number): UnitHeader {
  if (bytes.length < UNIT_HEADER_BYTES) return { kind: 'damaged' };
  if (bytes.subarray(0, UNIT_HEADER_BYTES).every((b) => b === 0)) return { kind: 'empty' };
  const view = new DataView(bytes.buffer, bytes.byteOffset, UNIT_HEADER_BYTES);
  const bodyLength = view.getUint32(0);
  if (view.getUint32(8) !== headerChecksum(bytes, offset) || bodyLength === 0 || bodyLength > MAX_UNIT_BODY_BYTES)
    return { kind: 'damaged' };
  return { kind: 'unit', bodyLength, bodyChecksum: view.getUint32(4) };
}

/** Whether `body` is the body a header with `bodyChecksum` was written with. */
export function bodyMatches(body: Uint8Array, bodyChecksum: number): boolean {
  return crc32(body) === bodyChecksum;
}

/** CRC-32 of the unit's offset and the first 8 bytes of its header (at the start of `bytes`). */
function headerChecksum(bytes: Uint8Array, offset: number): number {
  const position = new Uint8Array(8);
  writeU64(new DataView(position.buffer), 0, offset);
  return crc32(bytes.subarray(0, 8), crc32(position));
}

/**
 * The records of the unit whose body is `body` (checksum already checked). Entry data are views of
 * `body`: a caller that keeps them copies them. Throws CorruptDataError, naming `where`, on anything
 * encodeUnit would not have written.
 */
export function decodeUnitBody(body: Uint8Array, where: string): UnitRecord[] {
  const reader = new Reader(body, where);
  const records: UnitRecord[] = [];
  while (!reader.done) records.push(readRecord(reader));
  if (records.length === 0) throw new CorruptDataError(`${where}: a unit with no record`);
  return records;
}

function recordBytes(record: UnitRecord, vote: Uint8Array | null): number {
  switch (record.kind) {
    case 'entries': {
      let bytes = 1 + 8 + 4;
      for (const entry of record.entries) bytes += 8 + 1 + 4 + entry.data.length;
      return bytes;
    }
    case 'termVote':
      if (vote === null || vote.length > MAX_VOTE_BYTES) throw new RangeError('a vote of more than 65535 bytes');
      return 1 + 8 + 2 + vote.length;
    case 'snapshot':
      return 1 + 8 + 8;
    case 'end':
      return 1;
  }
}

function writeRecord(
  bytes: Uint8Array,
  view: DataView,
  at: number,
  record: UnitRecord,
  vote: Uint8Array | null,
): number {
  view.setUint8(at, RecordKind[record.kind]);
  at += 1;
  switch (record.kind) {
    case 'entries': {
      const first = record.entries[0]?.index ?? 0;
      writeU64(view, at, first);
      view.setUint32(at + 8, record.entries.length);
      at += 12;
      record.entries.forEach((entry, k) => {
        // Invariant: one record holds consecutive entries, so only the first index is written.
        if (entry.index !== first + k)
          throw new RangeError(`entry ${entry.index} follows ${first + k - 1} in one record`);
        if (entry.type !== EntryType.Normal && entry.type !== EntryType.ConfChange)
          throw new RangeError(`entry ${entry.index} has an unknown type, ${String(entry.type)}`);
        writeU64(view, at, entry.term);
        view.setUint8(at + 8, entry.type);
        view.setUint32(at + 9, entry.data.length);
        bytes.set(entry.data, at + 13);
        at += 13 + entry.data.length;
      });
      return at;
    }
    case 'termVote':
      writeU64(view, at, record.term);
      view.setUint16(at + 8, vote?.length ?? 0);
      if (vote !== null) bytes.set(vote, at + 10);
      return at + 10 + (vote?.length ?? 0);
    case 'snapshot':
      writeU64(view, at, record.index);
      writeU64(view, at + 8, record.term);
      return at + 16;
    case 'end':
      return at;
  }
}

function readRecord(reader: Reader): UnitRecord {
  const kind = reader.u8('a record kind');
  switch (kind) {
    case RecordKind.entries: {
      const first = reader.u64('a first index');
      const count = reader.u32('an entry count');
      // Each entry takes at least 13 bytes: a count beyond that is damage, not a reason to allocate.
      if (count * 13 > reader.left) reader.fail(`${count} entries cannot fit in ${reader.left} bytes`);
      if (count > 0 && first < 1) reader.fail('entries from index 0');
      if (count === 0 && first !== 0) reader.fail('an empty entries record with a first index');
      const entries: Entry[] = [];
      for (let k = 0; k < count; k++) {
        const term = reader.u64('an entry term');
        const type = reader.u8('an entry type');
        if (type !== EntryType.Normal && type !== EntryType.ConfChange) reader.fail(`unknown entry type ${type}`);
        const data = reader.bytes(reader.u32('an entry length'), 'entry data');
        entries.push({ index: first + k, term, type, data });
      }
      return { kind: 'entries', entries };
    }
    case RecordKind.termVote: {
      const term = reader.u64('a term');
      const vote = reader.bytes(reader.u16('a vote length'), 'a vote');
      return { kind: 'termVote', term, vote: reader.utf8(vote, 'a vote') };
    }
    case RecordKind.snapshot:
      return { kind: 'snapshot', index: reader.u64('a snapshot index'), term: reader.u64('a snapshot term') };
    case RecordKind.end:
      return { kind: 'end' };
    default:
      return reader.fail(`unknown record kind ${kind}`);
  }
}

/** Reads a body front to back; every read checks the bytes are there. */
class Reader {
  private at = 0;
  private readonly view: DataView;

  constructor(
    private readonly body: Uint8Array,
    private readonly where: string,
  ) {
    this.view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  }

  get done(): boolean {
    return this.at === this.body.length;
  }

  get left(): number {
    return this.body.length - this.at;
  }

  fail(what: string): never {
    throw new CorruptDataError(`${this.where}, byte ${this.at} of a unit's body: ${what}`);
  }

  u8(what: string): number {
    this.need(1, what);
    return this.view.getUint8(this.at++);
  }

  u16(what: string): number {
    this.need(2, what);
    const value = this.view.getUint16(this.at);
    this.at += 2;
    return value;
  }

  u32(what: string): number {
    this.need(4, what);
    const value = this.view.getUint32(this.at);
    this.at += 4;
    return value;
  }

  u64(what: string): number {
    this.need(8, what);
    const value = readU64(this.view, this.at);
    if (value === undefined) return this.fail(`${what} beyond 2^53`);
    this.at += 8;
    return value;
  }

  bytes(length: number, what: string): Uint8Array {
    this.need(length, what);
    const bytes = this.body.subarray(this.at, this.at + length);
    this.at += length;
    return bytes;
  }

  utf8(bytes: Uint8Array, what: string): string {
    try {
      return fromUtf8.decode(bytes);
    } catch {
      return this.fail(`${what} that is not UTF-8`);
    }
  }

  private need(bytes: number, what: string): void {
    if (this.left < bytes) this.fail(`${what} cut short (${this.left} of ${bytes} bytes left)`);
  }
}
