// One simulated node: the Raft core plus a model of the real driver. A Ready's persist takes a few
// steps (the fsync); a crash loses the core, the Ready being persisted and everything in memory,
// and the node restarts from exactly what reached its disk. Client commands are the real ones
// (src/storage/command.ts), applied by the real apply code (state-machine.ts).
import type { RaftConfig, RaftCore } from '../../../src/raft/core.js';
import { changedConf, invalidChange } from '../../../src/raft/membership.js';
import { SeededRandom } from '../../../src/raft/prng.js';
import { MemoryStorage } from '../../../src/raft/storage.js';
import { applyRequest, type RequestAnswer } from '../../../src/storage/apply-request.js';
import { encodeCommand, type Command } from '../../../src/storage/command.js';
import { IdempotencyIndex, type EvictionBounds } from '../../../src/storage/idempotency.js';
import type { StoredValue } from '../../../src/storage/key-meta.js';
import { BufferedView } from '../../../src/storage/kv-view.js';
import type { Request, RequestCommand } from '../../../src/storage/request.js';
import {
  EntryType,
  type ConfChange,
  type ConfState,
  type Entry,
  type Message,
  type NodeId,
  type Ready,
  type SnapshotMeta,
} from '../../../src/raft/types.js';
import { ColdStorageView, type ColdLogParams } from './cold-storage.js';
import type { SafetyChecker } from './invariants.js';
import { SimStateMachine, type SimSnapshotState } from './state-machine.js';

export type CoreFactory = (config: RaftConfig) => RaftCore;

export type { Command } from '../../../src/storage/command.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Deliberate mistakes of the simulated driver (planted-bugs.ts), to prove the checks catch them. */
export interface DriverBugs {
  /**
   * The snapshot sender labels the state it sends with the index the core asked for, though the
   * state machine may have applied more since (the real sender reads the index from the same LevelDB
   * snapshot as the state).
   */
  readonly snapshotLabelBehind?: boolean;
  /**
   * The leader evaluates a conditional write's condition (or a transaction's compares) against its
   * applied state when it proposes, answers a failure at once, and otherwise proposes the write
   * without its condition: the real driver leaves the condition in the entry, for apply time.
   */
  readonly conditionAtPropose?: boolean;
  /**
   * Snapshots carry the user keys only, not the idempotency records (as a snapshot built from a
   * scan of the user keys would): a node that installs one forgets which requests it applied.
   */
  readonly snapshotWithoutRecords?: boolean;
  /**
   * A receiver stages a new snapshot over one the core took and has not installed yet (the first
   * simulation driver did: the in-flight Ready then installed a state it was not about).
   */
  readonly restagesOverPendingSnapshot?: boolean;
}

/** What became of a proposal: the answer of its entry, or null when its entry was overwritten. */
export interface ProposalOutcome {
  readonly index: number;
  readonly term: number;
  /** A request command's answer (apply-request.ts); null for a plain put or delete. */
  readonly answer: RequestAnswer | null;
}

/** What the driver tells the simulation about client requests waiting on this node. */
export interface NodeListener {
  /**
   * The entry a proposal waited for was applied: its outcome if it is that proposal's entry, null if
   * another entry took its index (ours was overwritten and can never be applied anywhere).
   */
  proposalResolved(op: number, outcome: ProposalOutcome | null): void;
  /** A read was confirmed and served from this node's state machine: the key's value and metadata, or null. */
  readServed(op: number, read: StoredValue | null): void;
  readFailed(op: number): void;
}

/** What `propose` did; null from `propose` means the node is down. */
export type ProposeResult =
  | { readonly kind: 'proposed'; readonly index: number; readonly term: number }
  /** Refused by the core (not the leader, a transfer, too much uncommitted): definitely not applied. */
  | { readonly kind: 'refused' }
  /** Answered without an entry (only the planted bug conditionAtPropose does this). */
  | { readonly kind: 'answered'; readonly answer: RequestAnswer };

interface Disk {
  readonly storage: MemoryStorage;
  applied: number;
  readonly kv: SimStateMachine;
  /** The configuration at the applied index (the real driver stores it with the state machine). */
  conf: ConfState;
}

/** The simulation's encoding of a membership change in a ConfChange entry. */
export function encodeConfChange(change: ConfChange): Uint8Array {
  return encoder.encode(JSON.stringify(change));
}

export interface NodeParams {
  readonly id: NodeId;
  /** The configuration it starts with: the cluster's voters, or nothing for a spare that may join later. */
  readonly conf: ConfState;
  readonly seed: number;
  readonly electionTicks: number;
  readonly maxMsgBytes: number;
  readonly maxInflightMsgs: number;
  readonly maxInflightBytes: number;
  /** 0: the core's default. */
  readonly maxApplyBytes: number;
  readonly coldLog: ColdLogParams;
  /**
   * Log compaction, as the real driver does it: about every `every` applied entries (0: never) the
   * log is compacted to `keep` entries before the applied index, at a point drawn at random.
   */
  readonly compaction: { readonly every: number; readonly keep: number };
  readonly persistDelayMax: number;
  readonly factory: CoreFactory;
  /** The idempotency records' eviction bounds (in steps for the TTL: `at` is the step a write was proposed). */
  readonly eviction: EvictionBounds;
  readonly driverBugs: DriverBugs;
}

export class SimNode {
  readonly id: NodeId;
  /** Survives crashes: the log and hard state, and the state machine with its applied index. */
  private readonly disk: Disk;
  core: RaftCore | null = null;
  /** What this incarnation's core reads its log through (cold entries load in the background). */
  private storageView: ColdStorageView | null = null;
  private now = 0;
  private inFlight: { ready: Ready; doneAt: number } | null = null;
  /** Proposals waiting for their index to be applied. */
  private proposals = new Map<number, { op: number; term: number }[]>();
  /** Reads waiting for their ReadIndex answer, then for applied >= index. */
  private readsByCtx = new Map<number, { op: number; key: Uint8Array }>();
  private readsWaitingApply: { op: number; key: Uint8Array; index: number }[] = [];
  /**
   * A reader that behaves like the real driver's ReadBatcher: one ReadIndex request in flight,
   * the next sent only when it is answered or failed. If a lost request or answer is never failed
   * by the core, this reader is stuck for good and the liveness check catches it (chaos seed 113).
   */
  private batchedRead: { ctx: number; index: number | null } | null = null;
  /** Reads of the batched reader served so far. */
  batchedReadsServed = 0;
  private incarnation = 0;
  crashes = 0;
  /** A snapshot received from a leader, staged until the Ready that installs it (lost in a crash). */
  private staged: { meta: SnapshotMeta; kv: SimSnapshotState } | null = null;
  /** Applied index at which the log is compacted next. */
  private compactAt = 0;
  snapshotsInstalled = 0;
  /** Retries answered by replay here from a record this node received in a snapshot (dedup across a snapshot). */
  replaysFromSnapshot = 0;

  constructor(
    private readonly params: NodeParams,
    private readonly random: SeededRandom,
    private readonly checker: SafetyChecker,
    private readonly listener: NodeListener,
  ) {
    this.id = params.id;
    this.disk = {
      storage: new MemoryStorage(params.conf.voters),
      applied: 0,
      kv: new SimStateMachine(params.eviction),
      conf: params.conf,
    };
    this.start();
  }

  get up(): boolean {
    return this.core !== null;
  }

  /** Whether a Ready that records a vote (a candidate's or a voter's) is being persisted right now. */
  get persistingVote(): boolean {
    const hs = this.inFlight?.ready.hardState;
    const before = this.disk.storage.initialHardState();
    return hs !== undefined && hs !== null && hs.vote !== '' && (hs.term !== before.term || hs.vote !== before.vote);
  }

  get applied(): number {
    return this.disk.applied;
  }

  /** Which incarnation is running: a transfer from an earlier one is reported to nobody. */
  get generation(): number {
    return this.incarnation;
  }

  /**
   * The state machine as it is now, for a snapshot this node sends, labelled with the index and term
   * it is at: like the real sender, which reads both from one LevelDB snapshot. (The core asked with
   * its applied index, a lower bound: a Ready applying more may have finished since.)
   */
  snapshotState(): { meta: SnapshotMeta; kv: SimSnapshotState } {
    const index = this.disk.applied;
    const term = index === 0 ? 0 : this.disk.storage.term(index);
    return {
      meta: { index, term, voters: this.disk.conf.voters, learners: this.disk.conf.learners },
      kv: this.disk.kv.snapshot(this.params.driverBugs.snapshotWithoutRecords === true),
    };
  }

  /** The configuration at this node's applied index. */
  get conf(): ConfState {
    return this.disk.conf;
  }

  /** Proposes a membership change (a leader only); what the core answered, or null when down. */
  proposeConfChange(change: ConfChange): ReturnType<RaftCore['proposeConfChange']> | null {
    return this.core === null ? null : this.core.proposeConfChange(change, encodeConfChange(change));
  }

  /**
   * A snapshot transfer from `from` (leader of `term`) arrived complete: stage its state and let the
   * core decide, as the real receiver does. True when the core takes it.
   */
  receiveSnapshot(
    from: NodeId,
    term: number,
    meta: SnapshotMeta,
    kv: SimSnapshotState,
    restageOverPending = false,
  ): boolean {
    if (this.core === null) return false;
    // As NodeStorage.beginStaging: a snapshot the core took waits for its Ready to install it, and
    // a newer transfer is refused meanwhile (the sender reports failure; the leader retries later).
    // Overwriting it here made the in-flight Ready install a state it was not about (seeds 181832
    // path 365, 122103 path 2469).
    if (this.staged !== null && !restageOverPending) return false;
    this.staged = { meta, kv };
    this.core.step({ type: 'snap', from, to: this.id, term, snapshot: meta });
    const pending = this.core.pendingSnapshot();
    const taken = pending !== null && pending.index === meta.index && pending.term === meta.term;
    if (!taken) this.staged = null;
    return taken;
  }

  crash(): void {
    if (this.core === null) return;
    // Everything not on disk is gone: the core, the Ready being persisted, waiting requests.
    this.core = null;
    this.storageView = null;
    this.staged = null;
    this.inFlight = null;
    this.proposals = new Map();
    this.readsByCtx = new Map();
    this.readsWaitingApply = [];
    this.batchedRead = null;
    this.crashes++;
  }

  start(): void {
    if (this.core !== null) return;
    this.incarnation++;
    // What the real node does when it opens its data dir: the index of records from the records.
    this.disk.kv.reopen();
    this.storageView = new ColdStorageView(this.disk.storage, this.params.coldLog, () => this.now);
    this.core = this.params.factory({
      id: this.id,
      voters: this.disk.conf.voters,
      learners: this.disk.conf.learners,
      storage: this.storageView,
      random: new SeededRandom(this.params.seed * 7919 + this.incarnation),
      electionTicks: this.params.electionTicks,
      heartbeatTicks: 1,
      applied: this.disk.applied,
      maxMsgBytes: this.params.maxMsgBytes,
      maxInflightMsgs: this.params.maxInflightMsgs,
      maxInflightBytes: this.params.maxInflightBytes,
      ...(this.params.maxApplyBytes === 0 ? {} : { maxApplyBytes: this.params.maxApplyBytes }),
      maxUncommittedBytes: 64 * 1024,
      maxPendingReads: 256,
    });
    this.checker.onRestart(this.id, this.disk.storage.initialHardState().commit);
  }

  /** Proposes a client command (`op`: the client operation waiting for it; -1 for none). */
  /** Proposes a command, or an entry's bytes as they are (the plain workload's, legacy-command.ts). */
  propose(op: number, command: Command | Uint8Array): ProposeResult | null {
    if (this.core === null) return null;
    let proposed = command;
    if (
      this.params.driverBugs.conditionAtPropose === true &&
      !(command instanceof Uint8Array) &&
      command.op === 'request'
    ) {
      const decided = this.decideAtPropose(this.core, command);
      if ('answer' in decided) return { kind: 'answered', answer: decided.answer };
      proposed = decided.command;
    }
    const result = this.core.propose([proposed instanceof Uint8Array ? proposed : encodeCommand(proposed)]);
    if (!result.ok) return { kind: 'refused' };
    const waiting = this.proposals.get(result.index) ?? [];
    waiting.push({ op, term: result.term });
    this.proposals.set(result.index, waiting);
    return { kind: 'proposed', index: result.index, term: result.term };
  }

  /**
   * The planted bug conditionAtPropose: the request runs now against the applied state (on a scratch
   * view, through the real apply code, ignoring its idempotency key); a failed condition is the
   * answer, and a condition that held is dropped from the entry.
   */
  private decideAtPropose(
    core: RaftCore,
    command: RequestCommand,
  ): { readonly answer: RequestAnswer } | { readonly command: Command } {
    const scratch = new BufferedView(this.disk.kv);
    const now = { op: 'request' as const, request: command.request };
    const answer = applyRequest(scratch, new IdempotencyIndex(), now, this.disk.applied + 1, core.status().term);
    if (answer.kind !== 'applied') return { command };
    const result = answer.result;
    if (result.kind === 'failed' || (result.kind === 'txn' && !result.succeeded)) return { answer };
    return { command: { ...command, request: withoutCondition(command.request) } };
  }

  read(op: number, ctx: number, key: Uint8Array): boolean {
    if (this.core === null) return false;
    const result = this.core.readIndex(ctx);
    if (result.ok) this.readsByCtx.set(ctx, { op, key });
    return result.ok;
  }

  /** For failure reports: what the batched reader waits for. */
  describeBatchedRead(): string {
    const b = this.batchedRead;
    if (b === null) return `${this.id} reader idle`;
    return b.index === null
      ? `${this.id} reader waits for ctx ${b.ctx}`
      : `${this.id} reader waits for applied >= ${b.index} (at ${this.disk.applied})`;
  }

  /** Sends the batched reader's next request if none is in flight; `ctx` is unique per call. */
  driveBatchedRead(ctx: () => number): void {
    if (this.core === null || this.batchedRead !== null || !this.random.chance(0.05)) return;
    const id = ctx();
    if (this.core.readIndex(id).ok) this.batchedRead = { ctx: id, index: null };
  }

  /** Runs the driver loop for this step: finish a due persist, take a new Ready. */
  drive(now: number, send: (m: Message) => void): void {
    this.now = now;
    if (this.core !== null && this.storageView?.takeLoaded() === true) this.core.entriesLoaded();
    for (let guard = 0; guard < 8 && this.core !== null; guard++) {
      if (this.inFlight !== null) {
        if (this.inFlight.doneAt > now) return;
        this.finishPersist(this.core, this.inFlight.ready, send);
        continue;
      }
      if (!this.core.hasReady()) return;
      const rd = this.core.ready();
      this.checkReady(this.core, rd);
      for (const m of rd.messages) send(m);
      const delay = this.params.persistDelayMax === 0 ? 0 : this.random.int(this.params.persistDelayMax + 1);
      this.inFlight = { ready: rd, doneAt: now + delay };
    }
  }

  private checkReady(core: RaftCore, rd: Ready): void {
    const logTerm = (i: number): number | undefined => core.logTerm(i);
    const firstIndex = core.status().firstIndex;
    if (rd.softState?.role === 'leader') this.checker.onLeader(this.id, rd.softState.term, logTerm, firstIndex);
    const first = rd.entries[0];
    if (first !== undefined) {
      const prevTerm = first.index === 1 ? 0 : (core.logTerm(first.index - 1) ?? 0);
      this.checker.onAppend(this.id, rd.entries, prevTerm);
    }
    if (rd.hardState !== null)
      this.checker.onCommit(this.id, rd.hardState.commit, rd.hardState.term, logTerm, firstIndex);
  }

  private finishPersist(core: RaftCore, rd: Ready, send: (m: Message) => void): void {
    if (rd.snapshot !== null) this.install(rd.snapshot);
    if (rd.hardState !== null) {
      this.checker.onPersist(this.id, rd.hardState);
      this.disk.storage.setHardState(rd.hardState);
    }
    this.disk.storage.append(rd.entries);
    for (const m of rd.persistedMessages) send(m);
    for (const entry of rd.committedEntries) this.apply(entry);
    for (const rs of rd.readStates) {
      const read = this.readsByCtx.get(rs.ctx);
      if (read === undefined) continue;
      this.readsByCtx.delete(rs.ctx);
      this.readsWaitingApply.push({ ...read, index: rs.index });
    }
    const batched = this.batchedRead;
    if (batched !== null) {
      const answer = rd.readStates.find((rs) => rs.ctx === batched.ctx);
      if (answer !== undefined) batched.index = answer.index;
      if (rd.failedReads.includes(batched.ctx)) this.batchedRead = null;
    }
    for (const ctx of rd.failedReads) {
      const read = this.readsByCtx.get(ctx);
      if (read === undefined) continue;
      this.readsByCtx.delete(ctx);
      this.listener.readFailed(read.op);
    }
    core.advance(rd);
    // Only a Ready that applied something or installed a snapshot can change either configuration.
    if ((rd.committedEntries.length > 0 || rd.snapshot !== null) && core.pendingSnapshot() === null) {
      const status = core.status();
      if (status.applied === this.disk.applied)
        this.checker.onCoreConf(this.id, status.applied, status, this.disk.conf);
    }
    this.inFlight = null;
    this.maybeCompact();
    this.serveReads();
  }

  /** The Ready's snapshot, with the state staged when it arrived: atomic, like the real switch. */
  private install(meta: SnapshotMeta): void {
    const staged = this.staged;
    if (staged === null || staged.meta.index !== meta.index || staged.meta.term !== meta.term) {
      throw new Error(
        `${this.id} installs snapshot ${meta.index}/${meta.term} but staged ${staged === null ? 'none' : `${staged.meta.index}/${staged.meta.term}`}`,
      );
    }
    this.staged = null;
    this.disk.storage.applySnapshot(meta);
    this.disk.kv.install(staged.kv);
    this.disk.applied = meta.index;
    this.disk.conf = { voters: meta.voters.slice(), learners: (meta.learners ?? []).slice() };
    this.snapshotsInstalled++;
    this.checker.onState(this.id, meta.index, digest(this.disk.kv, this.disk.conf));
  }

  /** Compacts the log now and then, at a point drawn at random (never beyond the applied index). */
  private maybeCompact(): void {
    const { every, keep } = this.params.compaction;
    if (every === 0 || this.disk.applied < this.compactAt) return;
    const index = Math.max(this.disk.storage.firstIndex() - 1, this.disk.applied - keep);
    this.disk.storage.compact(Math.min(index, this.disk.applied));
    this.compactAt = this.disk.applied + every + this.random.int(every);
  }

  private apply(entry: Entry): void {
    if (entry.index !== this.disk.applied + 1) {
      throw new Error(`${this.id} applies ${entry.index} after ${this.disk.applied}`);
    }
    this.checker.onApply(this.id, entry);
    if (entry.type === EntryType.ConfChange) {
      // Applied like any entry; then the core hears of it, as the real driver does.
      // The state machine's configuration follows its own log, as the real storage's members do; the
      // core's may be ahead of it (a snapshot it took while this Ready was being written).
      const before = this.disk.conf;
      const change = JSON.parse(decoder.decode(entry.data)) as ConfChange;
      this.disk.conf = invalidChange(change, before) === null ? changedConf(before, change) : before;
      this.core?.applyConfChange(change, entry.index);
      this.checker.onConfChange(this.id, entry.index, before, this.disk.conf);
    }
    // A new leader's empty entry carries no command.
    const applied =
      entry.type === EntryType.ConfChange || entry.data.length === 0
        ? null
        : this.disk.kv.apply(entry.data, entry.index, entry.term);
    if (applied?.replayedFromSnapshot === true) this.replaysFromSnapshot++;
    this.disk.applied = entry.index;
    this.checker.onState(this.id, entry.index, digest(this.disk.kv, this.disk.conf));
    const waiting = this.proposals.get(entry.index);
    if (waiting !== undefined) {
      this.proposals.delete(entry.index);
      // The entry applied at this index is ours only if its term matches; otherwise ours was
      // overwritten and can never be applied anywhere.
      const outcome = { index: entry.index, term: entry.term, answer: applied?.answer ?? null };
      for (const w of waiting) this.listener.proposalResolved(w.op, w.term === entry.term ? outcome : null);
    }
  }

  private serveReads(): void {
    const batched = this.batchedRead;
    if (batched !== null && batched.index !== null && batched.index <= this.disk.applied) {
      this.batchedRead = null;
      this.batchedReadsServed++;
    }
    if (this.readsWaitingApply.length === 0) return;
    const still: typeof this.readsWaitingApply = [];
    for (const read of this.readsWaitingApply) {
      if (read.index <= this.disk.applied) this.listener.readServed(read.op, this.disk.kv.read(read.key) ?? null);
      else still.push(read);
    }
    this.readsWaitingApply = still;
  }

  /** For the liveness check: whether `index` of `term` has been applied here (or is covered by a snapshot). */
  hasApplied(index: number, term: number): boolean {
    if (this.disk.applied < index) return false;
    return index < this.disk.storage.firstIndex() - 1 || this.disk.storage.term(index) === term;
  }
}

/**
 * The state machine's content in one string, the configuration included: two nodes with the same
 * state have the same digest.
 */
function digest(kv: SimStateMachine, conf: ConfState): string {
  let confDigest = confDigests.get(conf);
  if (confDigest === undefined) {
    confDigest = `|voters=${conf.voters.join(',')}|learners=${conf.learners.join(',')}`;
    confDigests.set(conf, confDigest);
  }
  return kv.digest() + confDigest;
}

/** The configuration's part of the digest, per configuration object (a change replaces the object). */
const confDigests = new WeakMap<ConfState, string>();

/** The request as it would be without its condition (conditionAtPropose): the write alone. */
function withoutCondition(request: Request): Request {
  switch (request.kind) {
    case 'put':
      return { kind: 'put', key: request.key, value: request.value };
    case 'delete':
      return { kind: 'delete', key: request.key };
    case 'txn':
      return { kind: 'txn', compare: [], success: request.success, failure: [] };
  }
}
