// The durable storage of one node: the Raft log and hard state (log-store.ts), the key-value state
// machine (state-machine.ts), in one LevelDB opened and validated by open-data-dir.ts. This class
// composes them: the core reads the log through it (the `Storage` interface), and the driver writes
// each Ready through it in ONE batch that spans the log and the state machine.
//
// The log it reads is always durable: the hard state, term index and tail cache change only after
// the LevelDB write that made it so has resolved. The applied state may be ahead of the disk: a
// Ready that only applies is held in memory until the next synced batch (writeReady says why that
// is safe); every read through this class sees it. In a data dir of format 4 the log lives in
// segment files: a Ready's append there is its only synced write, and every apply is held and
// flushed to LevelDB beside the write path (writeReadyToFiles, flushInFiles).

import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { assert } from '../raft/assert.js';
import type { Storage } from '../raft/storage.js';
import type { Entry, HardState, NodeId, SnapshotMeta } from '../raft/types.js';
import { META_REMOVED, SM_APPLIED, SM_GENERATION, SM_MEMBERS, decodeApplied, decodeGeneration } from './codec.js';
import { confStateOf, decodeMembership, type Member, type Membership } from './members.js';
import { openKv, putOp, writeBatch, type ByteBatchOperation, type ByteSublevel, type Database } from './database.js';
import { CorruptDataError, StorageFatalError, StorageRefusedError } from './errors.js';
import type { IdempotencyIndex } from './idempotency.js';
import type { StoredValue } from './key-meta.js';
import { KeyMetaCache } from './key-meta-cache.js';
import { LogStore, type LoadListener } from './log-store.js';
import { OneAtATime } from './one-at-a-time.js';
import { openDataDir } from './open-data-dir.js';
import { KvStateMachine, type ApplyOutcome, type KeyChanges, type StateRead } from './state-machine.js';
import type { ScanOptions, ScanPage } from './kv-scan.js';
import { StoreHealth } from './store-health.js';

export type { ApplyOutcome, StateRead } from './state-machine.js';
export type { LoadListener } from './log-store.js';

export interface NodeStorageOptions {
  readonly dataDir: string;
  readonly clusterId: string;
  readonly nodeId: NodeId;
  /** The cluster's voters when the data dir stores no membership yet (and `initialMembers` is not given). */
  readonly voters: readonly NodeId[];
  /**
   * The members when the data dir stores none yet: cluster.config.json's nodes for a new cluster, none
   * for a node that joins (a snapshot brings it the membership). Once stored, the data dir's wins.
   */
  readonly initialMembers?: readonly Member[];
  readonly logger?: Logger;
  /** Called after each fsync'd write: its latency, the entries it wrote and the bytes of their batch. */
  readonly onPersist?: (ms: number, entries: number, bytes: number) => void;
  /** Byte budget of the in-memory tail of the log (entry payloads plus 24 bytes each). Default 8 MiB. */
  readonly cacheBytes?: number;
  /** Bytes of one segment of older entries loaded ahead for a follower far behind. Default 4 MiB. */
  readonly readAheadBytes?: number;
  /**
   * Where a NEW data dir keeps its Raft log: in segment files of its own (format 4,
   * docs/log-file-proposal.md) or in LevelDB (format 3). An existing dir keeps where it has it,
   * whatever this says. Default false here; a node passes what RAFTKV_LOG_IN_FILES says
   * (log-mode.ts: the files unless it is 0).
   */
  readonly logInFiles?: boolean;
  /** The size of each segment file when the log is in files (tests use small ones). */
  readonly segmentBytes?: number;
  /**
   * With the log in files: how long applied changes stay held before a flush beside the write path
   * writes them (also when they pass half the held bounds). Default 100 ms; tests use 0.
   */
  readonly flushAfterMs?: number;
}

export interface NodeStorageStats {
  readonly cachedEntries: number;
  readonly cachedBytes: number;
  readonly termRuns: number;
}

/** A received snapshot being written into the staging generation (one at a time). */
export interface SnapshotStaging {
  readonly generation: number;
  /** Writes key-value pairs of the snapshot's state, synced (a power loss must not lose any of it). */
  write(pairs: readonly (readonly [Uint8Array, Uint8Array])[]): Promise<void>;
  /** Everything is written: the core may now be told of `meta`, and writeReady install it (with `membership`). */
  complete(meta: SnapshotMeta, membership: Membership): void;
  /** Given up (a newer transfer, an error): the staged data is cleared. Does nothing once completed. */
  abort(): void;
}

/** A consistent view of the state machine to send as a snapshot: its point, membership and pairs. */
export interface SnapshotSource {
  readonly index: number;
  readonly term: number;
  readonly membership: Membership;
  /** The next pairs, about `maxBytes` of them; null at the end. */
  next(maxBytes: number): Promise<(readonly [Uint8Array, Uint8Array])[] | null>;
  close(): Promise<void>;
}

const DEFAULT_CACHE_BYTES = 8 << 20;
/**
 * Bounds of what writeReady holds in memory. One write at a time holds one small Ready per write;
 * past these the next Ready that applies is written, synced, with everything held.
 */
const MAX_HELD_OPERATIONS = 4096;
const MAX_HELD_BYTES = 1 << 20;
/**
 * With the log in files, what is held is flushed beside the write path once it passes half the
 * bounds above or is this old, so that the hard bounds (a flush on the write path) are rarely met.
 */
const DEFAULT_FLUSH_AFTER_MS = 100;
/**
 * Locations a NodeStorage of this thread has open. `multithreading: true` lets LevelDB share one
 * database between handles of a process, which also disables its lock against a second writer here:
 * two NodeStorages on one data dir would each trust their own in-memory view of the log.
 */
const openLocations = new Set<string>();

export class NodeStorage implements Storage {
  /** The resolved data dir; any other handle on this database must open exactly this string. */
  readonly location: string;
  private readonly handles: Database;
  private readonly health: StoreHealth;
  private readonly log: LogStore;
  private readonly stateMachine: KvStateMachine;
  private readonly onPersist: ((ms: number, entries: number, bytes: number) => void) | undefined;
  private readonly flushAfterMs: number;
  private closed = false;
  /** The received snapshot that is completely staged and may be installed. */
  private staged: {
    generation: number;
    kv: ByteSublevel;
    meta: SnapshotMeta;
    membership: Membership;
    /** The staged keys' metadata (KvStateMachine.rememberStaged), the state machine's cache once installed. */
    metaCache: KeyMetaCache;
  } | null = null;
  /**
   * Staging begins and chunk writes, one at a time, in the order they were asked for. Every staging
   * reuses the same next generation, and each begin clears it: a chunk write of an abandoned
   * staging still in flight must land before that clear (else its pairs stay in the new staging,
   * and the install brings keys of an older snapshot back), and an older begin's clear must not run
   * after a newer staging has started writing (both found in review).
   */
  private readonly stagingQueue = new OneAtATime();
  /**
   * Stagings begun so far: only the latest may write, complete or clear the staging generation (a
   * newer one abandons the one in progress).
   */
  private stagingEpoch = 0;
  /** The operations of Readies held in memory (writeReady says when), and their bytes; null when none. */
  private held: { ops: ByteBatchOperation[]; bytes: number } | null = null;
  /** Readies held so far (heldStamp). */
  private heldStamps = 0;
  /** Batch writes, one at a time (oneWriteAtATime). */
  private readonly writes = new OneAtATime();
  /**
   * With the log in files: the LevelDB writes that carry state-machine changes, one at a time and
   * in order (flushInFiles), beside the write path's file appends. Invariant: LevelDB always holds
   * a prefix of the applies, and a flush carries only applies whose entries are in the files.
   */
  private readonly flushes = new OneAtATime();
  /** When what is held now began to be held (performance.now()); files mode's flush timer. */
  private heldSince = 0;
  /** A flush beside the write path is queued or running (files mode). */
  private flushQueued = false;

  private constructor(
    location: string,
    handles: Database,
    log: LogStore,
    stateMachine: KvStateMachine,
    health: StoreHealth,
    options: NodeStorageOptions,
  ) {
    this.location = location;
    this.handles = handles;
    this.log = log;
    this.stateMachine = stateMachine;
    this.health = health;
    this.onPersist = options.onPersist;
    this.flushAfterMs = options.flushAfterMs ?? DEFAULT_FLUSH_AFTER_MS;
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
      throw new StorageRefusedError(
        `data dir ${location} is already open in this process: close it before opening it again`,
      );
    }
    openLocations.add(location);
    let storage: NodeStorage;
    let opened: Awaited<ReturnType<typeof openDataDir>> | undefined;
    try {
      const cacheBytes = options.cacheBytes ?? DEFAULT_CACHE_BYTES;
      const health = new StoreHealth(location);
      opened = await openDataDir(location, { ...options, cacheBytes, health });
      const { handles, loaded } = opened;
      const log = new LogStore({
        handles,
        health,
        voters: options.voters,
        hardState: loaded.hardState,
        snapshot: loaded.snapshot,
        terms: loaded.terms,
        cache: loaded.cache,
        files: loaded.files,
        ...(options.readAheadBytes === undefined ? {} : { readAheadBytes: options.readAheadBytes }),
      });
      // Background failures (clearing a retired generation) reach the driver like a failed read-ahead.
      const membership = loaded.membership ?? {
        members:
          options.initialMembers ??
          options.voters.map((id) => ({ id, clientUrl: '', peerUrl: '', role: 'voter' as const })),
        removed: [],
      };
      const stateMachine = await KvStateMachine.open(handles, loaded.applied, membership, loaded.generation, (error) =>
        log.reportBackgroundFailure(health.fail('clearing an old state-machine generation', error)),
      );
      storage = new NodeStorage(location, handles, log, stateMachine, health, options);
      // Entries up to the log start that a crash left behind.
      log.deleteCompactedLeftovers();
    } catch (error) {
      // What openDataDir opened is closed again: a retry must not find the segment files open twice.
      await opened?.loaded.files?.close().catch(() => undefined);
      await opened?.handles.db.close().catch(() => undefined);
      openLocations.delete(location);
      throw error;
    }
    const { term, commit } = storage.initialHardState();
    options.logger?.info(
      {
        location,
        log: storage.logInFiles ? 'segment files' : 'leveldb',
        term,
        commit,
        applied: storage.applied.index,
        lastIndex: storage.lastIndex(),
        cachedEntries: storage.stats().cachedEntries,
        openMs: Math.round(performance.now() - started),
      },
      'storage opened',
    );
    return storage;
  }

  // ===========================================================================================
  // Storage (read by the Raft core, synchronously): the log's

  initialHardState(): HardState {
    return this.log.initialHardState();
  }

  firstIndex(): number {
    return this.log.firstIndex();
  }

  lastIndex(): number {
    return this.log.lastIndex();
  }

  term(index: number): number {
    return this.log.term(index);
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    return this.log.entries(lo, hi, maxBytes);
  }

  entriesToSend(lo: number, hi: number, maxBytes: number): Entry[] | null {
    return this.log.entriesToSend(lo, hi, maxBytes);
  }

  snapshotMeta(): SnapshotMeta {
    return this.log.snapshotMeta();
  }

  /** Who to tell when background loads complete or fail (the driver: it resumes replication). */
  setLoadListener(listener: LoadListener): void {
    this.log.setLoadListener(listener);
  }

  // ===========================================================================================
  // Driver side: writing Readys

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
   *  - state-machine changes and the applied index are never written unsynced, and travel in one
   *    batch: the stored applied index never claims key changes a power loss can take away (an
   *    earlier unsynced apply lost while a later one survived would make the state machine diverge
   *    from the log without a trace);
   *  - a Ready that persists nothing (no entry, term or vote) and only applies entries is HELD: its
   *    operations are not written at all, its changes stay in memory (KvStateMachine.holdApplied:
   *    every read on this thread sees them, and reads of LevelDB itself flush them first), and the
   *    next synced batch carries them ahead of its own (`flushHeld` writes them alone). The entries
   *    it applied are committed and in the durable log, so a crash or a power loss loses exactly
   *    the held changes and the applied index with them: replaying from the stored applied index
   *    runs on exactly the state it was computed on, and answers the same. This takes the second
   *    fsync off a write at low concurrency (the entry, then its apply: BENCHMARKS.md step 13).
   *    Not held: a Ready that changes the membership, or one that would pass the held bounds;
   *  - a Ready that moves nothing but the commit index is written WITHOUT fsync (as etcd's
   *    MustSync), or joins what is held: Raft never needs the commit index durable. Losing it moves
   *    the commit back, which the leader's next message repairs (and open raises it to the applied
   *    index).
   * Committed entries must be in the durable log once this batch is written: stored already, or
   * among `entries` (a follower's entries that arrive committed).
   */
  async writeReady(
    hardState: HardState | null,
    entries: readonly Entry[],
    committed: readonly Entry[],
    snapshot: SnapshotMeta | null = null,
  ): Promise<{ synced: boolean; outcomes: ApplyOutcome[] }> {
    this.health.assertUsable('writeReady');
    return this.oneWriteAtATime(() => this.writeReadyNow(hardState, entries, committed, snapshot));
  }

  private async writeReadyNow(
    hardState: HardState | null,
    entries: readonly Entry[],
    committed: readonly Entry[],
    snapshot: SnapshotMeta | null,
  ): Promise<{ synced: boolean; outcomes: ApplyOutcome[] }> {
    assert(!this.log.writing, 'writeReady() called while another write is in flight');
    if (snapshot !== null) return this.installSnapshot(snapshot, hardState, entries, committed);
    this.log.assertPersistContract(hardState, entries);
    const firstNew = entries[0]?.index ?? Infinity;
    const lastAfter = entries[entries.length - 1]?.index ?? this.log.lastIndex();
    this.stateMachine.assertApplyContract(
      committed,
      (index) =>
        index >= firstNew
          ? entries[index - firstNew]?.term
          : index <= this.log.lastIndex()
            ? this.log.termAt(index)
            : undefined,
      lastAfter,
    );
    if (hardState === null && entries.length === 0 && committed.length === 0) return { synced: false, outcomes: [] };
    if (this.log.inFiles) return this.writeReadyToFiles(hardState, entries, committed);
    const own: ByteBatchOperation[] = [];
    const bytes = this.log.addPersistOperations(hardState, entries, own);
    const { outcomes, applied, membership, changes } = this.stateMachine.addApplyOperations(committed, own);
    const persists = entries.length > 0 || this.log.changesTermOrVote(hardState);
    if (!persists && (applied !== null || this.held !== null) && this.tryHold(own, membership)) {
      this.log.rememberPersisted(hardState, entries);
      if (applied !== null) this.stateMachine.holdApplied(applied, changes);
      return { synced: false, outcomes };
    }
    const mustSync = persists || applied !== null;
    // What is held goes first, so this Ready's own changes of the same keys win.
    const held = mustSync ? this.held : null;
    const ops = held === null ? own : held.ops.concat(own);
    // LevelDB shows a batch to getSync before its callback runs, while held keys are still answered
    // from memory: with this batch's changes in the held map too, a read in between sees the state
    // after the whole batch, never a held key's older value next to a newer key from LevelDB.
    if (held !== null) this.stateMachine.holdChanges(changes);
    const ms = await this.writeOps(ops, mustSync, () => describeWrite(hardState, entries, committed));
    this.log.rememberPersisted(hardState, entries);
    if (held !== null) this.heldWritten();
    if (applied !== null) this.stateMachine.rememberApplied(applied, membership, changes);
    if (mustSync) this.onPersist?.(ms, entries.length, bytes);
    return { synced: mustSync, outcomes };
  }

  /**
   * writeReady with the log in files (docs/log-file-proposal.md): the term and vote (when either
   * changed) and the entries are appended to the files, synced: that is the only write on a
   * write's path. The state-machine changes of `committed` are then held, and flushed to LevelDB
   * beside the path (flushInFiles), unless they may not be held (a membership change, or past the
   * bounds): then they are written now, after the flush in flight, with everything held. The commit
   * index alone is never written (open raises it to the applied index).
   */
  private async writeReadyToFiles(
    hardState: HardState | null,
    entries: readonly Entry[],
    committed: readonly Entry[],
  ): Promise<{ synced: boolean; outcomes: ApplyOutcome[] }> {
    // Computed over what is held and flushing (BatchView), before the append: nothing here reads
    // or changes the state until it is held, after the entries are on disk (a flush may carry only
    // applies whose entries are in the files).
    const own: ByteBatchOperation[] = [];
    const { outcomes, applied, membership, changes } = this.stateMachine.addApplyOperations(committed, own);
    const persists = entries.length > 0 || this.log.changesTermOrVote(hardState);
    if (persists) {
      const started = performance.now();
      const bytes = await this.log.persistToFiles(hardState, entries);
      this.onPersist?.(performance.now() - started, entries.length, bytes);
    }
    this.log.rememberPersisted(hardState, entries);
    if (applied === null) return { synced: persists, outcomes };
    if (this.tryHold(own, membership)) {
      this.stateMachine.holdApplied(applied, changes);
      // A hold that began what is held (tryHold keeps `own` itself then) starts the flush timer.
      if (this.held?.ops === own) this.heldSince = performance.now();
      this.maybeFlushBeside();
      return { synced: persists, outcomes };
    }
    await this.flushInFiles({
      ops: own,
      changes,
      // Inside the flush's turn: no later flush has begun, and nothing was held meanwhile (this
      // Ready holds the write queue).
      landed: () => this.stateMachine.rememberApplied(applied, membership, changes),
    });
    return { synced: true, outcomes };
  }

  /**
   * Starts a flush of what is held beside the write path when it passed half the held bounds or
   * was held for FLUSH_AFTER_MS, unless one is queued already. A failure marks the store failed
   * (the next write refuses) and reaches the driver.
   */
  private maybeFlushBeside(): void {
    const held = this.held;
    if (held === null || this.flushQueued) return;
    const large = held.ops.length * 2 > MAX_HELD_OPERATIONS || held.bytes * 2 > MAX_HELD_BYTES;
    if (!large && performance.now() - this.heldSince < this.flushAfterMs) return;
    this.flushQueued = true;
    this.flushInFiles()
      .catch((error: unknown) => {
        // A store closed meanwhile: the flush was not needed (the log replays what it held).
        if (this.health.isClosed) return;
        this.log.reportBackgroundFailure(
          error instanceof StorageFatalError ? error : this.health.fail('flushing applied changes', error),
        );
      })
      .finally(() => (this.flushQueued = false));
  }

  /**
   * With the log in files: writes what is held, and `extra` (a Ready's own changes that may not be
   * held), to LevelDB in one synced batch, after the flush in flight. While it is written its
   * changes stay readable from memory (the state machine's flushing layer), over LevelDB, under
   * what is held after it; once it landed, LevelDB holds every apply held when it began.
   */
  private flushInFiles(extra?: { ops: ByteBatchOperation[]; changes: KeyChanges; landed: () => void }): Promise<void> {
    return this.flushes.run(async () => {
      this.health.assertUsable('flush');
      const held = this.held;
      if (held === null && extra === undefined) return;
      this.held = null;
      this.stateMachine.beginFlush(extra?.changes);
      const ops = held === null ? (extra?.ops ?? []) : extra === undefined ? held.ops : held.ops.concat(extra.ops);
      const ms = await this.writeOps(ops, true, () => 'writing the changes of applied entries');
      this.stateMachine.flushLanded();
      extra?.landed();
      this.onPersist?.(ms, 0, 0);
    });
  }

  /**
   * Holds a Ready's own operations (`own`, nothing to persist in them), unless it may not be held:
   * its membership changed (a node's configuration follows its applied membership, and a change
   * must not be replayed around a restart without a trace on disk), or what is held would pass its
   * bounds. Says whether it held them.
   */
  private tryHold(own: ByteBatchOperation[], membership: Membership): boolean {
    if (membership !== this.stateMachine.membership) return false;
    const bytes = (this.held?.bytes ?? 0) + operationBytes(own);
    if ((this.held?.ops.length ?? 0) + own.length > MAX_HELD_OPERATIONS || bytes > MAX_HELD_BYTES) return false;
    if (this.held === null) this.held = { ops: own, bytes };
    else {
      for (const op of own) this.held.ops.push(op);
      this.held.bytes = bytes;
    }
    this.heldStamps++;
    return true;
  }

  /**
   * Changes one held Ready after another: a number that moves with each, or null when nothing is
   * held. The driver flushes what stayed held, unchanged, for a whole tick (an idle cluster).
   */
  get heldStamp(): number | null {
    return this.held === null ? null : this.heldStamps;
  }

  /**
   * Writes what is held (writeReady) in one synced batch, unless a write in flight carries it; once
   * this resolves, LevelDB holds the state at every index applied when it was called. Reads of
   * LevelDB itself (scans, the read pool, a snapshot to send, compaction) call it first.
   */
  async flushHeld(): Promise<void> {
    if (this.log.inFiles) {
      // Also waits for the flush in flight, which holds applies the caller has seen.
      this.health.assertUsable('flushHeld');
      await this.flushInFiles();
      return;
    }
    if (this.held === null) return;
    this.health.assertUsable('flushHeld');
    await this.oneWriteAtATime(() => this.writeHeld());
  }

  /** flushHeld's write, inside oneWriteAtATime. */
  private async writeHeld(): Promise<void> {
    if (this.log.inFiles) return this.flushInFiles();
    const held = this.held;
    if (held === null) return;
    const ms = await this.writeOps(held.ops, true, () => 'writing the held changes of applied entries');
    this.heldWritten();
    this.onPersist?.(ms, 0, 0);
  }

  /** Whether the Raft log is in segment files of its own (format 4) rather than in LevelDB. */
  get logInFiles(): boolean {
    return this.log.inFiles;
  }

  /** Settles once the flushes beside the write path queued so far have landed (or failed). */
  flushesIdle(): Promise<void> {
    return this.flushes.idle();
  }

  /** A synced batch carried what was held: its operations (here) and its changes (the state machine's) go. */
  private heldWritten(): void {
    this.held = null;
    this.stateMachine.heldWritten();
  }

  /**
   * Writes one batch (inside oneWriteAtATime), with the log marked as being written meanwhile;
   * returns how long it took. A failure makes the store unusable (`what` says what failed).
   */
  private async writeOps(ops: readonly ByteBatchOperation[], sync: boolean, what: () => string): Promise<number> {
    // A read of LevelDB's log must know that a write may be landing under it (the files' reads do
    // not, and flushes there run beside the write path).
    this.log.writing = !this.log.inFiles;
    const started = performance.now();
    try {
      await writeBatch(this.handles.db, ops, { sync });
    } catch (error) {
      throw this.health.fail(what(), error);
    } finally {
      this.log.writing = false;
    }
    return performance.now() - started;
  }

  /**
   * Runs `write` once every write started before it has finished: the driver writes one Ready at a
   * time, and flushHeld may come from elsewhere (a read, a tick) at any moment. Held operations
   * are taken and cleared inside it, so no two batches ever carry them, and batches land in order.
   */
  private oneWriteAtATime<T>(write: () => Promise<T>): Promise<T> {
    return this.writes.run(() => {
      // A write that failed before this one made the store unusable: nothing may follow it.
      this.health.assertUsable('write');
      return write();
    });
  }

  /**
   * A Ready that installs a snapshot (a follower's): one synced batch switches the state machine to
   * the staged generation, moves the log to start after the snapshot (dropping a conflicting suffix),
   * and writes the hard state and any entries that follow the snapshot.
   */
  private async installSnapshot(
    snapshot: SnapshotMeta,
    hardState: HardState | null,
    entries: readonly Entry[],
    committed: readonly Entry[],
  ): Promise<{ synced: boolean; outcomes: ApplyOutcome[] }> {
    const staged = this.staged;
    assert(
      staged !== null && staged.meta.index === snapshot.index && staged.meta.term === snapshot.term,
      () =>
        `install: snapshot ${snapshot.index}/${snapshot.term} is not the staged one (${staged === null ? 'none' : `${staged.meta.index}/${staged.meta.term}`})`,
    );
    assert(committed.length === 0, 'install: committed entries come after the snapshot, never with it');
    this.log.assertPersistContract(hardState, entries, snapshot);
    // Read before the switch (nothing writes the staged generation any more): the records index must
    // be the installed state's from the first entry applied after it.
    let records: IdempotencyIndex;
    try {
      records = await KvStateMachine.loadRecords(staged.kv);
    } catch (error) {
      if (error instanceof CorruptDataError) throw error;
      throw this.health.fail(`reading the idempotency records of snapshot ${snapshot.index}/${snapshot.term}`, error);
    }
    const ops: ByteBatchOperation[] = [];
    const applied = { index: snapshot.index, term: snapshot.term };
    this.log.addInstallOperations(snapshot, ops);
    this.stateMachine.addInstallOperations(staged.generation, applied, staged.membership, ops);
    const what = (): string => `installing snapshot ${snapshot.index}/${snapshot.term}`;
    const remember = (): void => {
      this.staged = null;
      // Held changes were the old generation's, of entries the snapshot includes (rememberInstalled).
      this.held = null;
      this.log.rememberInstalled(snapshot);
      this.log.rememberPersisted(hardState, entries);
      this.stateMachine.rememberInstalled(
        staged.generation,
        staged.kv,
        applied,
        staged.membership,
        records,
        staged.metaCache,
      );
    };
    let ms: number;
    let bytes: number;
    if (this.log.inFiles) {
      // In the flush queue's turn, the held changes dropped in it too: a flush of the old
      // generation's changes (and its applied index) must never land after the switch.
      const started = performance.now();
      bytes = await this.flushes.run(async () => {
        this.health.assertUsable('install');
        const written = await this.log.installToFiles(snapshot, hardState, entries, async () => {
          await this.writeOps(ops, true, what);
        });
        remember();
        return written;
      });
      ms = performance.now() - started;
    } else {
      bytes = this.log.addPersistOperations(hardState, entries, ops, snapshot.index);
      ms = await this.writeOps(ops, true, what);
      remember();
    }
    this.onPersist?.(ms, entries.length, bytes);
    return { synced: true, outcomes: [] };
  }

  /**
   * Records a snapshot point at the applied index and compacts the log to start after
   * `compactIndex` (at most the applied index). The state machine at the applied index IS the
   * snapshot: nothing is copied. Entries up to `compactIndex` are deleted in the background.
   */
  async compactLog(compactIndex: number): Promise<void> {
    this.health.assertUsable('compact');
    await this.oneWriteAtATime(() => this.compactLogNow(compactIndex));
  }

  private async compactLogNow(compactIndex: number): Promise<void> {
    // The snapshot point claims the state at the applied index: it must be on disk first.
    await this.writeHeld();
    const applied = this.stateMachine.applied;
    assert(
      compactIndex <= applied.index,
      () => `compact: ${compactIndex} is beyond the applied index ${applied.index}`,
    );
    const conf = confStateOf(this.stateMachine.membership);
    const snapshot: SnapshotMeta = {
      index: applied.index,
      term: applied.term,
      voters: conf.voters,
      learners: conf.learners,
    };
    const ops: ByteBatchOperation[] = [];
    const start = this.log.addCompactOperations(snapshot, Math.max(compactIndex, this.log.firstIndex() - 1), ops);
    try {
      await this.handles.db.batch(ops, { sync: true });
    } catch (error) {
      throw this.health.fail(`compacting the log to ${compactIndex}`, error);
    }
    this.log.rememberCompacted(snapshot, start);
  }

  /**
   * Notes, durably, that peer `by` told this node it was removed from the cluster: the data dir then
   * refuses to start (open-data-dir.ts), as it does once the node applied its own removal.
   */
  async markRemoved(by: NodeId): Promise<void> {
    this.health.assertUsable('markRemoved');
    try {
      await this.handles.db.batch([putOp(this.handles.meta, META_REMOVED, new TextEncoder().encode(by))], {
        sync: true,
      });
    } catch (error) {
      throw this.health.fail('recording that this node was removed', error);
    }
  }

  /** The latest snapshot point (compaction or install); index 0 when none. */
  latestSnapshot(): SnapshotMeta {
    return this.log.latestSnapshot();
  }

  /** Approximate bytes the retained log takes on disk (LevelDB's estimate). */
  async logDiskBytes(): Promise<number> {
    return this.log.approximateBytes();
  }

  /**
   * Starts staging a received snapshot in the state machine's next generation (aborting a staging
   * still in progress). The caller writes every pair, then `complete`s it with the snapshot's meta.
   */
  async beginStaging(): Promise<SnapshotStaging> {
    this.health.assertUsable('beginStaging');
    // From here on no staging begun before may write, complete or clear anything (live, abort).
    const epoch = ++this.stagingEpoch;
    // Queued behind any chunk write and begin asked for before it (stagingQueue says why).
    return this.stagingQueue.run(() => this.beginStagingNow(epoch));
  }

  private async beginStagingNow(epoch: number): Promise<SnapshotStaging> {
    // Queued behind other work: the storage may have closed (or failed) since beginStaging asked.
    this.health.assertUsable('beginStaging');
    // A complete snapshot the core took waits for its Ready: staging another now would reuse (and
    // clear) its generation under it. The sender gives up; the leader tries again later.
    if (this.staged !== null)
      throw new Error(`snapshot ${this.staged.meta.index} is received and waits to be installed`);
    const { generation, kv } = await this.stateMachine.openStaging();
    const token = { aborted: false, completed: false };
    const metaCache = new KeyMetaCache();
    const live = (): boolean => !token.aborted && !token.completed && epoch === this.stagingEpoch && this.health.usable;
    return {
      generation,
      write: async (pairs) => {
        if (!live()) throw new Error('this snapshot staging was abandoned for a newer one');
        try {
          // writeBatch, not the public batch(): that re-validates and copies each operation, which
          // held the loop 370-450 ms per received 1 MiB chunk of 100-byte values (BENCHMARKS.md,
          // profiling step 18).
          await this.stagingQueue.run(() =>
            writeBatch(
              this.handles.db,
              pairs.map(([key, value]) => putOp(kv, key, value)),
              { sync: true },
            ),
          );
        } catch (error) {
          throw this.health.fail('writing a received snapshot', error);
        }
        KvStateMachine.rememberStaged(metaCache, pairs);
      },
      complete: (meta, membership) => {
        if (!live()) throw new Error('this snapshot staging was abandoned for a newer one');
        token.completed = true;
        this.staged = { generation, kv, meta, membership, metaCache };
      },
      abort: () => {
        // Once complete, the snapshot is the core's to install (it may be the current state by
        // now): only discardStaged drops it.
        if (token.completed) return;
        token.aborted = true;
        // A newer staging has begun: it clears the generation itself, and anything staged there now
        // is its own, which this abort must not touch. (Nothing is staged otherwise: only this
        // staging's complete could have staged anything since it began.)
        if (epoch !== this.stagingEpoch) return;
        // After this staging's chunk writes still queued or in flight: none may land after the clear.
        this.stateMachine.clearGeneration(generation, this.stagingQueue.idle());
      },
    };
  }

  /** A staged snapshot the core did not install (stale, or its log already had it): drop it. */
  discardStaged(meta: SnapshotMeta): void {
    if (this.staged === null || this.staged.meta.index !== meta.index || this.staged.meta.term !== meta.term) return;
    const { generation } = this.staged;
    this.staged = null;
    this.stateMachine.clearGeneration(generation);
  }

  /**
   * A consistent view of the state machine to send as a snapshot: an explicit LevelDB snapshot, from
   * which the applied index, the generation and the pairs are all read, so they agree exactly.
   */
  async openSnapshotSource(): Promise<SnapshotSource> {
    this.health.assertUsable('openSnapshotSource');
    await this.flushHeld();
    const snapshot = this.handles.db.snapshot();
    try {
      const appliedBytes = await this.handles.sm.get(SM_APPLIED, { snapshot });
      const generationBytes = await this.handles.sm.get(SM_GENERATION, { snapshot });
      const membersBytes = await this.handles.sm.get(SM_MEMBERS, { snapshot });
      const applied = appliedBytes === undefined ? { index: 0, term: 0 } : decodeApplied(appliedBytes);
      const generation = generationBytes === undefined ? 0 : decodeGeneration(generationBytes);
      // A dir that predates membership records stores none: the membership then is what it started with.
      const membership =
        membersBytes === undefined
          ? this.stateMachine.membership
          : decodeMembership(membersBytes, 'the membership record');
      const kv = await openKv(this.handles.db, generation);
      const iterator = kv.iterator({ snapshot });
      let done = false;
      return {
        index: applied.index,
        term: applied.term,
        membership,
        next: async (maxBytes) => {
          if (done) return null;
          const out: [Uint8Array, Uint8Array][] = [];
          let bytes = 0;
          while (bytes < maxBytes) {
            const chunk = await iterator.nextv(256);
            if (chunk.length === 0) {
              done = true;
              break;
            }
            for (const [key, value] of chunk) {
              out.push([key, value]);
              bytes += key.length + value.length;
            }
          }
          return out.length === 0 && done ? null : out;
        },
        close: async () => {
          await iterator.close().catch(() => undefined);
          await snapshot.close().catch(() => undefined);
        },
      };
    } catch (error) {
      await snapshot.close().catch(() => undefined);
      if (error instanceof CorruptDataError) throw error;
      throw this.health.fail('opening a snapshot of the state machine', error);
    }
  }

  /** Hard state and entries only (writeReady without committed entries). */
  async persist(hardState: HardState | null, entries: readonly Entry[]): Promise<{ synced: boolean }> {
    const { synced } = await this.writeReady(hardState, entries, []);
    return { synced };
  }

  /**
   * Applies committed entries that are already in the durable log (writeReady without a hard state
   * or entries: held in memory within the bounds, else one synced batch with `applied`, the last
   * entry's index and term). A crash loses all of it or none of it, and replaying from the stored
   * `applied + 1` after a restart is exact.
   */
  async applyEntries(entries: readonly Entry[]): Promise<ApplyOutcome[]> {
    return (await this.writeReady(null, [], entries)).outcomes;
  }

  // ===========================================================================================
  // The state machine's

  /** The membership at the applied index (storage/members.ts). */
  get membership(): Membership {
    return this.stateMachine.membership;
  }

  /** The state machine's last applied entry ({0, 0} when none): the core's `applied` at start-up. */
  get applied(): { index: number; term: number } {
    return this.stateMachine.applied;
  }

  /** How many keys' metadata the state machine's cache holds (key-meta-cache.ts). */
  get cachedKeyMetas(): number {
    return this.stateMachine.cachedKeyMetas;
  }

  /**
   * Starts a read of LevelDB's state that may outlive a snapshot install (scans, the read pool):
   * what is held is flushed first, so it includes every entry applied when this was called.
   */
  async beginRead(): Promise<StateRead> {
    await this.flushHeld();
    return this.stateMachine.beginRead();
  }

  /** The value of `key` in the applied state (held changes included), or undefined. */
  getSync(key: Uint8Array): Uint8Array | undefined {
    return this.stateMachine.getSync(key);
  }

  /** The value and metadata of `key` in the applied state, or undefined. */
  getEntrySync(key: Uint8Array): StoredValue | undefined {
    return this.stateMachine.getEntrySync(key);
  }

  /** How many idempotency records the state holds, and their bytes (idempotency.ts bounds both). */
  get idempotencyRecords(): { count: number; bytes: number } {
    return this.stateMachine.idempotencyRecords;
  }

  /** One page of the applied state in key order; continue with `start: page.nextStart`. */
  async scan(options: ScanOptions): Promise<ScanPage> {
    await this.flushHeld();
    return this.stateMachine.scan(options);
  }

  stats(): NodeStorageStats {
    return this.log.stats();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // A Ready still being written finishes first: it may hold applies, and start a flush.
    await this.writes.idle();
    // Not needed for safety (the log replays it), but a clean stop leaves nothing to replay.
    if (this.health.usable) await this.flushHeld().catch(() => undefined);
    this.closed = true;
    this.health.markClosed();
    // A staging's begin (its clear and compactRange) or chunk write still queued or running uses the
    // database: it ends first (those queued from now on find the storage closed and do nothing), and
    // the background clears it may have started are then among those settled below.
    await this.stagingQueue.idle();
    await this.flushes.idle();
    await Promise.all([this.log.settle(), this.stateMachine.settle()]).catch(() => undefined);
    await this.log.closeFiles().catch(() => undefined);
    try {
      await this.handles.db.close();
    } finally {
      openLocations.delete(this.location);
    }
  }
}

function assertValidOptions(options: NodeStorageOptions): void {
  if (options.clusterId.length === 0)
    throw new StorageRefusedError('the cluster id is empty: set clusterId in the cluster config');
  if (options.nodeId.length === 0)
    throw new StorageRefusedError('the node id is empty: set the node id in the cluster config or flags');
  if (options.cacheBytes !== undefined && !(options.cacheBytes >= 0)) {
    throw new RangeError(`cacheBytes must be >= 0, not ${options.cacheBytes}`);
  }
}

/** The key and value bytes of `ops` (what a held Ready keeps alive). */
function operationBytes(ops: readonly ByteBatchOperation[]): number {
  let bytes = 0;
  for (const op of ops) bytes += op.key.length + (op.type === 'put' ? op.value.length : 0);
  return bytes;
}

function describeWrite(hardState: HardState | null, entries: readonly Entry[], committed: readonly Entry[]): string {
  const parts: string[] = [];
  if (hardState !== null) parts.push('the hard state');
  if (entries.length > 0) parts.push(`${entries.length} log entries`);
  if (committed.length > 0)
    parts.push(`applying entries ${committed[0]?.index}..${committed[committed.length - 1]?.index}`);
  return `writing ${parts.join(', ')}`;
}
