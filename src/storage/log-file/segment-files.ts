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
import { CorruptDataError, StorageRefusedError } from '../errors.js';
import {
  SEGMENT_HEADER_BYTES,
  decodeSegmentHeader,
  encodeSegmentHeader,
  type SegmentHeader,
} from './segment-header.js';
import { checkUnit, scanSegment, type ScannedSegment } from './segment-scan.js';
import {
  ReadBack,
  advanced,
  firstEntryIndex,
  type LogPoint,
  type ReadBackVisitor,
  type TermVote,
  type UnitLocation,
} from './read-back.js';
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

export type { LogPoint, ReadBackUnit, ReadBackVisitor, UnitLocation } from './read-back.js';

/**
 * The size of a new segment file: 16 MiB. etcd's WAL uses 64 MiB, but each new segment is
 * preallocated with zeros (two on a node's first start), and the fastest PUT run here, 7,500 writes
 * of 100-byte values a second, makes about 1 MB/s of log: 16 MiB still lasts several seconds, and a
 * 3-node local cluster writes 96 MiB of zeros on its first start, not 384 (BENCHMARKS.md, step 24).
 * Each segment's header says its own size, so changing this never strands a dir.
 */
export const DEFAULT_SEGMENT_BYTES = 16 * 1024 * 1024;

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

interface Current {
  readonly file: fs.FileHandle;
  readonly sequence: number;
  /** The segment's size (its header's: an older segment may differ from `segmentBytes`). */
  readonly size: number;
  /** The entry before every entry this segment may hold (its header's). */
  readonly prevIndex: number;
  /** Where the next unit goes. */
  offset: number;
  /** Closed by an end record: the next append starts a new segment. */
  closed: boolean;
}

/** A segment on disk: its file's name and size. */
interface OnDisk {
  readonly name: string;
  readonly size: number;
}

export class SegmentFiles {
  private current: Current | null;
  /** The segments on disk by sequence, oldest first: each one's name and size (its header's). */
  private readonly segments: Map<number, OnDisk>;
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
    state: {
      current: Current | null;
      segments: Map<number, OnDisk>;
      last: LogPoint;
      termVote: TermVote | null;
    },
  ) {
    this.segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    this.current = state.current;
    this.segments = state.segments;
    this.last = state.last;
    this.termVote = state.termVote;
    if (this.current !== null) this.preallocateNext();
  }

  /**
   * Opens the segments in `options.dir`: deletes temporary files and an empty newest segment a
   * crash left, reads every segment back one unit at a time, handing each header and unit to
   * `visitor` in write order (zeroing a torn last write), and checks that the segments belong to this node and
   * follow each other. Says the segments' headers, oldest first. Throws CorruptDataError naming the
   * file (and offset) when they cannot be trusted, and StorageRefusedError when they are another
   * node's or of a newer format; `visitor` may have seen units by then.
   */
  static async open(
    options: SegmentFilesOptions,
    visitor: ReadBackVisitor,
  ): Promise<{ files: SegmentFiles; headers: readonly SegmentHeader[] }> {
    const segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    await fs.mkdir(options.dir, { recursive: true });
    const listed = await fs.readdir(options.dir);
    const leftovers = listed.filter((name) => name.endsWith(TEMPORARY_SUFFIX));
    for (const name of leftovers) await fs.rm(path.join(options.dir, name), { force: true });
    if (leftovers.length > 0) await syncDirectory(options.dir);
    const segments = listSegments(options.dir, listed);
    const readBack = new ReadBack(visitor);
    const verdicts: SegmentVerdict[] = [];
    for (const [k, segment] of segments.entries()) {
      const scanned = await streamSegmentFile(segment.file, k === segments.length - 1, {
        header: (header) => {
          checkHeader(header, segment, options);
          readBack.beginSegment({ ...segment, first: k === 0 }, header);
        },
        unit: (unit) => readBack.unit(unit.offset, unit.records),
      });
      readBack.endSegment(scanned.closed);
      verdicts.push(scanned);
    }
    // A crash after a new segment got its name but before its first unit was whole: nothing in it
    // was acknowledged, and it lacks the term and vote every segment begins with. Delete it; the
    // segment before it is closed, so the next append starts a new one.
    if (verdicts[verdicts.length - 1]?.unitCount === 0) {
      await fs.rm(segments[segments.length - 1]?.file ?? '');
      await syncDirectory(options.dir);
      segments.pop();
      verdicts.pop();
      readBack.dropEmptyNewest();
    }
    readBack.finish();
    let current: Current | null = null;
    const lastSegment = segments[segments.length - 1];
    const lastScan = verdicts[verdicts.length - 1];
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
        size: lastScan.header.segmentBytes,
        prevIndex: lastScan.header.prevIndex,
        offset: lastScan.end,
        closed: lastScan.closed,
      };
    }
    const files = new SegmentFiles(
      { ...options, segmentBytes },
      {
        current,
        segments: new Map(
          segments.map((s, k) => [
            s.sequence,
            { name: s.name, size: verdicts[k]?.header.segmentBytes ?? segmentBytes },
          ]),
        ),
        last: readBack.last,
        termVote: readBack.termVote,
      },
    );
    return { files, headers: readBack.headers };
  }

  /** Whether there is a segment to append to (false before the first `startSegment`). */
  get hasSegment(): boolean {
    return this.current !== null;
  }

  /** The bytes the segments take on disk (each is preallocated whole). */
  get diskBytes(): number {
    let total = 0;
    for (const { size } of this.segments.values()) total += size;
    return total;
  }

  /** The sequences of the segments on disk, oldest first. */
  get segmentSequences(): readonly number[] {
    return [...this.segments.keys()];
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
    const full = current.offset + unit.length + END_SPAN > current.size;
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
    // A segment holds at least its first unit: one larger than a segment (a single entry near the
    // value limit, 16 MiB at most) gets a segment of its own size instead of failing the store.
    const needed = SEGMENT_HEADER_BYTES + unit.length + END_SPAN;
    const size = Math.max(this.segmentBytes, Math.ceil(needed / UNIT_ALIGN_BYTES) * UNIT_ALIGN_BYTES);
    const current = this.current;
    const sequence = current === null ? 1 : current.sequence + 1;
    const name = segmentName(sequence, prev.index + 1);
    if (current !== null && !current.closed) {
      await write(current.file, encodeUnit([{ kind: 'end' }], current.offset), current.offset);
      current.closed = true;
    }
    // The preallocated next segment stays for a later rollover when this one is larger.
    const temporary = size === this.segmentBytes ? await this.takeNext() : await this.preallocate(size, 'large');
    const file = await fs.open(temporary, constants.O_RDWR | constants.O_DSYNC);
    try {
      const header = {
        clusterId: this.options.clusterId,
        nodeId: this.options.nodeId,
        sequence,
        segmentBytes: size,
      };
      await write(file, encodeSegmentHeader({ ...header, prevIndex: prev.index, prevTerm: prev.term }), 0);
      await fs.rename(temporary, path.join(this.options.dir, name));
      // Known from here on even if the fsync below fails: a retry must not reuse the sequence.
      this.segments.set(sequence, { name, size });
      await syncDirectory(this.options.dir);
    } catch (error) {
      await file.close();
      throw error;
    }
    await current?.file.close();
    this.current = {
      file,
      sequence,
      size,
      prevIndex: prev.index,
      offset: SEGMENT_HEADER_BYTES,
      closed: false,
    };
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
    return [...this.segments].map(([sequence, { name }]) => ({ sequence, prevIndex: firstIndexOfName(name) - 1 }));
  }

  private unitFile(location: UnitLocation): { file: string; where: string } {
    const name = this.segments.get(location.sequence)?.name;
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
    const newest = Math.max(...this.segments.keys());
    for (const [oldest, { name }] of this.segments) {
      if (oldest >= sequence || oldest === newest) break;
      await fs.rm(path.join(this.options.dir, name));
      this.segments.delete(oldest);
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

  /**
   * Writes a zero-filled segment of `size` under a temporary name and fsyncs it; resolves with its
   * path. `name`: the background one is `next`, an oversized one made on the spot `large`.
   */
  private async preallocate(size = this.segmentBytes, name = 'next'): Promise<string> {
    const temporary = path.join(this.options.dir, `${name}${TEMPORARY_SUFFIX}`);
    const file = await fs.open(temporary, 'w');
    try {
      for (let at = 0; at < size; at += ZERO_CHUNK.length) {
        await write(file, ZERO_CHUNK.subarray(0, Math.min(ZERO_CHUNK.length, size - at)), at);
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

/** What a segment file's scan found; its units went to the visitor as they were read. */
export type SegmentVerdict = Omit<ScannedSegment, 'units'> & { readonly unitCount: number };

export interface SegmentVisitor {
  /** The segment's header, before any of its units (throw to refuse the segment). */
  header?(header: SegmentHeader): void;
  /** Each whole unit, in order. Entry data are views of a buffer read for this unit alone. */
  unit(unit: { readonly offset: number; readonly records: readonly UnitRecord[] }): void;
}

/**
 * scanSegment of a segment file, reading it forward a window of 1 MiB (or one unit, when larger) at
 * a time, never the whole file: reading a file whole made every node's open cost a segment's size
 * in memory at once, and every entry of every segment was kept until replayed (BENCHMARKS.md,
 * steps 23 and 24). One read per unit instead made a segment of small units (one per Ready at one
 * connection) cost tens of thousands of reads: 5-6 s to open 60,000 of them (step 26). The units go
 * to `visit` as they are read.
 *
 * Why the verdict is scanSegment's: the walk is the same (from the header, each unit whose header
 * and body check out, up to an end record or the first place with no whole unit), so are the units.
 * When every byte after that place is zero, scanSegment finds nothing torn either. Anything else (a
 * torn write, damage) is judged by scanSegment on the whole file, read at once: the rules that tell
 * them apart look at every later sector. That happens at most for the last segment after a crash,
 * or for a segment the open then refuses.
 */
export async function streamSegmentFile(file: string, last: boolean, visit: SegmentVisitor): Promise<SegmentVerdict> {
  const handle = await fs.open(file, 'r');
  try {
    const { size } = await handle.stat();
    if (size < SEGMENT_HEADER_BYTES)
      throw new CorruptDataError(`${file}: ${size} bytes, shorter than a segment's header`);
    const reader = new ForwardReader(handle, size, file);
    const header = decodeSegmentHeader(await reader.bytes(0, SEGMENT_HEADER_BYTES), file);
    // A segment is preallocated whole before it gets its name: any other size is damage (a copy
    // cut short would lose acknowledged units silently).
    if (size !== header.segmentBytes)
      throw new CorruptDataError(`${file}: ${size} bytes, not the ${header.segmentBytes} its header says`);
    visit.header?.(header);
    let at = SEGMENT_HEADER_BYTES;
    let closed = false;
    let unitCount = 0;
    while (!closed && at + UNIT_HEADER_BYTES <= size) {
      const unit = readUnitHeader(await reader.bytes(at, UNIT_HEADER_BYTES), at);
      if (unit.kind !== 'unit' || at + UNIT_HEADER_BYTES + unit.bodyLength > size) break;
      const body = await reader.bytes(at + UNIT_HEADER_BYTES, unit.bodyLength);
      if (!bodyMatches(body, unit.bodyChecksum)) break;
      const records = decodeUnitBody(body, `${file}, offset ${at}`);
      closed = checkUnit(records, header, at, file);
      visit.unit({ offset: at, records });
      unitCount++;
      at += unitSpan(unit.bodyLength);
    }
    if (await reader.zerosFrom(at)) return { header, end: at, closed, torn: null, unitCount };
    const whole = new Uint8Array(size);
    await readFully(handle, whole, 0, file);
    const { units, ...verdict } = scanSegment(whole, last, file);
    return { ...verdict, unitCount: units.length };
  } finally {
    await handle.close();
  }
}

/**
 * A file read forward through windows of at least ZERO_CHUNK's size, each byte read once. Each
 * window is a new buffer, never reused: the views `bytes` returns (entry data among them) stay
 * valid, and a window is collected once no view of it is kept.
 */
class ForwardReader {
  private window = new Uint8Array(0);
  /** Where `window` begins in the file. */
  private from = 0;

  constructor(
    private readonly handle: fs.FileHandle,
    private readonly size: number,
    private readonly where: string,
  ) {}

  /** The file's bytes [at, at + length), which must lie within it. */
  async bytes(at: number, length: number): Promise<Uint8Array> {
    const to = this.from + this.window.length;
    if (at < this.from || at + length > to) {
      // A new window from `at`: what the old one holds of it is copied, only the rest is read.
      const window = new Uint8Array(Math.max(length, Math.min(ZERO_CHUNK.length, this.size - at)));
      const kept = at >= this.from && at < to ? to - at : 0;
      window.set(this.window.subarray(at - this.from, at - this.from + kept));
      await readFully(this.handle, window.subarray(kept), at + kept, this.where);
      this.window = window;
      this.from = at;
    }
    return this.window.subarray(at - this.from, at - this.from + length);
  }

  /** Whether every byte from `at` to the end of the file is zero. */
  async zerosFrom(at: number): Promise<boolean> {
    for (let next = at; next < this.size;) {
      const length = Math.min(ZERO_CHUNK.length, this.size - next);
      const view = await this.bytes(next, length);
      if (Buffer.compare(view, ZERO_CHUNK.subarray(0, length)) !== 0) return false;
      next += length;
    }
    return true;
  }
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
