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

  private persisting = false;
  private applying = false;
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

  snapshotMeta(): SnapshotMeta {
    return { index: FIRST_INDEX - 1, term: 0, voters: this.voters };
  }

  // ===========================================================================================
  // Driver side: persisting Readys and applying committed entries

  /**
   * Makes a Ready's hard state and entries durable in ONE synchronous write, and says whether it
   * synced. `entries` replace every stored entry from entries[0].index on: the stale suffix after
   * the last new entry is deleted in the same batch, so no crash can leave a mix of old and new
   * entries. Any failure is a StorageFatalError.
   *
   * A Ready that changes only the commit index is written WITHOUT fsync (as etcd's MustSync does):
   * Raft needs term, vote and entries durable before it answers, never the commit index, which a
   * restart relearns from the leader (and raises to the applied index on open). LevelDB writes its
   * log in order, so the next synchronous write makes this one durable too; a crash before that
   * loses only a commit index that moves back, never an entry or a vote.
   */
  async persist(hardState: HardState | null, entries: readonly Entry[]): Promise<{ synced: boolean }> {
    this.assertUsable('persist');
    assert(!this.persisting, 'persist() called while another persist is in flight');
    this.assertPersistContract(hardState, entries);
    if (hardState === null && entries.length === 0) return { synced: false };
    const { ops, bytes } = this.persistOperations(hardState, entries);
    const votedOrNewTerm = hardState !== null && (hardState.term !== this.hardState.term || hardState.vote !== this.hardState.vote);
    const mustSync = entries.length > 0 || votedOrNewTerm;
    this.persisting = true;
    const started = performance.now();
    try {
      await this.handles.db.batch(ops, { sync: mustSync });
    } catch (error) {
      throw this.fail(`persisting ${entries.length} log entries${hardState === null ? '' : ' and the hard state'}`, error);
    } finally {
      this.persisting = false;
    }
    const ms = performance.now() - started;
    this.rememberPersisted(hardState, entries);
    if (mustSync) this.onPersist?.(ms, entries.length, bytes);
    return { synced: mustSync };
  }

  /**
   * Applies committed entries to the key-value state machine: their commands and `applied` (the last
   * entry's index and term) in ONE batch, so a crash leaves either all of it or none of it, and
   * replaying from `applied + 1` after a restart is exact.
   */
  async applyEntries(entries: readonly Entry[]): Promise<ApplyOutcome[]> {
    this.assertUsable('applyEntries');
    const last = entries[entries.length - 1];
    if (last === undefined) return [];
    assert(!this.applying, 'applyEntries() called while another apply is in flight');
    this.assertApplyContract(entries);
    const ops: ByteBatchOperation[] = [];
    const outcomes = entries.map((entry) => this.applyOperation(entry, ops));
    const applied: AppliedState = { index: last.index, term: last.term };
    ops.push(putOp(this.handles.sm, SM_APPLIED, encodeApplied(applied)));
    this.applying = true;
    try {
      // No fsync here: the entries are already durable in the log (persist wrote them with sync: true,
      // and the hard state commits them). If a crash loses this write, `applied` and the key-value
      // changes are lost together (one batch), and the node replays them from applied + 1 on restart.
      // LevelDB appends to its journal in order, so this write can never survive while an earlier
      // synced persist is lost, and the next synced write flushes it along with its own batch.
      await this.handles.db.batch(ops, { sync: false });
    } catch (error) {
      throw this.fail(`applying entries ${entries[0]?.index}..${last.index}`, error);
    } finally {
      this.applying = false;
    }
    this.appliedState = applied;
    return outcomes;
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

  /** What the driver hands to persist must keep the invariants of the log and the hard state. */
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
    this.terms.truncateFrom(first.index);
    this.cache.truncateFrom(first.index);
    for (const entry of entries) this.terms.append(entry.index, entry.term);
    this.cache.append(entries);
  }

  /**
   * Committed entries arrive in order, from applied + 1, and are in the durable log. (Their commit
   * may still be on its way to disk: the driver overlaps applying with the next persist.)
   */
  private assertApplyContract(entries: readonly Entry[]): void {
    let expected = this.appliedState.index + 1;
    for (const entry of entries) {
      assert(entry.index === expected, () => `applyEntries: entry ${entry.index} given, ${expected} expected next`);
      assert(entry.index <= this.lastIndex(), () => `applyEntries: entry ${entry.index} is beyond the durable log (${this.lastIndex()})`);
      assert(
        entry.term === this.terms.termAt(entry.index),
        () => `applyEntries: entry ${entry.index} has term ${entry.term}, the log says ${this.terms.termAt(entry.index)}`,
      );
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
