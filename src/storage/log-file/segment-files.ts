// The segment files of a Raft log in one directory (docs/log-file-proposal.md, "The segment
// files"): reading them back on open, appending one unit per call with one synced write, starting
// a new segment when one is full (or when the caller asks, for an install), and deleting old ones.
// Used by data dirs of format 4 (the log in files).
//
// Invariants:
//  - A unit is appended by one positioned write on a file opened O_DSYNC: when `append` resolves,
//    the unit is on disk. Nothing is acknowledged before that.
//  - Segments are named `<sequence>-<first index>.seg` (16 hex digits each) and their sequence
//    numbers are contiguous. A segment other than the last ends with an end record.
//  - A new segment is preallocated with zeros and fsync'd under a temporary name, gets its header
//    (synced), and only then its name; the directory is fsync'd before anything is written into
//    it, and after each segment deleted. So a named segment always has a whole header and is
//    full-size, and a crash leaves at most a temporary file, which open deletes, or a new segment
//    with no whole unit, which open deletes too (nothing in it was acknowledged).
//  - The first unit of every segment carries the latest term and vote: the newest segment alone
//    tells them, so deleting older ones never loses them.
//  - A segment's header names the entry just before every entry it holds: the first entries record
//    of a segment begins right after it, and an append that replaces entries at or before it
//    starts a new segment instead. So the oldest header always tells the log's start and its term.

import fs from 'node:fs/promises';
import { closeSync, constants, openSync, readSync } from 'node:fs';
import path from 'node:path';
import type { Entry } from '../../raft/types.js';
import { CorruptDataError, StorageRefusedError } from '../errors.js';
import { SEGMENT_HEADER_BYTES, encodeSegmentHeader, type SegmentHeader } from './segment-header.js';
import { scanSegment, type ScannedSegment } from './segment-scan.js';
import {
  UNIT_ALIGN_BYTES,
  UNIT_HEADER_BYTES,
  bodyMatches,
  decodeUnitBody,
  encodeUnit,
  readUnitHeader,
  unitSpan,
  type UnitRecord,
} from './unit-codec.js';

/** The size of a segment file: 64 MiB, as etcd's WAL. */
export const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;

/** Zeros written per call while preallocating a segment. */
const ZERO_CHUNK = Buffer.alloc(1024 * 1024);

/** A segment's name: `<sequence>-<first index>.seg`, both in 16 hex digits, so names sort by sequence. */
const SEGMENT_NAME = /^([0-9a-f]{16})-([0-9a-f]{16})\.seg$/;
const TEMPORARY_SUFFIX = '.tmp';

const END_SPAN = unitSpan(1);

export interface SegmentFilesOptions {
  /** The directory of the segments (absolute); created when missing. */
  readonly dir: string;
  readonly clusterId: string;
  readonly nodeId: string;
  /** The size of each segment file (tests use small ones). */
  readonly segmentBytes?: number;
}

/** A log position: an entry's index and term. */
export interface LogPoint {
  readonly index: number;
  readonly term: number;
}

/** Where a unit lies: its segment's sequence and its offset there. */
export interface UnitLocation {
  readonly sequence: number;
  readonly offset: number;
}

/** A unit read back on open: where it lies and its records (end records left out). */
export interface ReadBackUnit extends UnitLocation {
  readonly records: readonly UnitRecord[];
}

/** What open read back: every unit of every segment, in order, and the segments' headers. */
export interface ReadBack {
  readonly headers: readonly SegmentHeader[];
  /** Every unit in write order (entry data copied out of the files' buffers). */
  readonly units: readonly ReadBackUnit[];
  /** Every record of `units`, in write order. */
  readonly records: readonly UnitRecord[];
}

interface Current {
  readonly file: fs.FileHandle;
  readonly sequence: number;
  /** The entry before every entry this segment may hold (its header's). */
  readonly prevIndex: number;
  /** Where the next unit goes. */
  offset: number;
  /** Closed by an end record: the next append starts a new segment. */
  closed: boolean;
}

interface TermVote {
  readonly term: number;
  readonly vote: string;
}

export class SegmentFiles {
  private current: Current | null;
  /** The names of the segments on disk by sequence, oldest first. */
  private readonly names: Map<number, string>;
  /** The last entry written (or the snapshot point a snapshot record set). */
  private last: LogPoint;
  /** The latest term and vote written: the first unit of each new segment repeats them. */
  private termVote: TermVote | null;
  /** The next segment, preallocated in the background; null until asked for. */
  private next: Promise<string> | null = null;
  private closed = false;
  /** The size of each segment file. */
  readonly segmentBytes: number;

  private constructor(
    private readonly options: SegmentFilesOptions,
    state: { current: Current | null; names: Map<number, string>; last: LogPoint; termVote: TermVote | null },
  ) {
    this.segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    this.current = state.current;
    this.names = state.names;
    this.last = state.last;
    this.termVote = state.termVote;
    if (this.current !== null) this.preallocateNext();
  }

  /**
   * Opens the segments in `options.dir`: deletes temporary files and an empty newest segment a
   * crash left, reads every segment back (zeroing a torn last write), and checks that the segments
   * belong to this node and follow each other. Throws CorruptDataError naming the file (and offset)
   * when they cannot be trusted, and StorageRefusedError when they are another node's or of a
   * newer format.
   */
  static async open(options: SegmentFilesOptions): Promise<{ files: SegmentFiles; readBack: ReadBack }> {
    const segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    await fs.mkdir(options.dir, { recursive: true });
    const listed = await fs.readdir(options.dir);
    const leftovers = listed.filter((name) => name.endsWith(TEMPORARY_SUFFIX));
    for (const name of leftovers) await fs.rm(path.join(options.dir, name), { force: true });
    if (leftovers.length > 0) await syncDirectory(options.dir);
    const segments = listSegments(options.dir, listed);
    const scans: ScannedSegment[] = [];
    for (const [k, segment] of segments.entries()) {
      const scanned = await scanSegmentFile(segment.file, segmentBytes, k === segments.length - 1);
      checkHeader(scanned.header, segment, options);
      scans.push(scanned);
    }
    // A crash after a new segment got its name but before its first unit was whole: nothing in it
    // was acknowledged, and it lacks the term and vote every segment begins with. Delete it; the
    // segment before it is closed, so the next append starts a new one.
    const newest = scans[scans.length - 1];
    if (newest !== undefined && newest.units.length === 0) {
      await fs.rm(segments[segments.length - 1]?.file ?? '');
      await syncDirectory(options.dir);
      segments.pop();
      scans.pop();
    }
    const readBack = readBackOf(segments, scans);
    let current: Current | null = null;
    const lastSegment = segments[segments.length - 1];
    const lastScan = scans[scans.length - 1];
    if (lastSegment !== undefined && lastScan !== undefined) {
      const handle = await fs.open(lastSegment.file, constants.O_RDWR | constants.O_DSYNC);
      try {
        // The torn write was never acknowledged: zero it, synced, so the next unit lands on zeros.
        if (lastScan.torn !== null) {
          await write(handle, new Uint8Array(lastScan.torn.to - lastScan.torn.from), lastScan.torn.from);
        }
      } catch (error) {
        await handle.close();
        throw error;
      }
      current = {
        file: handle,
        sequence: lastSegment.sequence,
        prevIndex: lastScan.header.prevIndex,
        offset: lastScan.end,
        closed: lastScan.closed,
      };
    }
    const files = new SegmentFiles(
      { ...options, segmentBytes },
      {
        current,
        names: new Map(segments.map((s) => [s.sequence, s.name])),
        last: readBack.last,
        termVote: readBack.termVote,
      },
    );
    return { files, readBack };
  }

  /** Whether there is a segment to append to (false before the first `startSegment`). */
  get hasSegment(): boolean {
    return this.current !== null;
  }

  /** The sequences of the segments on disk, oldest first. */
  get segmentSequences(): readonly number[] {
    return [...this.names.keys()];
  }

  /**
   * Appends `records` as one unit, synced, and says where it lies. Starts a new segment first when
   * the current one is closed or has no room, or when the records replace entries at or before the
   * current segment's start. `truncatedTo`: when the records replace entries (an entries record
   * that begins at or before the last entry written), the entry just before the first one
   * replaced, which a new segment's header must name.
   */
  async append(records: readonly UnitRecord[], truncatedTo?: LogPoint): Promise<UnitLocation> {
    this.assertOpen();
    const current = this.current;
    if (current === null) throw new Error('no segment to append to: startSegment first');
    const first = firstEntryIndex(records) ?? Infinity;
    // The entry a new segment's header would name: the last one, or the one before those replaced.
    let prev = this.last;
    if (first <= this.last.index) {
      if (truncatedTo?.index !== first - 1)
        throw new RangeError(`records replacing entries from ${first} need the entry before it (truncatedTo)`);
      prev = truncatedTo;
    }
    const unit = encodeUnit(records, current.offset);
    const full = current.offset + unit.length + END_SPAN > this.segmentBytes;
    if (current.closed || full || first <= current.prevIndex) return this.startSegment(prev, records);
    const location = { sequence: current.sequence, offset: current.offset };
    await write(current.file, unit, current.offset);
    current.offset += unit.length;
    this.noteWritten(records);
    return location;
  }

  /**
   * Closes the current segment (if any) and starts a new one after `prev`, whose first unit holds
   * the latest term and vote and then `records`: what an install does, with a snapshot record at
   * `prev`, and what append does when it needs a new segment. Entries in `records` must begin
   * right after `prev`.
   */
  async startSegment(prev: LogPoint, records: readonly UnitRecord[]): Promise<UnitLocation> {
    this.assertOpen();
    const first = firstEntryIndex(records);
    if (first !== undefined && first !== prev.index + 1)
      throw new RangeError(`a segment after entry ${prev.index} cannot begin with entry ${first}`);
    // Everything checked before anything is written: a refusal leaves the files as they were.
    const head = this.termVote === null ? records : [{ kind: 'termVote' as const, ...this.termVote }, ...records];
    if (head.length === 0) throw new RangeError('the first unit of a segment needs a record');
    const unit = encodeUnit(head, SEGMENT_HEADER_BYTES);
    if (SEGMENT_HEADER_BYTES + unit.length + END_SPAN > this.segmentBytes)
      throw new RangeError(`a unit of ${unit.length} bytes does not fit in a segment of ${this.segmentBytes}`);
    const current = this.current;
    const sequence = current === null ? 1 : current.sequence + 1;
    const name = segmentName(sequence, prev.index + 1);
    if (current !== null && !current.closed) {
      await write(current.file, encodeUnit([{ kind: 'end' }], current.offset), current.offset);
      current.closed = true;
    }
    const temporary = await this.takeNext();
    const file = await fs.open(temporary, constants.O_RDWR | constants.O_DSYNC);
    try {
      const header = { clusterId: this.options.clusterId, nodeId: this.options.nodeId, sequence };
      await write(file, encodeSegmentHeader({ ...header, prevIndex: prev.index, prevTerm: prev.term }), 0);
      await fs.rename(temporary, path.join(this.options.dir, name));
      // Known from here on even if the fsync below fails: a retry must not reuse the sequence.
      this.names.set(sequence, name);
      await syncDirectory(this.options.dir);
    } catch (error) {
      await file.close();
      throw error;
    }
    await current?.file.close();
    this.current = { file, sequence, prevIndex: prev.index, offset: SEGMENT_HEADER_BYTES, closed: false };
    this.last = prev;
    await write(file, unit, SEGMENT_HEADER_BYTES);
    this.current.offset += unit.length;
    this.noteWritten(head);
    this.preallocateNext();
    return { sequence, offset: SEGMENT_HEADER_BYTES };
  }

  /**
   * The records of the unit at `location` (end records left out), read from its file. Throws
   * CorruptDataError when the bytes there are not the whole unit that was written.
   */
  async readUnit(location: UnitLocation): Promise<UnitRecord[]> {
    const { file, where } = this.unitFile(location);
    const handle = await fs.open(file, 'r');
    try {
      const head = new Uint8Array(UNIT_HEADER_BYTES);
      await readFully(handle, head, location.offset, where);
      const header = checkedUnitHeader(head, location.offset, where);
      const body = new Uint8Array(header.bodyLength);
      await readFully(handle, body, location.offset + UNIT_HEADER_BYTES, where);
      return checkedUnitRecords(body, header.bodyChecksum, where);
    } finally {
      await handle.close();
    }
  }

  /**
   * `readUnit`, blocking the thread: for the core's synchronous `Storage.entries` on an entry
   * older than the tail cache, which is rare (catch-up goes through the read-ahead). One unit is
   * bounded by MAX_UNIT_BODY_BYTES and is in the page cache unless it is old.
   */
  readUnitSync(location: UnitLocation): UnitRecord[] {
    const { file, where } = this.unitFile(location);
    const fd = openSync(file, 'r');
    try {
      const head = new Uint8Array(UNIT_HEADER_BYTES);
      readFullySync(fd, head, location.offset, where);
      const header = checkedUnitHeader(head, location.offset, where);
      const body = new Uint8Array(header.bodyLength);
      readFullySync(fd, body, location.offset + UNIT_HEADER_BYTES, where);
      return checkedUnitRecords(body, header.bodyChecksum, where);
    } finally {
      closeSync(fd);
    }
  }

  /** The segments on disk, oldest first, with the entry before each one's first (its header's). */
  get segmentStarts(): readonly { readonly sequence: number; readonly prevIndex: number }[] {
    return [...this.names].map(([sequence, name]) => ({ sequence, prevIndex: firstIndexOfName(name) - 1 }));
  }

  private unitFile(location: UnitLocation): { file: string; where: string } {
    const name = this.names.get(location.sequence);
    if (name === undefined) throw new RangeError(`segment ${location.sequence} is not on disk`);
    const file = path.join(this.options.dir, name);
    return { file, where: `${file}, offset ${location.offset}` };
  }

  /**
   * Deletes the segments with a sequence below `sequence`, oldest first, never the last, fsyncing
   * the directory after each: deletions reach the disk in any order otherwise, and a crash could
   * leave a gap that open refuses.
   */
  async deleteBefore(sequence: number): Promise<void> {
    this.assertOpen();
    const newest = Math.max(...this.names.keys());
    for (const [oldest, name] of this.names) {
      if (oldest >= sequence || oldest === newest) break;
      await fs.rm(path.join(this.options.dir, name));
      this.names.delete(oldest);
      await syncDirectory(this.options.dir);
    }
  }

  /** Closes the current segment's file and waits for a preallocation in flight (its file stays, temporary). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.next?.catch(() => undefined);
    await this.current?.file.close();
    this.current = null;
  }

  private assertOpen(): void {
    if (this.closed) throw new Error(`the log segments in ${this.options.dir} are closed`);
  }

  private noteWritten(records: readonly UnitRecord[]): void {
    for (const record of records) {
      if (record.kind === 'termVote') this.termVote = { term: record.term, vote: record.vote };
      this.last = advanced(this.last, record);
    }
  }

  /**
   * Starts preallocating the next segment, so a rollover finds it ready. A failure (a full disk) is
   * the next rollover's to report, when it awaits this: marked handled until then, so that it does
   * not end the process as an unhandled rejection.
   */
  private preallocateNext(): void {
    if (this.next !== null) return;
    const next = this.preallocate();
    next.catch(() => undefined);
    this.next = next;
  }

  /** The preallocated next segment's temporary path (waiting for it, or making one now). */
  private async takeNext(): Promise<string> {
    const next = this.next ?? this.preallocate();
    this.next = null;
    return next;
  }

  /** Writes a zero-filled segment under a temporary name and fsyncs it; resolves with its path. */
  private async preallocate(): Promise<string> {
    const temporary = path.join(this.options.dir, `next${TEMPORARY_SUFFIX}`);
    const file = await fs.open(temporary, 'w');
    try {
      for (let at = 0; at < this.segmentBytes; at += ZERO_CHUNK.length) {
        await write(file, ZERO_CHUNK.subarray(0, Math.min(ZERO_CHUNK.length, this.segmentBytes - at)), at);
      }
      await file.sync();
    } finally {
      await file.close();
    }
    return temporary;
  }
}

interface ListedSegment {
  readonly name: string;
  readonly file: string;
  readonly sequence: number;
  readonly first: number;
}

/** The segments among `names`, in sequence order; refuses a gap or a sequence named twice. */
function listSegments(dir: string, names: readonly string[]): ListedSegment[] {
  const segments: ListedSegment[] = [];
  for (const name of names) {
    const match = SEGMENT_NAME.exec(name);
    if (match === null) continue;
    const sequence = parseInt(match[1] ?? '', 16);
    segments.push({ name, file: path.join(dir, name), sequence, first: parseInt(match[2] ?? '', 16) });
  }
  segments.sort((a, b) => a.sequence - b.sequence);
  for (const [k, segment] of segments.entries()) {
    const before = segments[k - 1];
    if (before === undefined) continue;
    if (segment.sequence === before.sequence)
      throw new CorruptDataError(`${segment.file}: segment ${segment.sequence} is also named ${before.name}`);
    if (segment.sequence !== before.sequence + 1)
      throw new CorruptDataError(`${segment.file}: segment ${before.sequence + 1} is missing before it`);
  }
  return segments;
}

/**
 * scanSegment of a segment file, reading only its written part when that gives the same verdict:
 * a 64 MiB segment is mostly zeros until it fills, and reading it whole made every node's open
 * cost 64 MiB of memory at once (BENCHMARKS.md, step 23). First one pass a chunk at a time finds
 * the last nonzero byte and where the chain of unit headers ends; the scan then reads up to both, so that it sees every unit of the chain whole and only zeros lie beyond. When that
 * scan finds nothing after its last whole unit, the whole file's scan would find the same (the
 * same units, the same zeros after them). Anything else (a torn write, damage) is judged on the
 * whole file, as before: the rules that tell them apart look at every later sector.
 */
export async function scanSegmentFile(file: string, segmentBytes: number, last: boolean): Promise<ScannedSegment> {
  const handle = await fs.open(file, 'r');
  try {
    const { size } = await handle.stat();
    if (size !== segmentBytes)
      throw new CorruptDataError(`${file}: ${size} bytes, not the ${segmentBytes} of a segment`);
    const { lastNonzero, chainEnd } = await writtenExtent(handle, size);
    const written = Math.max(lastNonzero, chainEnd);
    const prefix = Math.min(size, Math.ceil((written + 1) / UNIT_ALIGN_BYTES) * UNIT_ALIGN_BYTES + UNIT_ALIGN_BYTES);
    if (prefix < size) {
      const bytes = new Uint8Array(prefix);
      await readFully(handle, bytes, 0, file);
      // Only a clean verdict is taken from the prefix; any other is the whole file's to give.
      const scanned = tryScan(bytes, last, file);
      if (scanned !== null && scanned.torn === null) return scanned;
    }
    const whole = new Uint8Array(size);
    await readFully(handle, whole, 0, file);
    return scanSegment(whole, last, file);
  } finally {
    await handle.close();
  }
}

function tryScan(bytes: Uint8Array, last: boolean, file: string): ScannedSegment | null {
  try {
    return scanSegment(bytes, last, file);
  } catch {
    return null;
  }
}

/**
 * One pass over the file a chunk at a time: the offset of its last nonzero byte (-1 when it is
 * all zeros), and where the chain of unit headers from the first unit ends (each header that
 * reads as a unit's, its body unchecked, leads to the next after its span). Only for sizing what
 * scanSegmentFile reads: the scan itself checks every unit. Units begin on sector boundaries and
 * chunks are whole sectors, so a unit header never straddles two chunks.
 */
async function writtenExtent(handle: fs.FileHandle, size: number): Promise<{ lastNonzero: number; chainEnd: number }> {
  const chunk = Buffer.alloc(Math.min(size, ZERO_CHUNK.length));
  let lastNonzero = -1;
  let next = SEGMENT_HEADER_BYTES;
  let chainDone = false;
  for (let at = 0; at < size; at += chunk.length) {
    const length = Math.min(chunk.length, size - at);
    const view = chunk.subarray(0, length);
    await readFully(handle, view, at, `offset ${at}`);
    while (!chainDone && next >= at && next + UNIT_HEADER_BYTES <= at + length) {
      const header = readUnitHeader(view.subarray(next - at), next);
      if (header.kind === 'unit') next += unitSpan(header.bodyLength);
      else chainDone = true;
    }
    if (view.equals(ZERO_CHUNK.subarray(0, length))) continue;
    for (let i = length - 1; i >= 0; i--) {
      if (view[i] !== 0) {
        lastNonzero = at + i;
        break;
      }
    }
  }
  return { lastNonzero, chainEnd: Math.min(next, size) };
}

/** Refuses a segment whose header is another node's or does not match its name. */
function checkHeader(header: SegmentHeader, segment: ListedSegment, options: SegmentFilesOptions): void {
  if (header.clusterId !== options.clusterId || header.nodeId !== options.nodeId) {
    throw new StorageRefusedError(
      `${segment.file} is a log segment of node ${header.nodeId} in cluster ${header.clusterId}, not of node ${options.nodeId} in cluster ${options.clusterId}: this log directory belongs to another node`,
    );
  }
  if (header.sequence !== segment.sequence || header.prevIndex + 1 !== segment.first)
    throw new CorruptDataError(
      `${segment.file}: its header (sequence ${header.sequence}, after index ${header.prevIndex}) does not match its name`,
    );
}

/**
 * The records of the scanned segments, in order, with the log position and the term and vote they
 * end at; refuses segments that do not follow each other (see the invariants above).
 */
function readBackOf(
  segments: readonly ListedSegment[],
  scans: readonly ScannedSegment[],
): ReadBack & { last: LogPoint; termVote: TermVote | null } {
  const headers: SegmentHeader[] = [];
  const units: ReadBackUnit[] = [];
  const records: UnitRecord[] = [];
  let last: LogPoint = { index: 0, term: 0 };
  let termVote: TermVote | null = null;
  for (const [k, scanned] of scans.entries()) {
    const segment = segments[k];
    if (segment === undefined) break;
    const { header } = scanned;
    const corrupt = (what: string): never => {
      throw new CorruptDataError(`${segment.file}: ${what}`);
    };
    if (k < scans.length - 1 && !scanned.closed) corrupt('a segment older than the last that was never closed');
    const head = scanned.units[0]?.records ?? [];
    if (k > 0) {
      if (termVote !== null && head[0]?.kind !== 'termVote')
        corrupt('a segment that does not begin with the term and vote');
      const snapshot = head.find((r) => r.kind === 'snapshot');
      const atSnapshot =
        snapshot?.kind === 'snapshot' && snapshot.index === header.prevIndex && snapshot.term === header.prevTerm;
      if (!atSnapshot && header.prevIndex > last.index)
        corrupt(`a segment after entry ${header.prevIndex}, beyond the log's last entry ${last.index}`);
      if (!atSnapshot && header.prevIndex === last.index && header.prevTerm !== last.term)
        corrupt(`a segment after entry ${header.prevIndex} of term ${header.prevTerm}, which has term ${last.term}`);
    }
    const first = scanned.units.map((u) => firstEntryIndex(u.records)).find((i) => i !== undefined);
    if (first !== undefined && first !== header.prevIndex + 1)
      corrupt(
        `its first entry is ${first}, not ${header.prevIndex + 1} (after its header's entry ${header.prevIndex})`,
      );
    headers.push(header);
    if (k === 0) last = { index: header.prevIndex, term: header.prevTerm };
    for (const unit of scanned.units) {
      // End records are the segment's structure, not the log's.
      const kept = unit.records.filter((record) => record.kind !== 'end').map(copied);
      if (kept.length > 0) units.push({ sequence: segment.sequence, offset: unit.offset, records: kept });
      for (const record of kept) {
        records.push(record);
        if (record.kind === 'termVote') termVote = { term: record.term, vote: record.vote };
        last = advanced(last, record);
      }
    }
  }
  return { headers, units, records, last, termVote };
}

/** The index of the first entry in `records`, if any holds one. */
function firstEntryIndex(records: readonly UnitRecord[]): number | undefined {
  for (const record of records)
    if (record.kind === 'entries' && record.entries[0] !== undefined) return record.entries[0].index;
  return undefined;
}

/** The log position after `record`: an entries record ends at its last entry (truncating any suffix). */
function advanced(last: LogPoint, record: UnitRecord): LogPoint {
  if (record.kind === 'snapshot') return { index: record.index, term: record.term };
  if (record.kind !== 'entries') return last;
  const final = record.entries[record.entries.length - 1];
  return final === undefined ? last : { index: final.index, term: final.term };
}

/** `record` with its entries' data copied out of the buffer it was read from. */
function copied(record: UnitRecord): UnitRecord {
  if (record.kind !== 'entries') return record;
  return { kind: 'entries', entries: record.entries.map((e): Entry => ({ ...e, data: e.data.slice() })) };
}

/** The first index a segment's name gives (its header's entry plus one). */
function firstIndexOfName(name: string): number {
  const match = SEGMENT_NAME.exec(name);
  if (match === null) throw new RangeError(`${name} is not a segment's name`);
  return parseInt(match[2] ?? '', 16);
}

function segmentName(sequence: number, first: number): string {
  const hex = (value: number): string => value.toString(16).padStart(16, '0');
  return `${hex(sequence)}-${hex(first)}.seg`;
}

/** One positioned write of all of `bytes`; on an O_DSYNC file it returns once they are on disk. */
async function write(file: fs.FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await file.write(bytes, done, bytes.length - done, position + done);
    if (bytesWritten <= 0) throw new Error(`a write at ${position + done} wrote nothing`);
    done += bytesWritten;
  }
}

/** Reads exactly `into.length` bytes at `position`; fewer (the file ends) is corruption. */
async function readFully(file: fs.FileHandle, into: Uint8Array, position: number, where: string): Promise<void> {
  let done = 0;
  while (done < into.length) {
    const { bytesRead } = await file.read(into, done, into.length - done, position + done);
    if (bytesRead <= 0) throw new CorruptDataError(`${where}: the segment ends inside the unit`);
    done += bytesRead;
  }
}

/** The header of the unit read at `offset`: a whole unit's, or CorruptDataError naming `where`. */
function checkedUnitHeader(
  head: Uint8Array,
  offset: number,
  where: string,
): { bodyLength: number; bodyChecksum: number } {
  const header = readUnitHeader(head, offset);
  if (header.kind !== 'unit') throw new CorruptDataError(`${where}: no unit header there`);
  return header;
}

/** The records of a unit's body (end records left out), once it matches its checksum. */
function checkedUnitRecords(body: Uint8Array, bodyChecksum: number, where: string): UnitRecord[] {
  if (!bodyMatches(body, bodyChecksum)) throw new CorruptDataError(`${where}: a unit that fails its checksum`);
  return decodeUnitBody(body, where).filter((record) => record.kind !== 'end');
}

/** `readFully` on a file descriptor, blocking. */
function readFullySync(fd: number, into: Uint8Array, position: number, where: string): void {
  let done = 0;
  while (done < into.length) {
    const bytesRead = readSync(fd, into, done, into.length - done, position + done);
    if (bytesRead <= 0) throw new CorruptDataError(`${where}: the segment ends inside the unit`);
    done += bytesRead;
  }
}

/** Fsyncs a directory: a file's creation, rename or deletion in it counts only after this. */
async function syncDirectory(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
