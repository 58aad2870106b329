// The segment files of a Raft log in one directory (docs/log-file-proposal.md, "The segment
// files"): reading them back on open, appending one unit per call with one synced write, starting
// a new segment when one is full (or when the caller asks, for an install), and deleting old ones.
// Not used by the node yet: the log still lives in LevelDB.
//
// Invariants:
//  - A unit is appended by one positioned write on a file opened O_DSYNC: when `append` resolves,
//    the unit is on disk. Nothing is acknowledged before that.
//  - Segments are named `<sequence>-<first index>.seg` (16 hex digits each) and their sequence
//    numbers are contiguous. A segment other than the last ends with an end record.
//  - A new segment is preallocated with zeros and fsync'd under a temporary name, gets its header
//    (synced), and only then its name; the directory is fsync'd before anything is written into
//    it, and after segments are deleted. So a named segment always has a whole header and is
//    full-size, and a crash leaves at most a temporary file, which open deletes.
//  - The first unit of every segment carries the latest term and vote: the newest segment alone
//    tells them, so deleting older ones never loses them.

import fs from 'node:fs/promises';
import { constants } from 'node:fs';
import path from 'node:path';
import type { Entry } from '../../raft/types.js';
import { CorruptDataError, StorageRefusedError } from '../errors.js';
import { SEGMENT_HEADER_BYTES, encodeSegmentHeader, type SegmentHeader } from './segment-header.js';
import { scanSegment } from './segment-scan.js';
import { encodeUnit, unitSpan, type UnitRecord } from './unit-codec.js';

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

/** What open read back: every record of every segment, in order, and the segments' headers. */
export interface ReadBack {
  readonly headers: readonly SegmentHeader[];
  /** Every record in write order but the end records (entry data copied out of the files' buffers). */
  readonly records: readonly UnitRecord[];
}

interface Current {
  readonly file: fs.FileHandle;
  readonly sequence: number;
  /** Where the next unit goes. */
  offset: number;
  /** Closed by an end record: the next append starts a new segment. */
  closed: boolean;
}

export class SegmentFiles {
  private current: Current | null;
  /** The names of the segments on disk by sequence, oldest first. */
  private readonly names: Map<number, string>;
  /** The last entry written (or the snapshot point a snapshot record set): the next segment's prev. */
  private last: LogPoint;
  /** The latest term and vote written: the first unit of each new segment repeats them. */
  private termVote: { term: number; vote: string } | null;
  /** The next segment, preallocated in the background; null until asked for. */
  private next: Promise<string> | null = null;
  private readonly segmentBytes: number;

  private constructor(
    private readonly options: SegmentFilesOptions,
    state: {
      current: Current | null;
      names: Map<number, string>;
      last: LogPoint;
      termVote: { term: number; vote: string } | null;
    },
  ) {
    this.segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    this.current = state.current;
    this.names = state.names;
    this.last = state.last;
    this.termVote = state.termVote;
  }

  /**
   * Opens the segments in `options.dir`: deletes temporary files a crash left, reads every segment
   * back (zeroing a torn last write), and checks that the segments belong to this node and follow
   * each other. Throws CorruptDataError naming the file and offset when they cannot be trusted,
   * and StorageRefusedError when they are another node's or of a newer format.
   */
  static async open(options: SegmentFilesOptions): Promise<{ files: SegmentFiles; readBack: ReadBack }> {
    const segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    await fs.mkdir(options.dir, { recursive: true });
    const names = await fs.readdir(options.dir);
    const leftovers = names.filter((name) => name.endsWith(TEMPORARY_SUFFIX));
    for (const name of leftovers) await fs.rm(path.join(options.dir, name), { force: true });
    if (leftovers.length > 0) await syncDirectory(options.dir);
    const segments = names
      .map((name) => ({ name, match: SEGMENT_NAME.exec(name) }))
      .filter((s): s is { name: string; match: RegExpExecArray } => s.match !== null)
      .map(({ name, match }) => ({ name, sequence: parseInt(match[1] ?? '', 16), first: parseInt(match[2] ?? '', 16) }))
      .sort((a, b) => a.sequence - b.sequence);
    const headers: SegmentHeader[] = [];
    const records: UnitRecord[] = [];
    let last: LogPoint = { index: 0, term: 0 };
    let termVote: { term: number; vote: string } | null = null;
    let current: Current | null = null;
    for (const [k, segment] of segments.entries()) {
      const file = path.join(options.dir, segment.name);
      const isLast = k === segments.length - 1;
      const before = segments[k - 1];
      if (before !== undefined && segment.sequence !== before.sequence + 1)
        throw new CorruptDataError(`${file}: segment ${before.sequence + 1} is missing before it`);
      const bytes = await fs.readFile(file);
      if (bytes.length !== segmentBytes)
        throw new CorruptDataError(`${file}: ${bytes.length} bytes, not the ${segmentBytes} of a segment`);
      const scanned = scanSegment(bytes, isLast, file);
      const { header } = scanned;
      if (header.clusterId !== options.clusterId || header.nodeId !== options.nodeId) {
        throw new StorageRefusedError(
          `${file} is a log segment of node ${header.nodeId} in cluster ${header.clusterId}, not of node ${options.nodeId} in cluster ${options.clusterId}: this log directory belongs to another node`,
        );
      }
      if (header.sequence !== segment.sequence || header.prevIndex + 1 !== segment.first)
        throw new CorruptDataError(
          `${file}: its header (sequence ${header.sequence}, after index ${header.prevIndex}) does not match its name`,
        );
      if (!isLast && !scanned.closed)
        throw new CorruptDataError(`${file}: a segment older than the last that was never closed`);
      headers.push(header);
      if (k === 0) last = { index: header.prevIndex, term: header.prevTerm };
      for (const unit of scanned.units) {
        for (const record of unit.records) {
          if (record.kind === 'end') continue; // the segment's structure, not the log's
          const kept = copied(record);
          records.push(kept);
          if (kept.kind === 'termVote') termVote = { term: kept.term, vote: kept.vote };
          last = advanced(last, kept);
        }
      }
      if (isLast) {
        const handle = await fs.open(file, constants.O_RDWR | constants.O_DSYNC);
        try {
          // The torn write was never acknowledged: zero it, synced, so the next unit lands on zeros.
          if (scanned.torn !== null) {
            const zeros = new Uint8Array(scanned.torn.to - scanned.torn.from);
            await handle.write(zeros, 0, zeros.length, scanned.torn.from);
          }
        } catch (error) {
          await handle.close();
          throw error;
        }
        current = { file: handle, sequence: segment.sequence, offset: scanned.end, closed: scanned.closed };
      }
    }
    const files = new SegmentFiles(
      { ...options, segmentBytes },
      { current, names: new Map(segments.map((s) => [s.sequence, s.name])), last, termVote },
    );
    return { files, readBack: { headers, records } };
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
   * Appends `records` as one unit, synced; starts a new segment first when the current one is
   * closed or has no room (the new one begins with the latest term and vote).
   */
  async append(records: readonly UnitRecord[]): Promise<void> {
    const current = this.current;
    if (current === null) throw new Error('no segment to append to: startSegment first');
    const unit = encodeUnit(records, current.offset);
    if (current.closed || current.offset + unit.length + END_SPAN > this.segmentBytes) {
      await this.startSegment(this.last, records);
      return;
    }
    await write(current.file, unit, current.offset);
    current.offset += unit.length;
    this.noteWritten(records);
  }

  /**
   * Closes the current segment (if any) and starts a new one after `prev`, whose first unit holds
   * the latest term and vote and then `records`: what an install does, with a snapshot record, and
   * what append does when a segment is full.
   */
  async startSegment(prev: LogPoint, records: readonly UnitRecord[]): Promise<void> {
    const current = this.current;
    if (current !== null && !current.closed) {
      await write(current.file, encodeUnit([{ kind: 'end' }], current.offset), current.offset);
      current.closed = true;
    }
    const sequence = current === null ? 1 : current.sequence + 1;
    const temporary = await this.takeNext();
    const header: SegmentHeader = {
      clusterId: this.options.clusterId,
      nodeId: this.options.nodeId,
      sequence,
      prevIndex: prev.index,
      prevTerm: prev.term,
    };
    const first = this.termVote === null ? records : [{ kind: 'termVote' as const, ...this.termVote }, ...records];
    const unit = encodeUnit(first, SEGMENT_HEADER_BYTES);
    // Invariant: a unit always fits in an empty segment (else the append would never end).
    if (SEGMENT_HEADER_BYTES + unit.length + END_SPAN > this.segmentBytes)
      throw new RangeError(`a unit of ${unit.length} bytes does not fit in a segment of ${this.segmentBytes}`);
    const name = segmentName(sequence, prev.index + 1);
    const file = await fs.open(temporary, constants.O_RDWR | constants.O_DSYNC);
    try {
      await write(file, encodeSegmentHeader(header), 0);
      await fs.rename(temporary, path.join(this.options.dir, name));
      await syncDirectory(this.options.dir);
    } catch (error) {
      await file.close();
      throw error;
    }
    await current?.file.close();
    this.current = { file, sequence, offset: SEGMENT_HEADER_BYTES, closed: false };
    this.names.set(sequence, name);
    this.last = prev;
    await write(file, unit, SEGMENT_HEADER_BYTES);
    this.current.offset += unit.length;
    this.noteWritten(first);
    // The segment after this one is made ready while this one fills. A failure (a full disk) is
    // the next rollover's to report, when it awaits this: marked handled until then, so that it
    // does not end the process as an unhandled rejection.
    if (this.next === null) {
      const next = this.preallocate();
      next.catch(() => undefined);
      this.next = next;
    }
  }

  /** Deletes the segments with a sequence below `sequence` (never the last), then fsyncs the directory. */
  async deleteBefore(sequence: number): Promise<void> {
    const newest = Math.max(...this.names.keys());
    let deleted = 0;
    // Oldest first (a Map keeps insertion order, and segments are added in sequence order): a crash
    // part way leaves a contiguous run of segments.
    for (const [oldest, name] of this.names) {
      if (oldest >= sequence || oldest === newest) break;
      await fs.rm(path.join(this.options.dir, name));
      this.names.delete(oldest);
      deleted++;
    }
    if (deleted > 0) await syncDirectory(this.options.dir);
  }

  /** Closes the current segment's file and waits for a preallocation in flight (its file stays, temporary). */
  async close(): Promise<void> {
    await this.next?.catch(() => undefined);
    await this.current?.file.close();
    this.current = null;
  }

  private noteWritten(records: readonly UnitRecord[]): void {
    for (const record of records) {
      if (record.kind === 'termVote') this.termVote = { term: record.term, vote: record.vote };
      this.last = advanced(this.last, record);
    }
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
        await file.write(ZERO_CHUNK, 0, Math.min(ZERO_CHUNK.length, this.segmentBytes - at), at);
      }
      await file.sync();
    } finally {
      await file.close();
    }
    return temporary;
  }
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

function hex(value: number): string {
  return value.toString(16).padStart(16, '0');
}

function segmentName(sequence: number, first: number): string {
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

/** Fsyncs a directory: a file's creation, rename or deletion in it counts only after this. */
async function syncDirectory(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
