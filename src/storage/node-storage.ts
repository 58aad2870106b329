// The durable storage of one node: the Raft log, the hard state and the key-value state machine in
// one LevelDB (design.md section 3).
//
// The Raft core reads it synchronously through the `Storage` interface. What it reads is always
// durable: every in-memory structure here (hard state, term index, tail cache, last index, applied)
// changes only after the LevelDB write that made it so has resolved.
//
// Invariants of a healthy data dir, checked on open (a violation refuses the start, never a silent
// start on damaged state) and kept by every write:
//  - the log holds entries firstIndex..lastIndex without gaps, with non-decreasing terms that never
//    exceed the hard state's term;
//  - hardState.commit <= lastIndex (committed entries are never lost or truncated);
//  - applied.index <= lastIndex, and applied.term is the term of that log entry. Applied entries were
//    committed, so on open the commit is raised to applied if it lags: the driver may apply
//    committed entries while the Ready that records their commit is still being persisted.

import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { assert } from '../raft/assert.js';
import { entryBytes, type Storage } from '../raft/storage.js';
import { EMPTY_HARD_STATE, EntryType, NONE, type Entry, type HardState, type NodeId, type SnapshotMeta } from '../raft/types.js';
import {
  META_HARDSTATE,
  META_IDENTITY,
  SM_APPLIED,
  STORAGE_FORMAT,
  decodeApplied,
  decodeHardState,
  decodeIdentity,
  decodeLogValue,
  encodeApplied,
  encodeHardState,
  encodeIdentity,
  encodeLogValue,
  indexOfLogKey,
  logKey,
  plainBytes,
  type AppliedState,
} from './codec.js';
import { decodeCommand, type Command } from './command.js';
import { prepareDataDir, refusalForOpenError, restoreOwnDataAdvice } from './data-dir.js';
import { delOp, openDatabase, putOp, type ByteBatchOperation, type ByteSublevel, type Database } from './database.js';
import { CorruptDataError, StorageFatalError, StorageRefusedError, describeError } from './errors.js';
import { scanKv, type ScanOptions, type ScanPage } from './kv-scan.js';
import { LogReadAhead } from './read-ahead.js';
import { TailCache } from './tail-cache.js';
import { TermIndex } from './term-index.js';

export interface NodeStorageOptions {
  readonly dataDir: string;
  readonly clusterId: string;
  readonly nodeId: NodeId;
  /** The cluster's voters, reported in `snapshotMeta()` (the log starts at 1: no snapshot yet). */
  readonly voters: readonly NodeId[];
  readonly logger?: Logger;
  /** Called after each fsync'd persist: its latency, the entries it wrote and the bytes of the batch. */
  readonly onPersist?: (ms: number, entries: number, bytes: number) => void;
  /** Byte budget of the in-memory tail of the log (entry payloads plus 24 bytes each). Default 8 MiB. */
  readonly cacheBytes?: number;
  /** Bytes of one segment of older entries loaded ahead for a follower far behind. Default 4 MiB. */
  readonly readAheadBytes?: number;
}

/** Told when entries that `entriesToSend` answered null for are loaded, or when loading failed. */
export interface LoadListener {
  loaded(): void;
  failed(error: Error): void;
}

/** What applying one committed entry did to the state machine. */
export interface ApplyOutcome {
  readonly index: number;
  readonly term: number;
  readonly op: 'put' | 'delete' | 'noop';
}

export interface NodeStorageStats {
  readonly cachedEntries: number;
  readonly cachedBytes: number;
  readonly termRuns: number;
}

const DEFAULT_CACHE_BYTES = 8 << 20;
/**
 * Locations a NodeStorage of this thread has open. `multithreading: true` lets LevelDB share one
 * database between handles of a process, which also disables its lock against a second writer here:
 * two NodeStorages on one data dir would each trust their own in-memory view of the log.
 */
const openLocations = new Set<string>();
/** Log entries decoded per iterator step while loading the log on open. */
const LOAD_CHUNK = 1024;
/**
 * Log entries decoded per iterator step while loading entries for a follower in the background:
 * ~3 us each to decode, so one step holds the loop for about a millisecond.
 */
const READ_AHEAD_CHUNK = 256;
/** No log compaction yet: the log always starts at index 1, after the empty snapshot (0, 0). */
const FIRST_INDEX = 1;

/** Everything loaded (and validated) from disk on open. */
interface LoadedState {
  readonly hardState: HardState;
  readonly applied: AppliedState;
  readonly terms: TermIndex;
  readonly cache: TailCache;
}

export class NodeStorage implements Storage {
  /** The resolved data dir; any other handle on this database must open exactly this string. */
  readonly location: string;
  private readonly handles: Database;
  private readonly voters: readonly NodeId[];
  private readonly onPersist: ((ms: number, entries: number, bytes: number) => void) | undefined;

  private hardState: HardState;
  private appliedState: AppliedState;
  private readonly terms: TermIndex;
  private readonly cache: TailCache;
  private readonly readAhead: LogReadAhead;
  private loadListener: LoadListener | null = null;
  /** Bumped whenever a persist replaces stored entries: background reads begun before are stale. */
  private truncations = 0;

  private writing = false;
  private closed = false;
  /** Set by the first failed write or read: from then on the store's state is unknown. */
  private failure: StorageFatalError | null = null;

  private constructor(location: string, handles: Database, options: NodeStorageOptions, loaded: LoadedState) {
    this.location = location;
    this.handles = handles;
    this.voters = options.voters.slice();
    this.onPersist = options.onPersist;
    this.hardState = loaded.hardState;
    this.appliedState = loaded.applied;
    this.terms = loaded.terms;
    this.cache = loaded.cache;
    this.readAhead = new LogReadAhead({
      load: (lo, hi, maxBytes) => this.loadLogRange(lo, hi, maxBytes),
      onLoaded: () => this.loadListener?.loaded(),
      onError: (error) => this.loadListener?.failed(this.fail('loading log entries for a follower', error)),
      ...(options.readAheadBytes === undefined ? {} : { segmentBytes: options.readAheadBytes }),
    });
  }

  /**
   * Opens (or initializes) the data dir of node `nodeId`. Throws StorageRefusedError when the node must
   * not start on it: another node's or cluster's dir, a newer format, corrupt or inconsistent data,
   * a path that is not a writable directory, a database locked by another process.
   */
  static async open(options: NodeStorageOptions): Promise<NodeStorage> {
    const started = performance.now();
    assertValidOptions(options);
    const location = path.resolve(options.dataDir);
    if (openLocations.has(location)) {
      throw new StorageRefusedError(`data dir ${location} is already open in this process: close it before opening it again`);
    }
    openLocations.add(location);
    let storage: NodeStorage;
    try {
      storage = await NodeStorage.openLocation(location, options);
    } catch (error) {
      openLocations.delete(location);
      throw error;
    }
    const { term, commit } = storage.hardState;
    options.logger?.info(
      {
        location,
        term,
        commit,
        applied: storage.appliedState.index,
        lastIndex: storage.lastIndex(),
        cachedEntries: storage.cache.size,
        openMs: Math.round(performance.now() - started),
      },
      'storage opened',
    );
    return storage;
  }

  private static async openLocation(location: string, options: NodeStorageOptions): Promise<NodeStorage> {
    await prepareDataDir(location, options.nodeId);
    let handles: Database;
    try {
      handles = await openDatabase(location);
    } catch (error) {
      throw refusalForOpenError(location, options.nodeId, error);
    }
    try {
      await checkIdentity(handles, location, options);
      const loaded = await loadState(handles, options.cacheBytes ?? DEFAULT_CACHE_BYTES);
      validateLoadedState(loaded);
      return new NodeStorage(location, handles, options, loaded);
    } catch (error) {
      await handles.db.close().catch(() => undefined);
      throw refusalForLoadError(location, options.nodeId, error);
    }
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
    if (this.failure !== null || this.closed) return null;
    return this.readAhead.get(lo, Math.min(hi, cachedFrom ?? hi), maxBytes);
  }

  /** Who to tell when background loads complete or fail (the driver: it resumes replication). */
  setLoadListener(listener: LoadListener): void {
    this.loadListener = listener;
  }

  snapshotMeta(): SnapshotMeta {
    return { index: FIRST_INDEX - 1, term: 0, voters: this.voters };
  }

  // ===========================================================================================
  // Driver side: persisting Readys and applying committed entries

  /**
   * Writes one Ready in ONE LevelDB batch: its hard state, its new entries (which replace every stored
   * entry from entries[0].index on: the stale suffix is deleted in the same batch, so no crash leaves
   * a mix of old and new entries), and the state-machine changes of its committed entries with the
   * new applied index. Returns whether it synced and what applying each entry did. Any failure is a
   * StorageFatalError.
   *
   * Durability model (ARCHITECTURE.md): LevelDB guarantees a write made with `sync: true`, and
   * every write before it in the same journal file; nothing more. A write with `sync: false` may be
   * lost on power loss even when a later synced write survives, because a memtable switch closes the
   * journal file without an fsync and the next synced write covers only the new file. So:
   *  - entries, a new term and a vote are synced before anything that depends on them leaves;
   *  - state-machine changes and the applied index are synced too, and travel in one batch: the
   *    stored applied index never claims key changes a power loss can take away (an earlier
   *    unsynced apply lost while a later one survived would make the state machine diverge from
   *    the log without a trace);
   *  - only a Ready that moves nothing but the commit index is written WITHOUT fsync (as etcd's
   *    MustSync): Raft never needs the commit index durable. Losing it moves the commit back, which
   *    the leader's next message repairs (and open raises it to the applied index).
   * Committed entries must be in the durable log once this batch is written: stored already, or
   * among `entries` (a follower's entries that arrive committed).
   */
  async writeReady(
    hardState: HardState | null,
    entries: readonly Entry[],
    committed: readonly Entry[],
  ): Promise<{ synced: boolean; outcomes: ApplyOutcome[] }> {
    this.assertUsable('writeReady');
    assert(!this.writing, 'writeReady() called while another write is in flight');
    this.assertPersistContract(hardState, entries);
    this.assertApplyContract(committed, entries);
    if (hardState === null && entries.length === 0 && committed.length === 0) return { synced: false, outcomes: [] };
    const { ops, bytes } = this.persistOperations(hardState, entries);
    const outcomes = committed.map((entry) => this.applyOperation(entry, ops));
    const lastApplied = committed[committed.length - 1];
    const applied: AppliedState | null = lastApplied === undefined ? null : { index: lastApplied.index, term: lastApplied.term };
    if (applied !== null) ops.push(putOp(this.handles.sm, SM_APPLIED, encodeApplied(applied)));
    const votedOrNewTerm = hardState !== null && (hardState.term !== this.hardState.term || hardState.vote !== this.hardState.vote);
    const mustSync = entries.length > 0 || votedOrNewTerm || applied !== null;
    this.writing = true;
    const started = performance.now();
    try {
      await this.handles.db.batch(ops, { sync: mustSync });
    } catch (error) {
      throw this.fail(describeWrite(hardState, entries, committed), error);
    } finally {
      this.writing = false;
    }
    const ms = performance.now() - started;
    this.rememberPersisted(hardState, entries);
    if (applied !== null) this.appliedState = applied;
    if (mustSync) this.onPersist?.(ms, entries.length, bytes);
    return { synced: mustSync, outcomes };
  }

  /** Hard state and entries only (writeReady without committed entries). */
  async persist(hardState: HardState | null, entries: readonly Entry[]): Promise<{ synced: boolean }> {
    const { synced } = await this.writeReady(hardState, entries, []);
    return { synced };
  }

  /**
   * Applies committed entries that are already in the durable log: their commands and `applied`
   * (the last entry's index and term) in ONE synced batch, so a crash or a power loss leaves either
   * all of it or none of it, and replaying from `applied + 1` after a restart is exact.
   */
  async applyEntries(entries: readonly Entry[]): Promise<ApplyOutcome[]> {
    return (await this.writeReady(null, [], entries)).outcomes;
  }

  /** The state machine's last applied entry ({0, 0} when none): the core's `applied` at start-up. */
  /** The state machine's sublevel, for read queries on the main thread. */
  get kv(): ByteSublevel {
    return this.handles.kv;
  }

  get applied(): { index: number; term: number } {
    return { index: this.appliedState.index, term: this.appliedState.term };
  }

  // ===========================================================================================
  // State-machine reads

  /** The value of `key` in the applied state, or undefined. */
  getSync(key: Uint8Array): Uint8Array | undefined {
    const value = this.handles.kv.getSync(key);
    return value === undefined ? undefined : plainBytes(value);
  }

  /** One page of the applied state in key order; continue with `start: page.nextStart`. */
  async scan(options: ScanOptions): Promise<ScanPage> {
    return scanKv(this.handles.kv, options);
  }

  stats(): NodeStorageStats {
    return { cachedEntries: this.cache.size, cachedBytes: this.cache.bytes, termRuns: this.terms.runCount };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.handles.db.close();
    } finally {
      openLocations.delete(this.location);
    }
  }

  // ===========================================================================================
  // Internals

  private assertUsable(operation: string): void {
    if (this.failure !== null) {
      throw new StorageFatalError(
        `${operation} refused: an earlier storage operation failed and the store in ${this.location} is in an unknown state (${this.failure.message})`,
        { cause: this.failure },
      );
    }
    if (this.closed) throw new StorageFatalError(`${operation} called on closed storage ${this.location}`);
  }

  /** Records an I/O failure: this and every later write refuses to run on a store in an unknown state. */
  private fail(what: string, error: unknown): StorageFatalError {
    const fatal = new StorageFatalError(`${what} failed in ${this.location}: ${describeError(error)}`, { cause: error });
    this.failure ??= fatal;
    return fatal;
  }

  /** What the driver hands to writeReady must keep the invariants of the log and the hard state. */
  private assertPersistContract(hardState: HardState | null, entries: readonly Entry[]): void {
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

  private persistOperations(hardState: HardState | null, entries: readonly Entry[]): { ops: ByteBatchOperation[]; bytes: number } {
    const ops: ByteBatchOperation[] = [];
    let bytes = 0;
    const put = (sublevel: ByteSublevel, key: Uint8Array, value: Uint8Array): void => {
      ops.push(putOp(sublevel, key, value));
      bytes += key.length + value.length;
    };
    if (hardState !== null) put(this.handles.meta, META_HARDSTATE, encodeHardState(hardState));
    for (const entry of entries) put(this.handles.log, logKey(entry.index), encodeLogValue(entry));
    // Every stored entry after the last new one belongs to a conflicting suffix: delete it.
    const newLast = entries[entries.length - 1]?.index ?? this.lastIndex();
    for (let index = newLast + 1; index <= this.lastIndex(); index++) ops.push(delOp(this.handles.log, logKey(index)));
    return { ops, bytes };
  }

  /** The write is durable: the in-memory view catches up with the disk. */
  private rememberPersisted(hardState: HardState | null, entries: readonly Entry[]): void {
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

  /**
   * Committed entries arrive in order, from applied + 1, and are in the durable log once this batch
   * is written: stored already with the same term, or among the batch's own `entries`.
   */
  private assertApplyContract(committed: readonly Entry[], entries: readonly Entry[]): void {
    const firstNew = entries[0]?.index ?? Infinity;
    let expected = this.appliedState.index + 1;
    for (const entry of committed) {
      assert(entry.index === expected, () => `writeReady: committed entry ${entry.index} given, ${expected} expected next`);
      const logTerm = entry.index >= firstNew ? entries[entry.index - firstNew]?.term : entry.index <= this.lastIndex() ? this.terms.termAt(entry.index) : undefined;
      assert(logTerm !== undefined, () => `writeReady: committed entry ${entry.index} is beyond the durable log (${this.lastIndex()})`);
      assert(logTerm === entry.term, () => `writeReady: committed entry ${entry.index} has term ${entry.term}, the log says ${logTerm}`);
      expected++;
    }
  }

  /** Adds the state-machine change of `entry` to `ops` and says what it was. */
  private applyOperation(entry: Entry, ops: ByteBatchOperation[]): ApplyOutcome {
    const base = { index: entry.index, term: entry.term };
    if (entry.type !== EntryType.Normal) {
      throw new CorruptDataError(`entry ${entry.index} (term ${entry.term}) has type ${entry.type}, which this build cannot apply`);
    }
    if (entry.data.length === 0) return { ...base, op: 'noop' }; // a new leader's empty entry
    let command: Command;
    try {
      command = decodeCommand(entry.data);
    } catch (error) {
      throw new CorruptDataError(`entry ${entry.index} (term ${entry.term}) holds no valid command: ${describeError(error)}`, {
        cause: error,
      });
    }
    if (command.op === 'barrier') return { ...base, op: 'noop' };
    if (command.op === 'put') ops.push(putOp(this.handles.kv, command.key, command.value));
    else ops.push(delOp(this.handles.kv, command.key));
    return { ...base, op: command.op };
  }

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
    const mayBeStale = (): boolean => this.truncations !== truncations || writingAtStart;
    const writingAtStart = this.writing;
    const iterator = this.handles.log.iterator({ gte: logKey(lo), lt: logKey(hi) });
    try {
      while (bytes < maxBytes && !this.closed) {
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
            throw new CorruptDataError(`log entry ${expected} is missing from ${this.location} (the next stored entry is ${index})`);
          }
          const entry = decodeLogValue(index, value);
          const known = index <= this.lastIndex() ? this.terms.termAt(index) : undefined;
          if (entry.term !== known) {
            if (mayBeStale()) return out;
            throw new CorruptDataError(`log entry ${index} in ${this.location} has term ${entry.term}, but the log says ${known ?? 'nothing'} there`);
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
      throw this.fail(`reading log entry ${index}`, error);
    }
    if (bytes === undefined) {
      throw new CorruptDataError(`log entry ${index} is missing from ${this.location}, though the log spans ${FIRST_INDEX}..${this.lastIndex()}`);
    }
    const entry = decodeLogValue(index, bytes);
    const expected = this.terms.termAt(index);
    if (entry.term !== expected) {
      throw new CorruptDataError(`log entry ${index} in ${this.location} has term ${entry.term}, but term ${expected} was loaded`);
    }
    return entry;
  }
}

// =============================================================================================
// Opening: identity, loading, validation

function assertValidOptions(options: NodeStorageOptions): void {
  if (options.clusterId.length === 0) throw new StorageRefusedError('the cluster id is empty: set clusterId in the cluster config');
  if (options.nodeId.length === 0) throw new StorageRefusedError('the node id is empty: set the node id in the cluster config or flags');
  if (options.cacheBytes !== undefined && !(options.cacheBytes >= 0)) {
    throw new RangeError(`cacheBytes must be >= 0, not ${options.cacheBytes}`);
  }
}

/**
 * The data dir must be this node's, in this cluster, in a format this build reads. A dir without an
 * identity is initialized only when it holds no data at all.
 */
async function checkIdentity(handles: Database, location: string, options: NodeStorageOptions): Promise<void> {
  const { clusterId, nodeId } = options;
  const stored = handles.meta.getSync(META_IDENTITY);
  if (stored === undefined) {
    if (await holdsAnyKey(handles)) {
      throw new StorageRefusedError(
        `data dir ${location} holds a LevelDB database but no raftkv identity: it is not a raftkv data dir, or it ` +
          `was damaged. Point --data-dir at ${nodeId}'s data dir, or, if this is ${nodeId}'s damaged dir, ` +
          restoreOwnDataAdvice(nodeId),
      );
    }
    await handles.db.batch([putOp(handles.meta, META_IDENTITY, encodeIdentity({ clusterId, nodeId, format: STORAGE_FORMAT }))], {
      sync: true,
    });
    options.logger?.info({ location, clusterId, nodeId, format: STORAGE_FORMAT }, 'initialized an empty data dir');
    return;
  }
  const identity = decodeIdentity(stored);
  if (identity.format > STORAGE_FORMAT) {
    throw new StorageRefusedError(
      `data dir ${location} is in storage format ${identity.format}, written by a newer raftkv; this build reads ` +
        `format ${STORAGE_FORMAT} and will not downgrade it: run a raftkv release that supports format ${identity.format}`,
    );
  }
  if (identity.clusterId !== clusterId || identity.nodeId !== nodeId) {
    const otherCluster =
      identity.clusterId === clusterId ? '' : ` (first make sure cluster ${identity.clusterId} no longer needs this data)`;
    throw new StorageRefusedError(
      `data dir ${location} belongs to node ${identity.nodeId} of cluster ${identity.clusterId}, not ${nodeId} of ` +
        `${clusterId}: point --data-dir at ${nodeId}'s directory; if ${nodeId}'s data is lost, ${restoreOwnDataAdvice(nodeId)}${otherCluster}`,
    );
  }
}

async function holdsAnyKey(handles: Database): Promise<boolean> {
  const iterator = handles.db.keys({ limit: 1 });
  try {
    return (await iterator.nextv(1)).length > 0;
  } finally {
    await iterator.close();
  }
}

async function loadState(handles: Database, cacheBytes: number): Promise<LoadedState> {
  const hardStateBytes = handles.meta.getSync(META_HARDSTATE);
  const appliedBytes = handles.sm.getSync(SM_APPLIED);
  const hardState = hardStateBytes === undefined ? EMPTY_HARD_STATE : decodeHardState(hardStateBytes);
  const applied = appliedBytes === undefined ? { index: 0, term: 0 } : decodeApplied(appliedBytes);
  const { terms, cache } = await loadLog(handles.log, cacheBytes);
  // An apply may have landed before the persist that recorded its commit (they overlap): entries
  // that were applied were committed, so the commit is at least the applied index.
  // (An applied index beyond the log is not raised into the commit: validation refuses it.)
  const commit = applied.index <= terms.lastIndex ? Math.max(hardState.commit, applied.index) : hardState.commit;
  return { hardState: commit === hardState.commit ? hardState : { ...hardState, commit }, applied, terms, cache };
}

/**
 * Reads the whole log once: every key and value is decoded, indices must be contiguous from
 * FIRST_INDEX and terms non-decreasing. This builds the term index (which needs every entry's term
 * anyway), so the full check costs nothing extra; the last entries stay in the tail cache.
 */
async function loadLog(log: ByteSublevel, cacheBytes: number): Promise<{ terms: TermIndex; cache: TailCache }> {
  const terms = new TermIndex(FIRST_INDEX);
  const cache = new TailCache(cacheBytes);
  const iterator = log.iterator();
  try {
    for (;;) {
      const chunk = await iterator.nextv(LOAD_CHUNK);
      if (chunk.length === 0) break;
      for (const [key, value] of chunk) {
        const index = indexOfLogKey(key);
        assertNextLogIndex(index, terms.lastIndex);
        const entry = decodeLogValue(index, value);
        const lastTerm = terms.lastTerm ?? 0;
        if (entry.term < lastTerm) {
          throw new CorruptDataError(`log entry ${index} has term ${entry.term}, below term ${lastTerm} of the entry before it`);
        }
        terms.append(index, entry.term);
        cache.append([entry]);
      }
    }
  } finally {
    await iterator.close();
  }
  return { terms, cache };
}

function assertNextLogIndex(index: number, lastIndex: number): void {
  if (index === lastIndex + 1) return;
  if (lastIndex < FIRST_INDEX) {
    throw new CorruptDataError(`the log starts at entry ${index}, but there is no snapshot: entries ${FIRST_INDEX}..${index - 1} are missing`);
  }
  throw new CorruptDataError(`log entries ${lastIndex + 1}..${index - 1} are missing (the log jumps from ${lastIndex} to ${index})`);
}

/** The loaded pieces must agree with each other (see the invariants at the top of this file). */
function validateLoadedState(state: LoadedState): void {
  const { hardState, applied, terms } = state;
  const lastIndex = terms.lastIndex;
  const lastTerm = terms.lastTerm ?? 0;
  if (lastTerm > hardState.term) {
    throw new CorruptDataError(`the log's last entry ${lastIndex} has term ${lastTerm}, beyond the hard state's term ${hardState.term}`);
  }
  if (hardState.commit > lastIndex) {
    throw new CorruptDataError(`the hard state commits entry ${hardState.commit}, but the log ends at entry ${lastIndex}: committed entries are lost`);
  }
  if (applied.index > lastIndex) {
    throw new CorruptDataError(`the state machine applied entry ${applied.index}, but the log ends at entry ${lastIndex}`);
  }
  if (applied.index >= FIRST_INDEX && terms.termAt(applied.index) !== applied.term) {
    throw new CorruptDataError(
      `the state machine applied entry ${applied.index} of term ${applied.term}, but the log's entry ${applied.index} has term ${terms.termAt(applied.index)}`,
    );
  }
  if (applied.index === 0 && applied.term !== 0) {
    throw new CorruptDataError(`the applied state names term ${applied.term} for entry 0`);
  }
}

function describeWrite(hardState: HardState | null, entries: readonly Entry[], committed: readonly Entry[]): string {
  const parts: string[] = [];
  if (hardState !== null) parts.push('the hard state');
  if (entries.length > 0) parts.push(`${entries.length} log entries`);
  if (committed.length > 0) parts.push(`applying entries ${committed[0]?.index}..${committed[committed.length - 1]?.index}`);
  return `writing ${parts.join(', ')}`;
}

function refusalForLoadError(location: string, nodeId: string, error: unknown): StorageRefusedError {
  if (error instanceof StorageRefusedError) return error;
  if (error instanceof CorruptDataError) {
    return new StorageRefusedError(
      `data dir ${location} is corrupt: ${error.message}. To bring ${nodeId} back, ${restoreOwnDataAdvice(nodeId)}`,
      { cause: error },
    );
  }
  return new StorageRefusedError(
    `cannot read data dir ${location} (${describeError(error)}): check the disk, its free space and the permissions`,
    { cause: error },
  );
}
