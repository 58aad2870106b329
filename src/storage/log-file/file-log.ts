// The Raft log and its term and vote over the segment files (docs/log-file-proposal.md, "The log
// store over the files"): what LogStore's LevelDB touch points become in a data dir of
// format 4 (NodeStorage's logInFiles).
//
// What it does: replays the files on open into the log they hold and reconciles that with the
// state machine's snapshot point; appends one unit per Ready; reads old entries back by unit,
// blocking (the core's synchronous reads) or not (the read-ahead); deletes whole segments behind a
// compaction; starts the log over after an installed snapshot.
//
// Invariants:
//  - The unit index changes only after the write that made it so returned: what it finds is on
//    disk. Its spans are the log's entries, start.index+1..last, and nothing else.
//  - A segment is deleted only when every entry it holds is at or below the index the caller
//    compacts through (the caller keeps that at or below the state machine's durable applied
//    index). Entries after a segment's header entry live in it or in later segments: a segment
//    starts after the last entry, after the entry before those it replaces, or after a snapshot.
//  - Every I/O failure marks the store failed (StoreHealth): after one, nothing here runs again.

import { entryBytes } from '../../raft/storage.js';
import type { Entry } from '../../raft/types.js';
import { CorruptDataError, StorageRefusedError, describeError } from '../errors.js';
import type { StoreHealth } from '../store-health.js';
import { SegmentFiles, type LogPoint, type SegmentFilesOptions, type UnitLocation } from './segment-files.js';
import type { ReadBackUnit, ReadBackVisitor } from './read-back.js';
import type { SegmentHeader } from './segment-header.js';
import { TermIndex } from '../term-index.js';
import { TailCache } from '../tail-cache.js';
import { loadEntries } from '../load-log-entry.js';
import type { UnitRecord } from './unit-codec.js';
import { OneAtATime } from '../one-at-a-time.js';
import { SEGMENT_HEADER_BYTES } from './segment-header.js';
import { UnitIndex } from './unit-index.js';

/**
 * The entry bytes one unit carries at most (a Ready with more is written as several units): well
 * below the codec's MAX_UNIT_BODY_BYTES, so a large batch never makes a unit the reader refuses.
 */
const UNIT_ENTRY_BYTES = 8 * 1024 * 1024;
/** What an entry costs in an entries record besides its data (unit-codec.ts: index, type, length). */
const ENTRY_RECORD_BYTES = 13;

export interface TermVote {
  readonly term: number;
  readonly vote: string;
}

export interface FileLogOptions extends SegmentFilesOptions {
  readonly health: StoreHealth;
  /**
   * The state machine's snapshot point (LevelDB's meta): it holds every entry up to it. When the
   * log does not hold that entry with that term, an install switched the state machine and a crash
   * came before the log started over after it: open starts it over now.
   */
  readonly snapshot: LogPoint;
  /**
   * The state machine's applied entry (LevelDB's). The log is started over only when it equals
   * the snapshot point, as an install's switch leaves it: otherwise a log that lacks the snapshot
   * point lost entries, and open refuses it rather than discard what is left.
   */
  readonly applied: LogPoint;
  /**
   * A new data dir: no segment yet is what it should have, and open starts the first. An existing
   * dir always has one (a new dir's first segment is made before its identity is written), so
   * none there means the log, and the node's term and vote with it, are lost: open refuses.
   */
  readonly fresh: boolean;
  /** What to tell the operator when the files cannot be trusted (open's refusal ends with it). */
  readonly advice: string;
  /** The bytes of the newest entries open keeps in memory (the tail cache it returns). */
  readonly cacheBytes: number;
}

/**
 * The log the files hold, after open's reconciliation: its terms and newest entries, built as the
 * units were read (open never holds the whole log; older entries are read back by unit).
 */
export interface RecoveredLog {
  /** The latest term and vote written; null when none ever was. */
  readonly termVote: TermVote | null;
  /** The entry the log starts after. */
  readonly start: LogPoint;
  /** The term of every entry after `start` (its last index is the log's last). */
  readonly terms: TermIndex;
  /** The newest entries, up to `cacheBytes`: a suffix of the log. */
  readonly cache: TailCache;
}

export class FileLog {
  /** Bumped by each deletion of segments and each install: reads begun before may be stale. */
  private generation = 0;
  /** Appends and new segments, one at a time (see `write`). */
  private readonly writes = new OneAtATime();
  /** Deletions of old segments, one at a time, beside the appends (see `deleteSegmentsBefore`). */
  private readonly deletions = new OneAtATime();

  private constructor(
    private readonly files: SegmentFiles,
    private readonly health: StoreHealth,
    private readonly dir: string,
    /** The unit of each entry of the log (built by open's replay). */
    private readonly index: UnitIndex,
  ) {}

  /**
   * Opens the log in `options.dir`: reads the segments back, replays them, and starts the log over
   * after the state machine's snapshot point when it does not hold it. Refuses (StorageRefusedError,
   * ending with `options.advice`) files that cannot be trusted or do not belong to this node.
   */
  static async open(options: FileLogOptions): Promise<{ log: FileLog; recovered: RecoveredLog }> {
    const index = new UnitIndex();
    const replay = new Replay(index, options.cacheBytes);
    let opened: Awaited<ReturnType<typeof SegmentFiles.open>>;
    try {
      opened = await SegmentFiles.open(options, replay);
    } catch (error) {
      throw refusal(options, error);
    }
    const { files, headers } = opened;
    const log = new FileLog(files, options.health, options.dir, index);
    try {
      const recovered = await log.reconcile(headers.length === 0 ? null : replay.result(), options);
      return { log, recovered };
    } catch (error) {
      await files.close().catch(() => undefined);
      throw refusal(options, error);
    }
  }

  /**
   * Appends the Ready's term and vote (when either changed) and entries as one unit, synced: when
   * this resolves they are on disk. Entries that begin at or before the last one replace it and
   * every one after; `truncatedTo` is then the entry before the first replaced (index and term).
   */
  async append(termVote: TermVote | null, entries: readonly Entry[], truncatedTo?: LogPoint): Promise<void> {
    const chunks = this.chunksOf(entries);
    for (const [k, chunk] of chunks.entries()) {
      const records: UnitRecord[] = [];
      if (k === 0 && termVote !== null) records.push({ kind: 'termVote', term: termVote.term, vote: termVote.vote });
      if (chunk.length > 0) records.push({ kind: 'entries', entries: chunk });
      if (records.length === 0) return;
      // Only the first unit replaces entries; the others follow it.
      const replaced = k === 0 ? truncatedTo : undefined;
      const location = await this.write('appending to the log', () => this.files.append(records, replaced));
      this.indexEntries(location, chunk);
    }
  }

  /**
   * Starts the log over after an installed snapshot `point`, with the entries that follow it in the
   * same Ready: a new segment (its first unit repeats the latest term and vote), then every older
   * segment deleted. The caller wrote the Ready's term and vote (`append`) before it switched the
   * state machine, so the files never hold a term below the snapshot's.
   */
  async install(point: LogPoint, entries: readonly Entry[]): Promise<void> {
    const [first = [], ...rest] = this.chunksOf(entries);
    const records: UnitRecord[] = [{ kind: 'snapshot', index: point.index, term: point.term }];
    if (first.length > 0) records.push({ kind: 'entries', entries: first });
    const location = await this.write('starting the log after a snapshot', () =>
      this.files.startSegment(point, records),
    );
    this.generation++;
    this.index.clear();
    this.indexEntries(location, first);
    for (const chunk of rest) {
      const next = await this.write('appending to the log', () =>
        this.files.append([{ kind: 'entries', entries: chunk }]),
      );
      this.indexEntries(next, chunk);
    }
    await this.deleteSegmentsBefore(location.sequence);
  }

  /**
   * Deletes every segment whose entries are all at or below `index`, and says the entry the log
   * now starts after: the oldest segment's header entry. Whole segments go, so that is at or below
   * `index`, and the log keeps some entries the state machine already holds.
   */
  async compactThrough(index: number): Promise<number> {
    const starts = this.files.segmentStarts;
    let keepFrom: number | undefined;
    for (const segment of starts) if (segment.prevIndex <= index) keepFrom = segment.sequence;
    if (keepFrom !== undefined) await this.deleteSegmentsBefore(keepFrom);
    return this.files.segmentStarts[0]?.prevIndex ?? index;
  }

  /**
   * Entries lo..hi-1 (all held by the log) read from the files, blocking: stops before `maxBytes`
   * is passed, returning at least one. For the core's synchronous reads of entries older than the
   * tail cache, which are rare.
   */
  readEntriesSync(lo: number, hi: number, maxBytes: number): Entry[] {
    this.health.assertUsable('reading log entries');
    const out: Entry[] = [];
    let bytes = 0;
    for (let next = lo; next < hi;) {
      const span = this.index.spanOf(next);
      if (span === undefined) throw this.corrupt(`reading log entry ${next}`, `no unit holds entry ${next}`);
      let records: UnitRecord[];
      try {
        records = this.files.readUnitSync(span);
      } catch (error) {
        throw this.failed(`reading log entry ${next}`, error);
      }
      const got = entriesIn(records, next, Math.min(hi, span.last + 1));
      if (got === null)
        throw this.corrupt(`reading log entry ${next}`, `its unit does not hold entries ${next}..${span.last}`);
      for (const entry of got) {
        bytes += entryBytes(entry);
        if (out.length > 0 && bytes > maxBytes) return out;
        out.push(entry);
      }
      next += got.length;
    }
    return out;
  }

  /**
   * Entries lo..hi-1 read from the files off the loop, stopping before `maxBytes` is passed (at
   * least one). Stops early, with what it has, when the log changed under it (a conflicting suffix
   * replaced, segments deleted, an install): such entries are stale, and the read-ahead drops them.
   */
  async loadEntries(lo: number, hi: number, maxBytes: number): Promise<Entry[]> {
    const out: Entry[] = [];
    let bytes = 0;
    const generation = this.generation;
    for (let next = lo; next < hi && this.health.usable;) {
      const span = this.index.spanOf(next);
      if (span === undefined || generation !== this.generation) return out;
      let records: UnitRecord[];
      try {
        records = await this.files.readUnit(span);
      } catch (error) {
        // The segment was deleted meanwhile: the entries are behind the log's start now.
        if (generation !== this.generation) return out;
        throw this.failed(`loading log entry ${next}`, error);
      }
      const got = entriesIn(records, next, Math.min(hi, span.last + 1));
      if (got === null)
        throw this.corrupt(`loading log entry ${next}`, `its unit does not hold entries ${next}..${span.last}`);
      for (const entry of got) {
        // An entry whose unit the index no longer names was replaced while the read ran.
        const now = this.index.find(entry.index);
        if (now?.sequence !== span.sequence || now.offset !== span.offset) return out;
        bytes += entryBytes(entry);
        if (out.length > 0 && bytes > maxBytes) return out;
        out.push(entry);
      }
      next += got.length;
    }
    return out;
  }

  /** The segments on disk, oldest first (for tests and the metrics). */
  get segments(): readonly { readonly sequence: number; readonly prevIndex: number }[] {
    return this.files.segmentStarts;
  }

  /** The bytes the segments take on disk (segments made with another size counted as they are). */
  get diskBytes(): number {
    return this.files.diskBytes;
  }

  async close(): Promise<void> {
    await Promise.all([this.writes.idle(), this.deletions.idle()]);
    await this.files.close();
  }

  // ===========================================================================================

  /**
   * Starts the log over after the state machine's snapshot point when the log does not hold it
   * (see FileLogOptions.snapshot), or when a new dir has no log yet; refuses what is lost.
   */
  private async reconcile(
    replayed: RecoveredLog | null,
    { snapshot, applied, fresh, cacheBytes }: FileLogOptions,
  ): Promise<RecoveredLog> {
    if (replayed === null && !fresh)
      throw new CorruptDataError(
        `${this.dir} holds no log segment: this node's log, term and vote are lost (a data dir of this format always has one)`,
      );
    if (replayed !== null) {
      const { start, terms } = replayed;
      if (snapshot.index < start.index)
        throw new CorruptDataError(
          `${this.dir}: the log starts after entry ${start.index}, past the state machine's snapshot point ${snapshot.index}: entries it never applied are gone`,
        );
      if (snapshot.index <= terms.lastIndex && terms.termAt(snapshot.index) === snapshot.term) return replayed;
      // Only an install's switch leaves the log without the snapshot point, and it leaves the
      // state machine applied exactly there: anything else is a log that lost entries.
      if (applied.index !== snapshot.index || applied.term !== snapshot.term)
        throw new CorruptDataError(
          `${this.dir}: the log (entries ${start.index + 1}..${terms.lastIndex}) does not hold the state machine's snapshot point ${snapshot.index} (term ${snapshot.term}), and the state machine applied entry ${applied.index} since: log entries are lost`,
        );
    }
    await this.install(snapshot, []);
    return {
      termVote: replayed?.termVote ?? null,
      start: snapshot,
      terms: new TermIndex(snapshot.index + 1, snapshot.term),
      cache: new TailCache(cacheBytes),
    };
  }

  private indexEntries(location: UnitLocation, entries: readonly Entry[]): void {
    const first = entries[0];
    const last = entries[entries.length - 1];
    if (first !== undefined && last !== undefined) this.index.add(location, first.index, last.index);
  }

  /**
   * Deletes the segments below `sequence`, one deletion at a time but beside the appends: a
   * deletion touches only segments older than any an append writes (never the last), and each
   * costs a directory fsync that a write's path should not wait for.
   */
  private async deleteSegmentsBefore(sequence: number): Promise<void> {
    await this.deletions.run(async () => {
      const oldest = this.files.segmentStarts[0]?.sequence;
      if (oldest === undefined || oldest >= sequence) return;
      this.generation++;
      await this.guarded('deleting old log segments', () => this.files.deleteBefore(sequence));
      this.index.dropSegmentsBefore(sequence);
    });
  }

  /**
   * Runs one change to the files after those before it: appends and new segments never
   * interleave. A failure marks the store failed, and every change queued after it refuses.
   */
  private write<T>(what: string, run: () => Promise<T>): Promise<T> {
    return this.writes.run(() => this.guarded(what, run));
  }

  /** Runs `run` if the store is usable; its failure marks the store failed. */
  private async guarded<T>(what: string, run: () => Promise<T>): Promise<T> {
    this.health.assertUsable(what);
    try {
      return await run();
    } catch (error) {
      throw this.failed(what, error);
    }
  }

  /**
   * `entries` in runs of at most UNIT_ENTRY_BYTES (or one entry) each: one unit per run. A Ready may
   * hold more than a unit's bound (a leader's batch of large values); a crash between its units
   * keeps a prefix of them, which Raft allows, since nothing is acknowledged before all are on disk.
   */
  private chunksOf(entries: readonly Entry[]): Entry[][] {
    const limit = Math.min(UNIT_ENTRY_BYTES, Math.floor((this.files.segmentBytes - SEGMENT_HEADER_BYTES) / 4));
    const chunks: Entry[][] = [[]];
    let bytes = 0;
    for (const entry of entries) {
      const size = entry.data.length + ENTRY_RECORD_BYTES;
      const current = chunks[chunks.length - 1] ?? [];
      if (current.length > 0 && bytes + size > limit) {
        chunks.push([entry]);
        bytes = size;
      } else {
        current.push(entry);
        bytes += size;
      }
    }
    return chunks;
  }

  private failed(what: string, error: unknown): Error {
    return this.health.fail(what, error);
  }

  private corrupt(what: string, why: string): Error {
    return this.failed(what, new CorruptDataError(`${this.dir}: ${why}`));
  }
}

/**
 * Open's replay of the units read back, one at a time: the log they hold (its start, the term of
 * each entry, its newest entries) and the unit of each entry, into the index. A snapshot record
 * starts the log over; an entries record replaces the entries from its first on.
 */
class Replay implements ReadBackVisitor {
  private termVote: TermVote | null = null;
  /** Whether the oldest segment's header was seen (it starts the log). */
  private begun = false;
  /** The term of every entry replayed; its base is the entry the log starts after. */
  private terms = new TermIndex(1, 0);
  private readonly cache: TailCache;

  constructor(
    private readonly index: UnitIndex,
    private readonly cacheBytes: number,
  ) {
    this.cache = new TailCache(cacheBytes);
  }

  /** The oldest segment's header entry is where the log starts (until a snapshot record moves it). */
  segment(header: SegmentHeader): void {
    if (!this.begun) this.startAt({ index: header.prevIndex, term: header.prevTerm });
    this.begun = true;
  }

  unit(unit: ReadBackUnit): void {
    for (const record of unit.records) {
      if (record.kind === 'termVote') this.termVote = { term: record.term, vote: record.vote };
      else if (record.kind === 'snapshot') this.startAt({ index: record.index, term: record.term });
      else if (record.kind === 'entries' && record.entries.length > 0) this.entries(unit, record.entries);
    }
  }

  /**
   * The log replayed. The cached entries are copied out of the buffers their units were read into,
   * so the cache keeps its own bytes and not every window of a file it touches: copying each entry
   * as it was read instead made opening a 150 MiB log twice as slow (BENCHMARKS.md, step 24).
   */
  result(): RecoveredLog {
    const cache = new TailCache(this.cacheBytes);
    const first = this.cache.firstIndex;
    if (first !== undefined) {
      const copies: Entry[] = [];
      for (let i = first; i <= this.terms.lastIndex; i++) {
        const entry = this.cache.get(i);
        if (entry !== undefined) copies.push({ ...entry, data: entry.data.slice() });
      }
      cache.append(copies);
    }
    return { termVote: this.termVote, start: this.start(), terms: this.terms, cache };
  }

  /** The entry the log starts after: the term index's base. */
  private start(): LogPoint {
    const index = this.terms.baseIndex;
    return { index, term: this.terms.termAt(index) };
  }

  private startAt(point: LogPoint): void {
    this.terms = new TermIndex(point.index + 1, point.term);
    this.cache.clear();
    this.index.clear();
  }

  /**
   * An entries record: it replaces the entries from its first on (none past the log's end), and
   * each entry is loaded with the checks every load makes (views of the unit's buffer, in the
   * cache, until result() copies the few it keeps).
   */
  private entries(unit: ReadBackUnit, entries: readonly Entry[]): void {
    const where = `segment ${unit.sequence}, offset ${unit.offset}`;
    const first = entries[0]?.index ?? 0;
    const start = this.terms.baseIndex;
    if (first <= start || first > this.terms.lastIndex + 1)
      throw new CorruptDataError(
        `${where}: entry ${first} does not follow the log (${start + 1}..${this.terms.lastIndex})`,
      );
    this.terms.truncateFrom(first);
    this.cache.truncateFrom(first);
    try {
      loadEntries(this.terms, this.cache, entries);
    } catch (error) {
      if (error instanceof CorruptDataError) throw new CorruptDataError(`${where}: ${error.message}`);
      throw error;
    }
    const last = entries[entries.length - 1];
    if (last !== undefined) this.index.add(unit, first, last.index);
  }
}

/**
 * The entries `from`..`to`-1 of a unit's records, or null when it does not hold them all. A unit
 * holds at most one entries record, contiguous (the codec's), and may hold entries past `to` that a
 * later unit replaced.
 */
function entriesIn(records: readonly UnitRecord[], from: number, to: number): Entry[] | null {
  for (const record of records) {
    if (record.kind !== 'entries') continue;
    const first = record.entries[0]?.index;
    if (first === undefined || from < first) continue;
    const got = record.entries.slice(from - first, to - first);
    if (got.length === to - from && got.every((entry, k) => entry.index === from + k)) return got;
  }
  return null;
}

/** What open throws: a refusal that says what is wrong and what to do. */
function refusal(options: FileLogOptions, error: unknown): Error {
  if (error instanceof StorageRefusedError) return error;
  if (error instanceof CorruptDataError)
    return new StorageRefusedError(`the log in ${options.dir} is corrupt: ${error.message}. ${options.advice}`, {
      cause: error,
    });
  return new StorageRefusedError(
    `cannot read the log in ${options.dir} (${describeError(error)}): check the disk, its free space and the permissions`,
    { cause: error },
  );
}
