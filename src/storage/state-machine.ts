// The key-value state machine of one node: what applying a committed entry does (the command
// format is this module's: the API encodes client writes with it), the applied index, reads of the
// applied state, and the generations a snapshot install moves between.
//
// NodeStorage writes the apply operations in the same LevelDB batch as the Ready's log entries;
// this class prepares them and, once the batch is durable, moves the applied index.
//
// Generations: the state lives in the `kv` sublevel of the current generation (database.ts
// kvName). A snapshot received from the leader is staged in the next generation, and installing it
// switches `generation` and `applied` in one synced batch: a crash at any moment leaves either the
// old state or the complete new one. The old generation is cleared once no read still uses it.
//
// Invariant: the stored applied index, the generation and the key changes of every entry up to the
// stored applied index are written in synced batches, so the state on disk is always exactly the
// state at the stored applied index. The in-memory applied index may be ahead of it: the changes of
// a Ready that only applied are held (`holdApplied`) until the next synced batch carries them
// (NodeStorage.writeReady says why that is safe); every read on this thread sees them first, and a
// read of LevelDB itself (scans, the read pool, a snapshot) flushes them before it starts.

import { assert } from '../raft/assert.js';
import { EntryType, type Entry } from '../raft/types.js';
import {
  SM_APPLIED,
  SM_GENERATION,
  SM_MEMBERS,
  encodeApplied,
  encodeGeneration,
  plainBytes,
  type AppliedState,
} from './codec.js';
import { applyPlain, applyRequest, type RequestAnswer } from './apply-request.js';
import { decodeCommand, type Command } from './command.js';
import {
  delOp,
  openKv,
  prefixRange,
  storedGenerations,
  putOp,
  type ByteBatchOperation,
  type ByteSublevel,
  type Database,
} from './database.js';
import { CorruptDataError, describeError } from './errors.js';
import { IDEMPOTENCY_END, IDEMPOTENCY_PREFIX, IdempotencyIndex } from './idempotency.js';
import { decodeMeta, decodeStored, type KeyMeta, type StoredValue } from './key-meta.js';
import { KeyMetaCache } from './key-meta-cache.js';
import { scanKv, type ScanOptions, type ScanPage } from './kv-scan.js';
import { byteKey, INTERNAL_PREFIX, metaOfStored, type KvView } from './kv-view.js';
import {
  changedMembership,
  decodeMemberChange,
  encodeMembership,
  invalidMemberChange,
  type MemberChange,
  type Membership,
} from './members.js';

export { encodeCommand, decodeCommand, MAX_COMMAND_KEY_BYTES, type Command } from './command.js';

/** What applying one committed entry did to the state machine. */
export type ApplyOutcome =
  | { readonly index: number; readonly term: number; readonly op: 'put' | 'delete' | 'noop' }
  /** A request (command.ts op 0x05): what it did, for the client waiting on it. */
  | { readonly index: number; readonly term: number; readonly op: 'request'; readonly answer: RequestAnswer }
  /** A membership change was applied: the driver tells the core (RaftCore.applyConfChange). */
  | { readonly index: number; readonly term: number; readonly op: 'member'; readonly change: MemberChange };

/** A batch's key changes by byteKey: the stored bytes written, or null for a delete. */
export type KeyChanges = ReadonlyMap<string, Uint8Array | null>;

/** A read of the applied state that may outlive a snapshot install: its generation stays until `end`. */
export interface StateRead {
  readonly generation: number;
  readonly kv: ByteSublevel;
  end(): void;
}

export class KvStateMachine {
  private readonly handles: Database;
  private appliedState: AppliedState;
  private generation: number;
  private current: ByteSublevel;
  /** Reads in progress per generation; an old generation is cleared only once it has none. */
  private readonly readers = new Map<number, number>();
  /** Old generations waiting for their last reader before they are cleared. */
  private readonly retired = new Set<number>();
  /** Clears running, per generation: staging into a generation waits for its clear. */
  private readonly clears = new Map<number, Promise<void>>();
  /** The search for retired generations left on disk that open starts (sweepRetired). */
  private sweep: Promise<void> = Promise.resolve();
  private readonly onBackgroundError: (error: unknown) => void;
  private membershipState: Membership;
  /** The idempotency records of the current generation, in apply order (idempotency.ts). */
  private records: IdempotencyIndex;
  /** The metadata of recently applied (or installed) keys of the current generation, as durable (key-meta-cache.ts). */
  private metaCache = new KeyMetaCache();
  /**
   * The changes of applied entries not written yet (holdApplied), by byteKey, null for a delete;
   * null when none. Reads and later applies see them over LevelDB and the metadata cache, which
   * hold only durable state.
   */
  private held: Map<string, Uint8Array | null> | null = null;
  /**
   * The held changes a flush is writing beside the write path (`beginFlush`), until it lands
   * (`flushLanded`); null when no flush is in flight. Reads see `held` over these over LevelDB.
   * Only a store whose log is in files flushes this way (NodeStorage).
   */
  private flushing: Map<string, Uint8Array | null> | null = null;

  private constructor(
    handles: Database,
    applied: AppliedState,
    membership: Membership,
    generation: number,
    kv: ByteSublevel,
    records: IdempotencyIndex,
    onBackgroundError: (error: unknown) => void,
  ) {
    this.handles = handles;
    this.records = records;
    this.appliedState = applied;
    this.membershipState = membership;
    this.generation = generation;
    this.current = kv;
    this.onBackgroundError = onBackgroundError;
  }

  static async open(
    handles: Database,
    applied: AppliedState,
    membership: Membership,
    generation: number,
    onBackgroundError: (error: unknown) => void,
  ): Promise<KvStateMachine> {
    const kv = await openKv(handles.db, generation);
    const sm = new KvStateMachine(
      handles,
      applied,
      membership,
      generation,
      kv,
      await KvStateMachine.loadRecords(kv),
      onBackgroundError,
    );
    // Only the current generation is state. A crash can leave a staged snapshot in the next one
    // (cleared again by a staging's begin), and a crash or a power loss a retired one, however old:
    // a clear cut short, or one whose unsynced deletions a power loss undid after later installs.
    sm.clearGeneration(generation + 1);
    sm.sweepRetired(generation);
    return sm;
  }

  /** The idempotency records of a generation, read from it (at open, and before a snapshot is installed). */
  static async loadRecords(kv: ByteSublevel): Promise<IdempotencyIndex> {
    const pairs: (readonly [Uint8Array, Uint8Array])[] = [];
    for await (const [key, value] of kv.iterator({ gte: IDEMPOTENCY_PREFIX, lt: IDEMPOTENCY_END })) {
      pairs.push([plainBytes(key), plainBytes(value)]);
    }
    return IdempotencyIndex.fromRecords(pairs);
  }

  /** How many idempotency records the state holds, and their bytes. */
  get idempotencyRecords(): { count: number; bytes: number } {
    return { count: this.records.size, bytes: this.records.bytes };
  }

  /** The last applied entry ({0, 0} when none): the core's `applied` at start-up. */
  get applied(): AppliedState {
    return { index: this.appliedState.index, term: this.appliedState.term };
  }

  /** The membership at the applied index. */
  get membership(): Membership {
    return this.membershipState;
  }

  /** The current generation's sublevel, for point reads on the main thread. */
  get kv(): ByteSublevel {
    return this.current;
  }

  get currentGeneration(): number {
    return this.generation;
  }

  /** Starts a read that may run while a snapshot is installed: the generation it reads stays until end(). */
  beginRead(): StateRead {
    const generation = this.generation;
    this.readers.set(generation, (this.readers.get(generation) ?? 0) + 1);
    let ended = false;
    return {
      generation,
      kv: this.current,
      end: () => {
        if (ended) return;
        ended = true;
        const left = (this.readers.get(generation) ?? 1) - 1;
        if (left > 0) this.readers.set(generation, left);
        else this.readers.delete(generation);
        if (left <= 0 && this.retired.has(generation)) this.clearGeneration(generation);
      },
    };
  }

  /**
   * Committed entries arrive in order, from applied + 1, and are in the durable log once their
   * batch is written: `logTerm` answers the term the log will hold at an index (undefined beyond it).
   */
  assertApplyContract(
    committed: readonly Entry[],
    logTerm: (index: number) => number | undefined,
    lastIndex: number,
  ): void {
    let expected = this.appliedState.index + 1;
    for (const entry of committed) {
      assert(
        entry.index === expected,
        () => `writeReady: committed entry ${entry.index} given, ${expected} expected next`,
      );
      const term = logTerm(entry.index);
      assert(
        term !== undefined,
        () => `writeReady: committed entry ${entry.index} is beyond the durable log (${lastIndex})`,
      );
      assert(
        term === entry.term,
        () => `writeReady: committed entry ${entry.index} has term ${entry.term}, the log says ${term}`,
      );
      expected++;
    }
  }

  /**
   * Adds the changes of `committed` and the new applied index to `ops`; returns what each entry did
   * and the new applied state (null when nothing is applied).
   */
  addApplyOperations(
    committed: readonly Entry[],
    ops: ByteBatchOperation[],
  ): { outcomes: ApplyOutcome[]; applied: AppliedState | null; membership: Membership; changes: KeyChanges } {
    let membership = this.membershipState;
    const view = new BatchView(this.current, ops, this.metaCache, this.held, this.flushing);
    const outcomes = committed.map((entry) => {
      if (entry.type !== EntryType.ConfChange) return this.applyOperation(entry, view);
      const outcome = this.applyMemberChange(entry, membership);
      if (outcome.op === 'member') membership = changedMembership(membership, outcome.change);
      return outcome;
    });
    if (membership !== this.membershipState) ops.push(putOp(this.handles.sm, SM_MEMBERS, encodeMembership(membership)));
    const last = committed[committed.length - 1];
    if (last === undefined) return { outcomes, applied: null, membership, changes: view.written };
    const applied = { index: last.index, term: last.term };
    ops.push(putOp(this.handles.sm, SM_APPLIED, encodeApplied(applied)));
    return { outcomes, applied, membership, changes: view.written };
  }

  /**
   * The batch holding the apply, with its key `changes`, is durable (and with it everything held
   * before it: a synced batch carries the held operations first).
   */
  rememberApplied(applied: AppliedState, membership: Membership, changes: KeyChanges): void {
    this.heldWritten();
    this.appliedState = applied;
    this.membershipState = membership;
    this.rememberChanges(changes);
  }

  /**
   * `applied` is reached without a write: its `changes` stay in memory until a synced batch carries
   * the operations NodeStorage holds for them (then `heldWritten` or `rememberApplied`). The
   * membership does not change (a Ready that changes it is never held).
   */
  holdApplied(applied: AppliedState, changes: KeyChanges): void {
    this.appliedState = applied;
    this.held ??= new Map();
    this.holdChanges(changes);
  }

  /**
   * Adds `changes` to what is held: those of a held Ready, or those of a batch that carries the held
   * ones, for the time it is written (NodeStorage.writeReady says why; `rememberApplied` follows).
   */
  holdChanges(changes: KeyChanges): void {
    if (this.held === null) return;
    for (const [key, stored] of changes) this.held.set(key, stored);
  }

  /**
   * A flush takes what is held: its changes stay readable (under what is held after it) until
   * `flushLanded`. One flush at a time.
   */
  beginFlush(extra?: KeyChanges): void {
    assert(this.flushing === null, 'beginFlush() while a flush is in flight');
    let flushing = this.held;
    this.held = null;
    // A Ready's own changes written with the held ones (not held: a membership change, or past the
    // bounds): readable from here on, as the batch's other keys are (NodeStorage.writeReady says why).
    if (extra !== undefined && extra.size > 0) {
      flushing ??= new Map();
      for (const [key, stored] of extra) flushing.set(key, stored);
    }
    this.flushing = flushing;
  }

  /** The flush begun last is durable: the cache may know its changes. */
  flushLanded(): void {
    const flushing = this.flushing;
    if (flushing === null) return;
    this.flushing = null;
    this.rememberChanges(flushing);
  }

  /** A synced batch carried the held changes: they are durable, and the cache may know them. */
  heldWritten(): void {
    assert(this.flushing === null, 'a batch carried the held changes while a flush is in flight');
    const held = this.held;
    if (held === null) return;
    this.held = null;
    this.rememberChanges(held);
  }

  private rememberChanges(changes: KeyChanges): void {
    for (const [key, stored] of changes) rememberStored(this.metaCache, key, stored);
  }

  /**
   * A ConfChange entry: the membership it leaves, unless the change no longer makes sense (a replayed
   * log; the core ignores it too), which changes nothing.
   */
  private applyMemberChange(entry: Entry, membership: Membership): ApplyOutcome {
    const change = decodeMemberChange(entry.data, `entry ${entry.index} (term ${entry.term})`);
    if (invalidMemberChange(change, membership) !== null) return { index: entry.index, term: entry.term, op: 'noop' };
    return { index: entry.index, term: entry.term, op: 'member', change };
  }

  /**
   * Records the metadata of staged pairs (written to a staging generation) in `cache`, the cache the
   * state machine takes at the install. Without it every key's first apply after an install reads
   * its metadata from the freshly written tables, 57-126 us a key: the first 496-entry applies of a
   * follower that caught up by a snapshot took 28-63 ms each (BENCHMARKS.md, profiling step 19).
   * Once installed the staged pairs are exactly the durable state, which is what the cache must
   * say (key-meta-cache.ts); a pair of a later chunk replaces one of an earlier chunk, as in LevelDB.
   */
  static rememberStaged(cache: KeyMetaCache, pairs: readonly (readonly [Uint8Array, Uint8Array])[]): void {
    for (const [key, stored] of pairs) {
      const name = byteKey(key);
      try {
        rememberStored(cache, name, stored);
      } catch {
        // Left to the read that needs it, which reports the corrupt value as any read of it does;
        // an earlier pair of the same key is no longer what LevelDB holds.
        cache.delete(name);
      }
    }
  }

  /** How many keys' metadata the cache holds. */
  get cachedKeyMetas(): number {
    return this.metaCache.size;
  }

  /** The generation a received snapshot is staged in. */
  stagingGeneration(): number {
    return this.generation + 1;
  }

  /**
   * The staging generation's sublevel, emptied durably: a received snapshot is written into it.
   * Waits for any clear of it still running (an earlier staging that was abandoned).
   */
  async openStaging(): Promise<{ generation: number; kv: ByteSublevel }> {
    const generation = this.stagingGeneration();
    await this.clears.get(generation);
    const kv = await openKv(this.handles.db, generation);
    await kv.clear();
    // Invariant: no key of an abandoned staging survives into an install, even after a power loss.
    // classic-level writes a clear's deletions unsynced, and the synced chunk writes that follow do
    // not make them durable: if a memtable switch put the deletions in an older LevelDB log file,
    // LevelDB closed that file without fsync, so the chunks and the install could survive a power
    // loss while some deletions did not. compactRange first flushes the memtable into a synced
    // table (LevelDB's CompactRange begins with a memtable compaction and waits for it), which
    // makes every write before it durable; over this generation's keys it also gives the space back.
    const [start, end] = prefixRange(kv);
    await this.handles.db.compactRange(start, end);
    return { generation, kv };
  }

  /** Adds the switch to `generation` (a staged snapshot at `applied`, with its membership) to `ops`. */
  addInstallOperations(
    generation: number,
    applied: AppliedState,
    membership: Membership,
    ops: ByteBatchOperation[],
  ): void {
    ops.push(putOp(this.handles.sm, SM_GENERATION, encodeGeneration(generation)));
    ops.push(putOp(this.handles.sm, SM_APPLIED, encodeApplied(applied)));
    ops.push(putOp(this.handles.sm, SM_MEMBERS, encodeMembership(membership)));
  }

  /**
   * The switch is durable: reads go to `kv` from now on, and the old generation goes once unread.
   * `records`: the installed state's idempotency records (loadRecords of `kv`); `metaCache`: what
   * rememberStaged learnt of its keys while they were staged (the old generation's cache is dropped).
   */
  rememberInstalled(
    generation: number,
    kv: ByteSublevel,
    applied: AppliedState,
    membership: Membership,
    records: IdempotencyIndex,
    metaCache: KeyMetaCache,
  ): void {
    const old = this.generation;
    this.generation = generation;
    this.current = kv;
    this.records = records;
    this.appliedState = applied;
    this.membershipState = membership;
    this.metaCache = metaCache;
    // Changes held over the old generation are of entries before the snapshot: it includes them.
    assert(this.flushing === null, 'a snapshot installed while a flush is in flight');
    this.held = null;
    this.retired.add(old);
    if (!this.readers.has(old)) this.clearGeneration(old);
  }

  /**
   * Clears a generation's sublevel in the background (an abandoned staging, or a retired state),
   * once `after` settles (a write into it still in flight, which must not land after the clear).
   */
  clearGeneration(generation: number, after: Promise<void> = Promise.resolve()): void {
    this.retired.delete(generation);
    const before = Promise.all([this.clears.get(generation), after]);
    const done = before
      .then(() => openKv(this.handles.db, generation))
      .then((kv) => kv.clear())
      .catch((error: unknown) => this.onBackgroundError(error))
      .finally(() => {
        if (this.clears.get(generation) === done) this.clears.delete(generation);
      });
    this.clears.set(generation, done);
  }

  /**
   * Finds, in the background, every generation below `opened` (the generation open found current)
   * that still holds keys, and clears it. In the background because the search steps over the
   * deletion markers of generations cleared but not yet compacted (117 ms over 400,000 in a
   * review's measurement) and a node's start need not wait for it. Nothing can race these clears:
   * a staging writes the generation after the current one, installs only move forward, and no
   * read begun after open uses a generation below the one open found.
   */
  private sweepRetired(opened: number): void {
    this.sweep = storedGenerations(this.handles.db)
      .then((found) => {
        for (const stale of found) if (stale < opened) this.clearGeneration(stale);
      })
      .catch((error: unknown) => this.onBackgroundError(error));
  }

  /** Background clears still running (a closing store waits for them). */
  async settle(): Promise<void> {
    await this.sweep;
    await Promise.all([...this.clears.values()]);
  }

  /** The value of `key` in the applied state, or undefined. */
  getSync(key: Uint8Array): Uint8Array | undefined {
    return this.getEntrySync(key)?.value;
  }

  /** The value and metadata of `key` in the applied state, or undefined. */
  getEntrySync(key: Uint8Array): StoredValue | undefined {
    if (this.held !== null || this.flushing !== null) {
      const held = heldChange(byteKey(key), this.held, this.flushing);
      if (held !== undefined) return held === null ? undefined : decodeStored(held);
    }
    const stored = this.current.getSync(key);
    return stored === undefined ? undefined : decodeStored(plainBytes(stored));
  }

  /**
   * One page of the durable state in key order; continue with `start: page.nextStart`. The caller
   * flushes what is held first (NodeStorage.scan).
   */
  async scan(options: ScanOptions): Promise<ScanPage> {
    const read = this.beginRead();
    try {
      return await scanKv(read.kv, options);
    } finally {
      read.end();
    }
  }

  /** Adds the state-machine change of `entry` to the batch (through `view`) and says what it was. */
  private applyOperation(entry: Entry, view: BatchView): ApplyOutcome {
    const base = { index: entry.index, term: entry.term };
    if (entry.type !== EntryType.Normal) {
      throw new CorruptDataError(
        `entry ${entry.index} (term ${entry.term}) has type ${entry.type}, which this build cannot apply`,
      );
    }
    if (entry.data.length === 0) return { ...base, op: 'noop' }; // a new leader's empty entry
    let command: Command;
    try {
      command = decodeCommand(entry.data);
    } catch (error) {
      throw new CorruptDataError(
        `entry ${entry.index} (term ${entry.term}) holds no valid command: ${describeError(error)}`,
        {
          cause: error,
        },
      );
    }
    if (command.op === 'barrier') return { ...base, op: 'noop' };
    if (command.op === 'request') {
      return { ...base, op: 'request', answer: applyRequest(view, this.records, command, entry.index, entry.term) };
    }
    applyPlain(view, command, entry.index);
    return { ...base, op: command.op };
  }
}

/**
 * A key's change not yet in LevelDB: held, else written by the flush in flight; stored bytes, null
 * (deleted) or undefined (neither has it). A null is a delete, not an absence.
 */
function heldChange(
  name: string,
  held: ReadonlyMap<string, Uint8Array | null> | null,
  flushing: ReadonlyMap<string, Uint8Array | null> | null,
): Uint8Array | null | undefined {
  const change = held?.get(name);
  return change !== undefined ? change : flushing?.get(name);
}

/**
 * Records in `cache` what LevelDB now holds for `key` (a byteKey): its stored value's metadata, or
 * nothing when it was deleted (null). Throws when the stored value's metadata does not decode.
 */
function rememberStored(cache: KeyMetaCache, key: string, stored: Uint8Array | null): void {
  // Internal records are not key-meta formatted, and never read through getMeta.
  if (key.charCodeAt(0) === INTERNAL_PREFIX) return;
  if (stored === null) cache.delete(key);
  else cache.set(key, decodeMeta(stored));
}

/**
 * The state as the batch being prepared leaves it: LevelDB's state (not changed until the batch is
 * written; writeReady allows one write in flight) under the changes held from earlier Readies, under
 * the batch's own writes, so each entry sees every entry before it. Writes become operations of the
 * batch.
 */
class BatchView implements KvView {
  readonly written: Map<string, Uint8Array | null> = new Map();

  constructor(
    private readonly kv: ByteSublevel,
    private readonly ops: ByteBatchOperation[],
    private readonly metaCache: KeyMetaCache,
    private readonly held: ReadonlyMap<string, Uint8Array | null> | null,
    private readonly flushing: ReadonlyMap<string, Uint8Array | null> | null,
  ) {}

  get(key: Uint8Array): Uint8Array | undefined {
    const name = byteKey(key);
    const written = this.changed(name);
    if (written !== undefined) return written ?? undefined;
    const stored = this.kv.getSync(key);
    return stored === undefined ? undefined : plainBytes(stored);
  }

  getMeta(key: Uint8Array): KeyMeta | undefined {
    const name = byteKey(key);
    const written = this.changed(name);
    if (written !== undefined) return metaOfStored(written);
    const cached = this.metaCache.get(name);
    if (cached !== undefined) return cached;
    const stored = this.kv.getSync(key);
    if (stored === undefined) return undefined;
    const meta = decodeMeta(stored);
    // LevelDB's state is the durable one (this batch is not written yet, and a held key never gets
    // here): safe to remember now.
    this.metaCache.set(name, meta);
    return meta;
  }

  /**
   * The key's change in this batch, else its held change, else the change a flush in flight
   * writes: stored bytes, null (deleted) or undefined.
   */
  private changed(name: string): Uint8Array | null | undefined {
    const written = this.written.get(name);
    return written !== undefined ? written : heldChange(name, this.held, this.flushing);
  }

  put(key: Uint8Array, stored: Uint8Array): void {
    this.written.set(byteKey(key), stored);
    this.ops.push(putOp(this.kv, key, stored));
  }

  delete(key: Uint8Array): void {
    this.written.set(byteKey(key), null);
    this.ops.push(delOp(this.kv, key));
  }
}
