// The Raft log and hard state of one node, as the core reads them (the `Storage` interface), and
// the batch operations that change them. NodeStorage writes those operations together with the
// state machine's in one LevelDB batch per Ready; this class only prepares them and, once the batch
// is durable, brings its in-memory view up to date. In a data dir of format 4 the log and the term
// and vote are in segment files instead (`files`, log-file/file-log.ts): `persistToFiles` and
// `installToFiles` write them there, and LevelDB keeps only the snapshot point of the log's state.
//
// Invariants (checked on open by open-data-dir.ts, kept by every write):
//  - the log holds entries firstIndex..lastIndex without gaps, with non-decreasing terms that never
//    exceed the hard state's term;
//  - hardState.commit <= lastIndex (committed entries are never lost or truncated);
//  - every in-memory structure (hard state, term index, tail cache) changes only after the write
//    that made it so is durable: what the core reads is always on disk.

import { assert } from '../raft/assert.js';
import { entryBytes, type Storage } from '../raft/storage.js';
import { NONE, type Entry, type HardState, type NodeId, type SnapshotMeta } from '../raft/types.js';
import {
  META_HARDSTATE,
  META_LOGSTART,
  META_SNAPSHOT,
  decodeLogValue,
  encodeHardState,
  encodeLogPosition,
  encodeLogValue,
  encodeSnapshotMeta,
  indexOfLogKey,
  logKey,
  type LogPosition,
} from './codec.js';
import { delOp, putOp, type ByteBatchOperation, type ByteSublevel, type Database } from './database.js';
import { CorruptDataError } from './errors.js';
import type { FileLog } from './log-file/file-log.js';
import { LogReadAhead } from './read-ahead.js';
import type { StoreHealth } from './store-health.js';
import type { TailCache } from './tail-cache.js';
import type { TermIndex } from './term-index.js';

/** A log that was never compacted starts at index 1, after the empty snapshot (0, 0). */
export const FIRST_INDEX = 1;
/**
 * Log entries decoded per iterator step while loading entries for a follower in the background:
 * ~3 us each to decode, so one step holds the loop for about a millisecond.
 */
const READ_AHEAD_CHUNK = 256;

/** Told when entries that `entriesToSend` answered null for are loaded, or when loading failed. */
export interface LoadListener {
  loaded(): void;
  failed(error: Error): void;
}

export interface LogStoreOptions {
  readonly handles: Database;
  readonly health: StoreHealth;
  /** The cluster's voters, reported in `snapshotMeta()`. */
  readonly voters: readonly NodeId[];
  readonly hardState: HardState;
  /** The latest snapshot point recorded (index 0: none). */
  readonly snapshot: SnapshotMeta;
  readonly terms: TermIndex;
  readonly cache: TailCache;
  /** Bytes of one segment of older entries loaded ahead for a follower far behind. */
  readonly readAheadBytes?: number;
  /**
   * The log in segment files of its own (format 4, docs/log-file-proposal.md), or null when it
   * lives in LevelDB's `log` sublevel with the hard state in `meta`.
   */
  readonly files?: FileLog | null;
}

export class LogStore implements Storage {
  private readonly handles: Database;
  private readonly health: StoreHealth;
  private readonly voters: readonly NodeId[];
  private hardState: HardState;
  private readonly terms: TermIndex;
  private readonly cache: TailCache;
  private readonly readAhead: LogReadAhead;
  private readonly files: FileLog | null;
  private snapshot: SnapshotMeta;
  /** Deletions of compacted entries running in the background, one at a time. */
  private clearing: Promise<void> = Promise.resolve();
  private loadListener: LoadListener | null = null;
  /** Bumped whenever a persist replaces stored entries: background reads begun before are stale. */
  private truncations = 0;
  /** Set by NodeStorage while a batch is being written. */
  writing = false;

  constructor(options: LogStoreOptions) {
    this.handles = options.handles;
    this.health = options.health;
    this.voters = options.voters.slice();
    this.hardState = options.hardState;
    this.terms = options.terms;
    this.cache = options.cache;
    this.snapshot = options.snapshot;
    this.files = options.files ?? null;
    this.readAhead = new LogReadAhead({
      load: (lo, hi, maxBytes) =>
        this.files === null ? this.loadLogRange(lo, hi, maxBytes) : this.files.loadEntries(lo, hi, maxBytes),
      onLoaded: () => this.loadListener?.loaded(),
      onError: (error) => this.loadListener?.failed(this.health.fail('loading log entries for a follower', error)),
      ...(options.readAheadBytes === undefined ? {} : { segmentBytes: options.readAheadBytes }),
    });
  }

  // ===========================================================================================
  // Storage (read by the Raft core, synchronously)

  /** The durable hard state: at start-up, what the core resumes from. */
  initialHardState(): HardState {
    return this.hardState;
  }

  firstIndex(): number {
    return this.terms.baseIndex + 1;
  }

  lastIndex(): number {
    return this.terms.lastIndex;
  }

  term(index: number): number {
    assert(
      index >= this.firstIndex() - 1 && index <= this.lastIndex(),
      () => `NodeStorage.term(${index}) outside [${this.firstIndex() - 1}, ${this.lastIndex()}]`,
    );
    return this.terms.termAt(index);
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    assert(
      lo >= this.firstIndex() && hi <= this.lastIndex() + 1 && lo <= hi,
      () => `NodeStorage.entries(${lo}, ${hi}) outside [${this.firstIndex()}, ${this.lastIndex() + 1})`,
    );
    const out: Entry[] = [];
    let total = 0;
    const cachedFrom = this.cache.firstIndex ?? hi;
    if (this.files !== null && lo < cachedFrom) {
      // Older than the tail cache: read unit by unit from the files (rare; catch-up reads ahead).
      const old = this.files.readEntriesSync(lo, Math.min(hi, cachedFrom), maxBytes);
      for (const entry of old) {
        total += entryBytes(entry);
        out.push(entry);
      }
      if (lo + old.length < Math.min(hi, cachedFrom)) return out;
      lo += old.length;
    }
    for (let index = lo; index < hi; index++) {
      const entry = this.cache.get(index) ?? this.readLogEntry(index);
      total += entryBytes(entry);
      if (out.length > 0 && total > maxBytes) break;
      out.push(entry);
    }
    return out;
  }

  /**
   * Entries for an append: from the tail cache at once, older ones only once the read-ahead has
   * loaded them off the loop (null until then; the load listener hears when to ask again).
   */
  entriesToSend(lo: number, hi: number, maxBytes: number): Entry[] | null {
    const cachedFrom = this.cache.firstIndex;
    if (cachedFrom !== undefined && lo >= cachedFrom) return this.entries(lo, hi, maxBytes);
    if (!this.health.usable) return null;
    return this.readAhead.get(lo, Math.min(hi, cachedFrom ?? hi), maxBytes);
  }

  /** Who to tell when background loads complete or fail (the driver: it resumes replication). */
  setLoadListener(listener: LoadListener): void {
    this.loadListener = listener;
  }

  /** The entry the log starts after: (firstIndex - 1, its term). */
  snapshotMeta(): SnapshotMeta {
    const index = this.terms.baseIndex;
    const recorded = this.snapshot.index > 0 || this.snapshot.voters.length > 0;
    return {
      index,
      term: this.terms.termAt(index),
      voters: recorded ? this.snapshot.voters : this.voters,
      learners: recorded ? (this.snapshot.learners ?? []) : [],
    };
  }

  /** The latest snapshot point recorded: where the state machine was at the last compaction or install. */
  latestSnapshot(): SnapshotMeta {
    return this.snapshot;
  }

  /** The term of a stored entry (the caller knows it is within the log). */
  termAt(index: number): number {
    return this.terms.termAt(index);
  }

  stats(): { cachedEntries: number; cachedBytes: number; termRuns: number } {
    return { cachedEntries: this.cache.size, cachedBytes: this.cache.bytes, termRuns: this.terms.runCount };
  }

  // ===========================================================================================
  // Compaction and snapshot installs

  /**
   * Adds to `ops` the record of a snapshot point and of the log now starting after `compactIndex`
   * (<= snapshot.index; both within the log). The entries up to it are deleted in the background
   * once this is durable (`rememberCompacted`): until then, and after a crash, they are ignored.
   */
  addCompactOperations(snapshot: SnapshotMeta, compactIndex: number, ops: ByteBatchOperation[]): LogPosition {
    assert(
      compactIndex >= this.firstIndex() - 1 && compactIndex <= snapshot.index && snapshot.index <= this.lastIndex(),
      () =>
        `compact: ${compactIndex} / snapshot ${snapshot.index} outside the log [${this.firstIndex() - 1}, ${this.lastIndex()}]`,
    );
    const start = { index: compactIndex, term: this.terms.termAt(compactIndex) };
    ops.push(putOp(this.handles.meta, META_SNAPSHOT, encodeSnapshotMeta(snapshot)));
    // With the log in files, where it starts is the oldest segment's header.
    if (this.files === null) ops.push(putOp(this.handles.meta, META_LOGSTART, encodeLogPosition(start)));
    return start;
  }

  rememberCompacted(snapshot: SnapshotMeta, start: LogPosition): void {
    this.snapshot = snapshot;
    if (start.index <= this.terms.baseIndex) return;
    this.terms.compactTo(start.index);
    this.cache.dropThrough(start.index);
    this.readAhead.truncateBelow(start.index + 1);
    this.deleteThrough(start.index);
  }

  /**
   * Adds to `ops` what installing `snapshot` does to the log: it starts after the snapshot now, and
   * every stored entry after it goes in the same batch (a conflicting suffix); the ones up to it are
   * deleted in the background once this is durable (`rememberInstalled`).
   */
  addInstallOperations(snapshot: SnapshotMeta, ops: ByteBatchOperation[]): void {
    ops.push(putOp(this.handles.meta, META_SNAPSHOT, encodeSnapshotMeta(snapshot)));
    // With the log in files, the files start over after the switch (installToFiles).
    if (this.files !== null) return;
    ops.push(
      putOp(this.handles.meta, META_LOGSTART, encodeLogPosition({ index: snapshot.index, term: snapshot.term })),
    );
    for (let index = Math.max(snapshot.index + 1, this.firstIndex()); index <= this.lastIndex(); index++) {
      ops.push(delOp(this.handles.log, logKey(index)));
    }
  }

  rememberInstalled(snapshot: SnapshotMeta): void {
    const previousLast = this.terms.lastIndex;
    this.snapshot = snapshot;
    this.truncations++;
    this.terms.resetTo(snapshot.index, snapshot.term);
    this.cache.clear();
    this.readAhead.clear();
    // The files deleted their older segments in installToFiles.
    if (this.files === null) this.deleteThrough(Math.min(previousLast, snapshot.index));
  }

  /** A background job of the store failed: the driver must stop (the store is in an unknown state). */
  reportBackgroundFailure(error: Error): void {
    this.loadListener?.failed(error);
  }

  /** Deletes entries up to the log start that a crash left behind (they are never read). */
  deleteCompactedLeftovers(): void {
    // The files' open deleted what an install left; segments behind a compaction go at the next one.
    if (this.files === null && this.terms.baseIndex > 0) this.deleteThrough(this.terms.baseIndex);
  }

  /** LevelDB's estimate of the bytes the log takes on disk, or the segment files' size. */
  async approximateBytes(): Promise<number> {
    if (this.files !== null) return this.files.diskBytes;
    const log = this.handles.log;
    return this.handles.db.approximateSize(
      log.prefixKey(logKey(0), 'view'),
      log.prefixKey(logKey(2 ** 53 - 1), 'view'),
    );
  }

  /** Background work still running (a closing store waits for it). */
  settle(): Promise<void> {
    return this.clearing;
  }

  /**
   * Deletes stored entries up to `index` off the loop (one LevelDB range delete), then compacts
   * that key range so the disk space is actually given back. Entries at or below the log start are
   * never read again, so a crash before this finishes leaves only garbage that the next open clears.
   */
  private deleteThrough(index: number): void {
    if (index < FIRST_INDEX) return;
    const files = this.files;
    this.clearing = this.clearing
      .then(async () => {
        if (!this.health.usable) return;
        // Whole segments at or below the index (the caller keeps it at or below the durable applied index).
        if (files !== null) {
          await files.compactThrough(index);
          return;
        }
        await this.handles.log.clear({ lte: logKey(index) });
        if (!this.health.usable) return;
        await this.handles.db.compactRange(
          this.handles.log.prefixKey(logKey(0), 'view'),
          this.handles.log.prefixKey(logKey(index), 'view'),
        );
      })
      .catch((error: unknown) => {
        // Closed meanwhile: what was not deleted is deleted after the next compaction.
        if (this.health.isClosed) return;
        this.loadListener?.failed(this.health.fail(`deleting compacted log entries up to ${index}`, error));
      });
  }

  // ===========================================================================================
  // Writing: NodeStorage puts these operations in its batch, then calls rememberPersisted

  /**
   * What the driver hands to writeReady must keep the invariants of the log and the hard state. With
   * a snapshot to install, the entries (if any) follow it and the commit may jump to it.
   */
  assertPersistContract(
    hardState: HardState | null,
    entries: readonly Entry[],
    snapshot: SnapshotMeta | null = null,
  ): void {
    const first = entries[0];
    const base =
      snapshot === null
        ? { last: this.lastIndex(), commit: this.hardState.commit }
        : { last: snapshot.index, commit: snapshot.index };
    if (snapshot !== null) {
      assert(
        snapshot.index > this.hardState.commit,
        () => `install: snapshot ${snapshot.index} is not beyond commit ${this.hardState.commit}`,
      );
    }
    let newLast = base.last;
    if (first !== undefined) {
      assert(
        first.index >= this.firstIndex() && first.index <= base.last + 1,
        () => `persist: entry ${first.index} leaves a gap after the last stored entry ${base.last}`,
      );
      assert(
        first.index > base.commit,
        () => `persist: entry ${first.index} would overwrite committed entry (commit ${base.commit})`,
      );
      let prevTerm =
        snapshot !== null && first.index === snapshot.index + 1 ? snapshot.term : this.term(first.index - 1);
      let prevIndex = first.index - 1;
      for (const entry of entries) {
        assert(entry.index === prevIndex + 1, () => `persist: entry ${entry.index} does not follow ${prevIndex}`);
        assert(
          entry.term >= prevTerm,
          () => `persist: entry ${entry.index} has term ${entry.term} < ${prevTerm} before it`,
        );
        prevIndex = entry.index;
        prevTerm = entry.term;
      }
      newLast = prevIndex;
      const term = (hardState ?? this.hardState).term;
      assert(
        prevTerm <= term,
        () => `persist: entry ${prevIndex} has term ${prevTerm}, beyond the node's term ${term}`,
      );
    }
    if (hardState !== null) {
      const old = this.hardState;
      assert(hardState.term >= old.term, () => `persist: term ${hardState.term} < durable term ${old.term}`);
      assert(
        hardState.term > old.term || old.vote === NONE || hardState.vote === old.vote,
        () => `persist: vote changes from ${old.vote} to ${hardState.vote} within term ${old.term}`,
      );
      assert(
        hardState.commit >= old.commit,
        () => `persist: commit ${hardState.commit} < durable commit ${old.commit}`,
      );
      if (snapshot !== null) {
        assert(
          hardState.commit >= snapshot.index,
          () => `install: commit ${hardState.commit} below the snapshot ${snapshot.index}`,
        );
      }
      assert(hardState.commit <= newLast, () => `persist: commit ${hardState.commit} beyond the last entry ${newLast}`);
    }
  }

  /** Whether writing `hardState` needs an fsync: a new term or vote does, a new commit alone not. */
  changesTermOrVote(hardState: HardState | null): boolean {
    return hardState !== null && (hardState.term !== this.hardState.term || hardState.vote !== this.hardState.vote);
  }

  /**
   * Adds the writes of a hard state and entries to `ops`: the entries replace every stored entry from
   * entries[0].index on, so the stale suffix after the last new one is deleted in the same batch.
   * Returns the bytes written.
   */
  addPersistOperations(
    hardState: HardState | null,
    entries: readonly Entry[],
    ops: ByteBatchOperation[],
    baseLast?: number,
  ): number {
    let bytes = 0;
    const put = (sublevel: ByteSublevel, key: Uint8Array, value: Uint8Array): void => {
      ops.push(putOp(sublevel, key, value));
      bytes += key.length + value.length;
    };
    if (hardState !== null) put(this.handles.meta, META_HARDSTATE, encodeHardState(hardState));
    for (const entry of entries) put(this.handles.log, logKey(entry.index), encodeLogValue(entry));
    const newLast = entries[entries.length - 1]?.index ?? baseLast ?? this.lastIndex();
    for (let index = Math.max(newLast + 1, this.firstIndex()); index <= this.lastIndex(); index++)
      ops.push(delOp(this.handles.log, logKey(index)));
    return bytes;
  }

  /**
   * Writes a hard state's term and vote (when either changed: the commit is never written) and
   * entries to the files, synced, as one unit. The entries replace every stored one from
   * entries[0].index on. Returns the bytes of the entries. Then `rememberPersisted`.
   */
  async persistToFiles(hardState: HardState | null, entries: readonly Entry[]): Promise<number> {
    const files = this.files;
    assert(files !== null, 'persistToFiles() on a log kept in LevelDB');
    const termVote =
      hardState !== null && this.changesTermOrVote(hardState) ? { term: hardState.term, vote: hardState.vote } : null;
    const first = entries[0]?.index;
    const truncatedTo =
      first !== undefined && first <= this.lastIndex() ? { index: first - 1, term: this.term(first - 1) } : undefined;
    await files.append(termVote, entries, truncatedTo);
    return dataBytes(entries);
  }

  /**
   * An install with the log in files: the term and vote first (so that the files never hold a
   * term below the snapshot's once the state machine switched), `switchStateMachine` (the synced
   * LevelDB batch), then the files start over after the snapshot with the Ready's entries. Returns
   * the bytes of the entries.
   */
  async installToFiles(
    snapshot: SnapshotMeta,
    hardState: HardState | null,
    entries: readonly Entry[],
    switchStateMachine: () => Promise<void>,
  ): Promise<number> {
    const files = this.files;
    assert(files !== null, 'installToFiles() on a log kept in LevelDB');
    if (hardState !== null && this.changesTermOrVote(hardState))
      await files.append({ term: hardState.term, vote: hardState.vote }, []);
    await switchStateMachine();
    await files.install({ index: snapshot.index, term: snapshot.term }, entries);
    return dataBytes(entries);
  }

  /** Whether the log lives in segment files (format 4) rather than in LevelDB. */
  get inFiles(): boolean {
    return this.files !== null;
  }

  /** Closes the segment files (the store is closing; background work settled first). */
  async closeFiles(): Promise<void> {
    await this.files?.close();
  }

  /** The batch is durable: the in-memory view catches up with the disk. */
  rememberPersisted(hardState: HardState | null, entries: readonly Entry[]): void {
    if (hardState !== null) this.hardState = { term: hardState.term, vote: hardState.vote, commit: hardState.commit };
    const first = entries[0];
    if (first === undefined) return;
    if (first.index <= this.terms.lastIndex) this.truncations++;
    this.terms.truncateFrom(first.index);
    this.cache.truncateFrom(first.index);
    this.readAhead.truncateFrom(first.index);
    for (const entry of entries) this.terms.append(entry.index, entry.term);
    this.cache.append(entries);
  }

  // ===========================================================================================
  // Reading old entries

  /**
   * Entries [lo, hi) read with an iterator, a chunk per turn of the event loop, until `maxBytes`
   * (at least one entry). Stops early where the log was truncated meanwhile; the read-ahead
   * discards such a load anyway.
   */
  private async loadLogRange(lo: number, hi: number, maxBytes: number): Promise<Entry[]> {
    const out: Entry[] = [];
    let bytes = 0;
    const truncations = this.truncations;
    // A write in flight may already be in what the iterator reads, before the term index knows it.
    const writingAtStart = this.writing;
    const mayBeStale = (): boolean => this.truncations !== truncations || writingAtStart;
    const iterator = this.handles.log.iterator({ gte: logKey(lo), lt: logKey(hi) });
    try {
      while (bytes < maxBytes && this.health.usable) {
        const chunk = await iterator.nextv(READ_AHEAD_CHUNK);
        if (chunk.length === 0) break;
        // A persist that replaced entries since the iterator began makes what it reads stale, not
        // corrupt: stop, and the read-ahead drops the load.
        if (this.truncations !== truncations) return out;
        for (const [key, value] of chunk) {
          const index = indexOfLogKey(key);
          const expected = lo + out.length;
          if (index !== expected) {
            if (mayBeStale()) return out;
            throw new CorruptDataError(
              `log entry ${expected} is missing from ${this.health.location} (the next stored entry is ${index})`,
            );
          }
          const entry = decodeLogValue(index, value);
          const known = index <= this.lastIndex() ? this.terms.termAt(index) : undefined;
          if (entry.term !== known) {
            if (mayBeStale()) return out;
            throw new CorruptDataError(
              `log entry ${index} in ${this.health.location} has term ${entry.term}, but the log says ${known ?? 'nothing'} there`,
            );
          }
          out.push(entry);
          bytes += entryBytes(entry);
          if (bytes >= maxBytes) break;
        }
      }
    } finally {
      await iterator.close();
    }
    return out;
  }

  /** An entry older than the tail cache, from LevelDB. */
  private readLogEntry(index: number): Entry {
    let bytes: Uint8Array | undefined;
    try {
      bytes = this.handles.log.getSync(logKey(index));
    } catch (error) {
      throw this.health.fail(`reading log entry ${index}`, error);
    }
    if (bytes === undefined) {
      throw new CorruptDataError(
        `log entry ${index} is missing from ${this.health.location}, though the log spans ${FIRST_INDEX}..${this.lastIndex()}`,
      );
    }
    const entry = decodeLogValue(index, bytes);
    const expected = this.terms.termAt(index);
    if (entry.term !== expected) {
      throw new CorruptDataError(
        `log entry ${index} in ${this.health.location} has term ${entry.term}, but term ${expected} was loaded`,
      );
    }
    return entry;
  }
}

/** The bytes of the entries' data (what a persist reports to onPersist). */
function dataBytes(entries: readonly Entry[]): number {
  let bytes = 0;
  for (const entry of entries) bytes += entry.data.length;
  return bytes;
}
