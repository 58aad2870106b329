// The Raft log and hard state of one node, as the core reads them (the `Storage` interface), and
// the batch operations that change them. NodeStorage writes those operations together with the
// state machine's in one LevelDB batch per Ready; this class only prepares them and, once the batch
// is durable, brings its in-memory view up to date.
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
import { META_HARDSTATE, decodeLogValue, encodeHardState, encodeLogValue, indexOfLogKey, logKey } from './codec.js';
import { delOp, putOp, type ByteBatchOperation, type ByteSublevel, type Database } from './database.js';
import { CorruptDataError } from './errors.js';
import { LogReadAhead } from './read-ahead.js';
import type { StoreHealth } from './store-health.js';
import type { TailCache } from './tail-cache.js';
import type { TermIndex } from './term-index.js';

/** No log compaction yet: the log always starts at index 1, after the empty snapshot (0, 0). */
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
  /** The cluster's voters, reported in `snapshotMeta()` (the log starts at 1: no snapshot yet). */
  readonly voters: readonly NodeId[];
  readonly hardState: HardState;
  readonly terms: TermIndex;
  readonly cache: TailCache;
  /** Bytes of one segment of older entries loaded ahead for a follower far behind. */
  readonly readAheadBytes?: number;
}

export class LogStore implements Storage {
  private readonly handles: Database;
  private readonly health: StoreHealth;
  private readonly voters: readonly NodeId[];
  private hardState: HardState;
  private readonly terms: TermIndex;
  private readonly cache: TailCache;
  private readonly readAhead: LogReadAhead;
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
    this.readAhead = new LogReadAhead({
      load: (lo, hi, maxBytes) => this.loadLogRange(lo, hi, maxBytes),
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
    return FIRST_INDEX;
  }

  lastIndex(): number {
    return this.terms.lastIndex;
  }

  term(index: number): number {
    if (index === FIRST_INDEX - 1) return 0; // the empty snapshot the log starts after
    assert(
      index >= FIRST_INDEX && index <= this.lastIndex(),
      () => `NodeStorage.term(${index}) outside [${FIRST_INDEX - 1}, ${this.lastIndex()}]`,
    );
    return this.terms.termAt(index);
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    assert(
      lo >= FIRST_INDEX && hi <= this.lastIndex() + 1 && lo <= hi,
      () => `NodeStorage.entries(${lo}, ${hi}) outside [${FIRST_INDEX}, ${this.lastIndex() + 1})`,
    );
    const out: Entry[] = [];
    let total = 0;
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

  snapshotMeta(): SnapshotMeta {
    return { index: FIRST_INDEX - 1, term: 0, voters: this.voters };
  }

  /** The term of a stored entry (the caller knows it is within the log). */
  termAt(index: number): number {
    return this.terms.termAt(index);
  }

  stats(): { cachedEntries: number; cachedBytes: number; termRuns: number } {
    return { cachedEntries: this.cache.size, cachedBytes: this.cache.bytes, termRuns: this.terms.runCount };
  }

  // ===========================================================================================
  // Writing: NodeStorage puts these operations in its batch, then calls rememberPersisted

  /** What the driver hands to writeReady must keep the invariants of the log and the hard state. */
  assertPersistContract(hardState: HardState | null, entries: readonly Entry[]): void {
    const first = entries[0];
    let newLast = this.lastIndex();
    if (first !== undefined) {
      assert(
        first.index >= FIRST_INDEX && first.index <= this.lastIndex() + 1,
        () => `persist: entry ${first.index} leaves a gap after the last stored entry ${this.lastIndex()}`,
      );
      assert(
        first.index > this.hardState.commit,
        () => `persist: entry ${first.index} would overwrite committed entry (commit ${this.hardState.commit})`,
      );
      let prevTerm = this.term(first.index - 1);
      let prevIndex = first.index - 1;
      for (const entry of entries) {
        assert(entry.index === prevIndex + 1, () => `persist: entry ${entry.index} does not follow ${prevIndex}`);
        assert(entry.term >= prevTerm, () => `persist: entry ${entry.index} has term ${entry.term} < ${prevTerm} before it`);
        prevIndex = entry.index;
        prevTerm = entry.term;
      }
      newLast = prevIndex;
      const term = (hardState ?? this.hardState).term;
      assert(prevTerm <= term, () => `persist: entry ${prevIndex} has term ${prevTerm}, beyond the node's term ${term}`);
    }
    if (hardState !== null) {
      const old = this.hardState;
      assert(hardState.term >= old.term, () => `persist: term ${hardState.term} < durable term ${old.term}`);
      assert(
        hardState.term > old.term || old.vote === NONE || hardState.vote === old.vote,
        () => `persist: vote changes from ${old.vote} to ${hardState.vote} within term ${old.term}`,
      );
      assert(hardState.commit >= old.commit, () => `persist: commit ${hardState.commit} < durable commit ${old.commit}`);
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
  addPersistOperations(hardState: HardState | null, entries: readonly Entry[], ops: ByteBatchOperation[]): number {
    let bytes = 0;
    const put = (sublevel: ByteSublevel, key: Uint8Array, value: Uint8Array): void => {
      ops.push(putOp(sublevel, key, value));
      bytes += key.length + value.length;
    };
    if (hardState !== null) put(this.handles.meta, META_HARDSTATE, encodeHardState(hardState));
    for (const entry of entries) put(this.handles.log, logKey(entry.index), encodeLogValue(entry));
    const newLast = entries[entries.length - 1]?.index ?? this.lastIndex();
    for (let index = newLast + 1; index <= this.lastIndex(); index++) ops.push(delOp(this.handles.log, logKey(index)));
    return bytes;
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
            throw new CorruptDataError(`log entry ${expected} is missing from ${this.health.location} (the next stored entry is ${index})`);
          }
          const entry = decodeLogValue(index, value);
          const known = index <= this.lastIndex() ? this.terms.termAt(index) : undefined;
          if (entry.term !== known) {
            if (mayBeStale()) return out;
            throw new CorruptDataError(`log entry ${index} in ${this.health.location} has term ${entry.term}, but the log says ${known ?? 'nothing'} there`);
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
      throw new CorruptDataError(`log entry ${index} is missing from ${this.health.location}, though the log spans ${FIRST_INDEX}..${this.lastIndex()}`);
    }
    const entry = decodeLogValue(index, bytes);
    const expected = this.terms.termAt(index);
    if (entry.term !== expected) {
      throw new CorruptDataError(`log entry ${index} in ${this.health.location} has term ${entry.term}, but term ${expected} was loaded`);
    }
    return entry;
  }
}
