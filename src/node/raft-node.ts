// The driver: the only place where the pure Raft core meets time, disk and network.
//
//   tick timer ─┐            ┌─> messages (leader appends may race the fsync: thesis 10.2.1)
//   peers ──────┼─> core ──> Ready ─> write (hard state, entries, applied changes: one sync batch)
//   clients ────┘                     ─> persistedMessages ─> settle waiters ─> advance
//
// Invariants:
//  - one Ready at a time: the loop takes the next only after `advance` of the previous one;
//  - no message that depends on persisted state leaves before the write with `sync: true` returned;
//  - a write is answered only after its entry was applied here with the term it was proposed in
//    (so committed by a majority, durable, and applied); a different term at its index means it
//    was overwritten, which is a definite failure, never a false success;
//  - a storage error stops the loop for good and is reported as fatal: the node never goes on with
//    a disk in an unknown state;
//  - so does any error thrown by the core (a broken invariant, wherever it surfaces: a peer's
//    message, a tick, a proposal): the core may be half-way through a step, and must not go on.

import { randomInt } from 'node:crypto';
import type { Logger } from 'pino';
import { RaftCore, type RaftStatus } from '../raft/core.js';
import type { Random } from '../raft/prng.js';
import type { Storage } from '../raft/storage.js';
import type { ApplyOutcome } from '../storage/node-storage.js';
import type { Entry, HardState, Message, NodeId, Ready, SnapshotMeta, SoftState } from '../raft/types.js';
import { AppliedWaiters, WriteWaiters, type WriteResult } from './apply-waiters.js';
import {
  LeaderTransferError,
  MembershipChangeError,
  NotLeaderError,
  RemovedError,
  OverloadedError,
  ReadTimeoutError,
  StoppedError,
  WriteUnknownError,
} from './errors.js';
import type { NodeMetrics } from './metrics.js';
import { HeldReplies } from './held-replies.js';
import { ReadBatcher } from './read-batcher.js';
import type { UnsafeModes } from './unsafe.js';
import {
  confChangeOf,
  confStateOf,
  encodeMemberChange,
  invalidMemberChange,
  type MemberChange,
  type Membership,
} from '../storage/members.js';

/** The durable storage the driver needs (NodeStorage in production). */
export interface NodeStore extends Storage {
  readonly applied: { readonly index: number; readonly term: number };
  /** One Ready in one batch: hard state, entries and the committed entries' state-machine changes. */
  writeReady(
    hardState: HardState | null,
    entries: readonly Entry[],
    committed: readonly Entry[],
    snapshot: SnapshotMeta | null,
  ): Promise<{ synced: boolean; outcomes: readonly ApplyOutcome[] }>;
  /** Records a snapshot point at the applied index and compacts the log up to `compactIndex`. */
  compactLog?(compactIndex: number): Promise<void>;
  /** The membership at the applied index; absent: the fixed `voters` of the options. */
  readonly membership?: Membership;
  /** The latest snapshot point (index 0: none). */
  latestSnapshot?(): SnapshotMeta;
  /** Records durably that a peer said this node was removed (its data dir then refuses to start). */
  markRemoved?(by: NodeId): Promise<void>;
  /** Where `entriesToSend` reports its background loads (storage that has it). */
  setLoadListener?(listener: { loaded(): void; failed(error: Error): void }): void;
  /**
   * Storage that holds a Ready that only applies (NodeStorage.writeReady): a number that changes
   * with each Ready held, null when nothing is held.
   */
  readonly heldStamp?: number | null;
  /** Writes what is held, synced. */
  flushHeld?(): Promise<void>;
}

/** Where outgoing messages go (PeerTransport in production). */
export interface Outbox {
  send(messages: readonly Message[]): void;
}

export interface RaftNodeOptions {
  readonly id: NodeId;
  /** The voters when the store keeps no membership (tests with a bare store). */
  readonly voters: readonly NodeId[];
  readonly store: NodeStore;
  readonly outbox: Outbox;
  readonly tickMs: number;
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly writeTimeoutMs: number;
  readonly readTimeoutMs: number;
  readonly logger: Logger;
  readonly metrics?: NodeMetrics;
  /** Called once if the node hits an error it must not continue after (storage I/O). */
  readonly onFatal: (error: Error) => void;
  /** Writes accepted but not yet proposed, at most (beyond: 503). */
  readonly maxQueuedWrites?: number;
  readonly maxQueuedWriteBytes?: number;
  readonly maxMsgBytes?: number;
  readonly maxInflightMsgs?: number;
  readonly maxInflightBytes?: number;
  readonly maxUncommittedBytes?: number;
  readonly random?: Random;
  /** Deliberate bugs for chaos-runner tests (see unsafe.ts); never set in production. */
  readonly unsafe?: UnsafeModes;
  /**
   * Log compaction: every `everyEntries` applied entries a snapshot point is recorded and the log is
   * compacted to `keepEntries` before it (so a briefly lagging follower still catches up from the log).
   */
  readonly compaction?: { readonly everyEntries: number; readonly keepEntries: number };
  /** The core asks for a snapshot to be sent to `to` (leader of `term`): the driver's sender streams it. */
  readonly onSnapshotRequested?: (to: NodeId, term: number) => void;
  /** Leadership ended or moved to another term: snapshot transfers of the old leadership must stop. */
  readonly onLeadershipEnded?: () => void;
  /** The membership changed (a ConfChange applied, or a snapshot installed): peers and routes follow it. */
  readonly onMembershipChanged?: (membership: Membership) => void;
}

interface QueuedWrite {
  readonly data: Uint8Array;
  readonly resolve: (result: WriteResult) => void;
  readonly reject: (error: Error) => void;
  readonly deadline: number;
}

const cryptoRandom: Random = { int: (n) => randomInt(n) };
/** receive()'s answer when there is nothing to reply: one shared empty list, not one per batch. */
const NO_MESSAGES: readonly Message[] = Object.freeze([]);

export class RaftNode {
  readonly id: NodeId;
  readonly core: RaftCore;
  private readonly store: NodeStore;
  private readonly outbox: Outbox;
  private readonly logger: Logger;
  private readonly metrics: NodeMetrics | undefined;
  private readonly options: RaftNodeOptions;

  private readonly writes = new WriteWaiters();
  private readonly appliedWaiters = new AppliedWaiters();
  private readonly reads: ReadBatcher;
  private queuedWrites: QueuedWrite[] = [];
  private queuedWriteBytes = 0;

  private ticker: NodeJS.Timeout | null = null;
  /** The store's heldStamp at the last tick (flushIdleHeld). */
  private heldStampAtTick: number | null = null;
  private loopRunning = false;
  private loopDone: Promise<void> = Promise.resolve();
  private kickScheduled = false;
  private stopped = false;
  private fatal: Error | null = null;
  private soft: SoftState;
  private lastHeardLeaderAt = 0;
  /** This node applied its own removal: it serves nothing and takes no further part. */
  private removed = false;
  /** The snapshot point last recorded: the next compaction is due `compaction.everyEntries` after it. */
  private lastSnapshotIndex: number;
  /** Readys taken so far: a held answer is due at the first one taken after its batch was stepped. */
  private readiesTaken = 0;
  private readonly heldReplies = new HeldReplies();

  constructor(options: RaftNodeOptions) {
    this.options = options;
    this.id = options.id;
    this.store = options.store;
    this.outbox = options.outbox;
    this.logger = options.logger;
    this.metrics = options.metrics;
    const conf =
      options.store.membership === undefined
        ? { voters: options.voters, learners: [] }
        : confStateOf(options.store.membership);
    this.core = new RaftCore({
      id: options.id,
      voters: conf.voters,
      learners: conf.learners,
      storage: options.store,
      random: options.random ?? cryptoRandom,
      electionTicks: options.electionTicks,
      heartbeatTicks: options.heartbeatTicks,
      applied: options.store.applied.index,
      ...(options.maxMsgBytes === undefined ? {} : { maxMsgBytes: options.maxMsgBytes }),
      ...(options.maxInflightMsgs === undefined ? {} : { maxInflightMsgs: options.maxInflightMsgs }),
      ...(options.maxInflightBytes === undefined ? {} : { maxInflightBytes: options.maxInflightBytes }),
      ...(options.maxUncommittedBytes === undefined ? {} : { maxUncommittedBytes: options.maxUncommittedBytes }),
    });
    this.soft = this.core.softState();
    this.lastSnapshotIndex = options.store.latestSnapshot?.().index ?? 0;
    options.store.setLoadListener?.({
      loaded: () => this.withCore(() => this.core.entriesLoaded()),
      failed: (error) => this.onFatalError(error),
    });
    this.reads = new ReadBatcher(
      (ctx) => this.core.readIndex(ctx),
      (reads) => {
        this.metrics?.readBatches.inc();
        this.metrics?.readsBatched.inc(reads);
      },
    );
  }

  start(): void {
    if (this.ticker !== null || this.stopped) return;
    this.ticker = setInterval(() => this.onTick(), this.options.tickMs);
    this.logger.info({ term: this.soft.term, applied: this.store.applied.index }, 'raft node started');
    this.kick();
  }

  /** Stops ticking and waits for the loop to finish its Ready; pending requests fail. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.ticker !== null) clearInterval(this.ticker);
    this.ticker = null;
    await this.waitForLoop();
    this.failEverything(new StoppedError(), 'the node stopped');
  }

  /**
   * Messages from a peer (already authenticated and validated by the transport). With `replyTo`,
   * returns the heartbeat acknowledgements for that peer, for the transport to carry in its answer
   * (RaftCore.takeHeartbeatReplies); everything else leaves with the next Ready as usual. With
   * `holdForAppends` too, and appends among the messages, returns a promise instead: it resolves
   * once the next Ready (the one that persists those appends) is on disk, with the heartbeat
   * acknowledgements and that Ready's acknowledgements to `replyTo` (held-replies.ts).
   */
  receive(
    messages: readonly Message[],
    replyTo?: NodeId,
    holdForAppends = false,
  ): readonly Message[] | Promise<readonly Message[]> {
    return (
      this.withCore(() => {
        let appends = false;
        for (const m of messages) {
          if ((m.type === 'app' || m.type === 'heartbeat') && m.term >= this.soft.term)
            this.lastHeardLeaderAt = Date.now();
          if (m.type === 'app') appends = true;
          this.core.step(m);
        }
        if (replyTo === undefined) return NO_MESSAGES;
        const now = this.core.takeHeartbeatReplies(replyTo);
        // Nothing to wait for when no Ready is coming: the loop is idle and the core has none.
        if (!holdForAppends || !appends || (!this.loopRunning && !this.core.hasReady())) return now;
        return this.heldReplies.hold(replyTo, now, this.readiesTaken) ?? now;
      }) ?? NO_MESSAGES
    );
  }

  reportUnreachable(peer: NodeId): void {
    this.withCore(() => this.core.reportUnreachable(peer));
  }

  /** How a snapshot transfer to `peer` ended (the sender reports it). */
  reportSnapshot(peer: NodeId, ok: boolean): void {
    this.withCore(() => this.core.reportSnapshot(peer, ok));
  }

  /**
   * A snapshot from `from` (leader of `term`) arrived complete and is staged: the core decides. True
   * when it takes it (the next Ready installs it); false when it is stale or the log already has it.
   */
  installSnapshot(from: NodeId, term: number, snapshot: SnapshotMeta): boolean {
    return (
      this.withCore(() => {
        this.lastHeardLeaderAt = Date.now();
        this.core.step({ type: 'snap', from, to: this.id, term, snapshot });
        const pending = this.core.pendingSnapshot();
        return pending !== null && pending.index === snapshot.index && pending.term === snapshot.term;
      }) ?? false
    );
  }

  /**
   * Proposes `command` and resolves once it is committed, durable on a majority and applied here.
   * Rejects with NotLeaderError (nothing proposed), LeaderTransferError (this leader is handing
   * over; nothing proposed), OverloadedError (nothing proposed), WriteLostError (definitely not
   * applied) or WriteUnknownError (outcome unknown).
   */
  write(command: Uint8Array): Promise<WriteResult> {
    if (this.stopped) return Promise.reject(this.fatal ?? new StoppedError());
    if (this.removed) return Promise.reject(new RemovedError());
    if (this.soft.role !== 'leader') return Promise.reject(new NotLeaderError(this.soft.leader));
    const maxWrites = this.options.maxQueuedWrites ?? 20_000;
    const maxBytes = this.options.maxQueuedWriteBytes ?? 64 * 1024 * 1024;
    if (this.queuedWrites.length >= maxWrites || this.queuedWriteBytes + command.length > maxBytes) {
      return Promise.reject(new OverloadedError('too many writes are waiting to be proposed; retry shortly'));
    }
    return new Promise<WriteResult>((resolve, reject) => {
      this.queuedWrites.push({ data: command, resolve, reject, deadline: Date.now() + this.options.writeTimeoutMs });
      this.queuedWriteBytes += command.length;
      this.kick();
    });
  }

  /**
   * Proposes a membership change and resolves once it is applied here (committed, durable, in force).
   * Refused before anything is proposed with NotLeaderError, LeaderTransferError or
   * MembershipChangeError (another change not applied yet; or a change that makes no sense, such
   * as an id removed before or an address in use); WriteLostError / WriteUnknownError as a write.
   */
  changeMembership(change: MemberChange): Promise<WriteResult> {
    if (this.stopped) return Promise.reject(this.fatal ?? new StoppedError());
    if (this.removed) return Promise.reject(new RemovedError());
    const membership = this.store.membership;
    if (membership === undefined)
      return Promise.reject(new MembershipChangeError('invalid', 'this node keeps no membership'));
    const invalid = invalidMemberChange(change, membership);
    if (invalid !== null) return Promise.reject(new MembershipChangeError('invalid', invalid));
    const result = this.withCore(() => this.core.proposeConfChange(confChangeOf(change), encodeMemberChange(change)));
    if (result === undefined) return Promise.reject(this.fatal ?? new StoppedError());
    if (!result.ok) {
      switch (result.error) {
        case 'not-leader':
          return Promise.reject(new NotLeaderError(result.leader));
        case 'transferring-leadership':
          return Promise.reject(new LeaderTransferError());
        case 'change-in-progress':
          return Promise.reject(
            new MembershipChangeError(
              'conflict',
              'another membership change is not applied yet: one change at a time; retry shortly',
            ),
          );
        default:
          return Promise.reject(new MembershipChangeError('invalid', `the change was refused (${result.error})`));
      }
    }
    return new Promise<WriteResult>((resolve, reject) => {
      this.writes.add(result.index, result.term, {
        resolve,
        reject,
        deadline: Date.now() + this.options.writeTimeoutMs,
      });
    });
  }

  /** The membership at the applied index (the config's voters when the store keeps none). */
  get membership(): Membership {
    return (
      this.store.membership ?? {
        members: this.options.voters.map((id) => ({ id, clientUrl: '', peerUrl: '', role: 'voter' as const })),
        removed: [],
      }
    );
  }

  /** Whether this node applied its own removal. */
  get isRemoved(): boolean {
    return this.removed;
  }

  /**
   * How many entries the leader's log is ahead of member `id` (a learner waiting to be promoted):
   * null when this node is not the leader or does not track it.
   */
  lagOf(id: NodeId): number | null {
    const status = this.core.status();
    const pr = status.progress?.[id];
    return pr === undefined ? null : Math.max(0, status.lastIndex - pr.match);
  }

  /**
   * Resolves with a read index once this node has applied at least up to it: local state is then
   * linearizable. Works on the leader and on followers (which ask the leader for the index).
   */
  readBarrier(): Promise<number> {
    if (this.stopped) return Promise.reject(this.fatal ?? new StoppedError());
    if (this.removed) return Promise.reject(new RemovedError());
    // Deliberately wrong (test-only): whatever this node has applied, however stale.
    if (this.options.unsafe?.localReads === true) return Promise.resolve(this.store.applied.index);
    const deadline = Date.now() + this.options.readTimeoutMs;
    return new Promise<number>((resolve, reject) => {
      this.reads.enqueue({
        deadline,
        reject,
        resolve: (readIndex) => {
          if (this.store.applied.index >= readIndex) resolve(readIndex);
          else this.appliedWaiters.add(readIndex, { deadline, reject, resolve: () => resolve(readIndex) });
        },
      });
      this.kick();
    });
  }

  /** Hands leadership to `target` (the API's transfer endpoint and graceful shutdown use it). */
  transferLeadership(target: NodeId): ReturnType<RaftCore['transferLeader']> {
    return this.withCore(() => this.core.transferLeader(target)) ?? { ok: false, error: 'not-leader' };
  }

  /**
   * Before a graceful stop: a leader hands leadership to its most up-to-date follower and waits,
   * at most `timeoutMs`, until it is no longer the leader, so the cluster does not sit leaderless
   * for an election timeout. Returns the follower it handed over to, or null (not the leader, no
   * follower reachable, or the transfer did not finish in time: the node stops anyway).
   */
  async handOverLeadership(timeoutMs: number): Promise<NodeId | null> {
    if (this.stopped || this.soft.role !== 'leader') return null;
    const target = mostUpToDateFollower(this.core.status());
    if (target === null || !this.transferLeadership(target).ok) return null;
    this.logger.info({ to: target }, 'handing leadership over before stopping');
    const deadline = Date.now() + timeoutMs;
    while (this.soft.role === 'leader' && Date.now() < deadline && !this.stopped) {
      await new Promise((resolve) => setTimeout(resolve, Math.min(10, this.options.tickMs)));
    }
    if (this.soft.role === 'leader') {
      this.logger.warn({ to: target, timeoutMs }, 'leadership was not handed over in time; stopping anyway');
      return null;
    }
    return target;
  }

  /** The core's status, and the latest snapshot point of this node's storage. */
  status(): RaftStatus & { readonly snapshot: { readonly index: number; readonly term: number } } {
    const snapshot = this.store.latestSnapshot?.() ?? { index: 0, term: 0 };
    return { ...this.core.status(), snapshot: { index: snapshot.index, term: snapshot.term } };
  }

  get softState(): SoftState {
    return this.soft;
  }

  get appliedIndex(): number {
    return this.store.applied.index;
  }

  /** Milliseconds since this node last heard from a leader (0 if it is the leader). */
  msSinceLeaderContact(now = Date.now()): number {
    if (this.soft.role === 'leader') return 0;
    return this.lastHeardLeaderAt === 0 ? Infinity : now - this.lastHeardLeaderAt;
  }

  get pending(): { writes: number; reads: number } {
    return { writes: this.queuedWrites.length + this.writes.size, reads: this.reads.size + this.appliedWaiters.size };
  }

  // -------------------------------------------------------------------------------------------

  private onTick(): void {
    this.withCore(() => this.core.tick());
    if (this.stopped) return;
    this.flushIdleHeld();
    const now = Date.now();
    this.writes.expire(now, (index) => new WriteUnknownError(index, 'was not applied in time'));
    this.reads.expire(now, () => new ReadTimeoutError('no read index was confirmed in time (is a quorum reachable?)'));
    this.appliedWaiters.expire(
      now,
      () => new ReadTimeoutError('this node did not catch up with the read index in time'),
    );
    this.expireQueuedWrites(now);
    if (this.metrics !== undefined) {
      this.metrics.observe(this.core.status());
      this.metrics.proposalsPending.set(this.pending.writes);
      this.metrics.readsPending.set(this.pending.reads);
    }
    this.kick();
  }

  /**
   * What the store held unchanged for a whole tick is written now: an idle node keeps nothing in
   * memory that a restart would replay. While writes flow, each synced Ready carries it anyway.
   */
  private flushIdleHeld(): void {
    const stamp = this.store.heldStamp ?? null;
    const idle = stamp !== null && stamp === this.heldStampAtTick;
    this.heldStampAtTick = stamp;
    if (!idle || this.store.flushHeld === undefined) return;
    this.store
      .flushHeld()
      .catch((error: unknown) => this.onFatalError(error instanceof Error ? error : new Error(String(error))));
  }

  /**
   * Runs `step` on the core and kicks the loop. Anything the core throws is fatal (the node stops and
   * onFatal is called): it may be half-way through a step, so no further input may reach it.
   * Returns undefined when stopped or when `step` threw.
   */
  private withCore<T>(step: () => T): T | undefined {
    if (this.stopped) return undefined;
    let result: T;
    try {
      result = step();
    } catch (error) {
      this.onFatalError(error instanceof Error ? error : new Error(String(error)));
      return undefined;
    }
    this.kick();
    return result;
  }

  /** Runs the loop soon: everything that arrives in this turn of the event loop joins one Ready. */
  private kick(): void {
    if (this.kickScheduled || this.loopRunning || this.stopped) return;
    this.kickScheduled = true;
    setImmediate(() => {
      this.kickScheduled = false;
      this.loopDone = this.runLoop();
    });
  }

  private async runLoop(): Promise<void> {
    if (this.loopRunning || this.fatal !== null) return;
    this.loopRunning = true;
    try {
      for (let first = true; ; first = false) {
        // One Ready per turn of the event loop. A Ready that only applies is held in memory
        // (NodeStorage.writeReady), so awaiting it yields to nothing but microtasks: without this,
        // a backlog of committed entries would be applied in one turn, whatever maxApplyBytes
        // bounds per Ready (about 4,000 entries, up to the held limit, held a catching-up
        // follower's loop). Timers, sockets and heartbeats get their turn between Readies; what
        // arrives meanwhile joins the next one.
        if (!first) await new Promise<void>((resolve) => setImmediate(resolve));
        if (this.stopped) break;
        this.proposeQueuedWrites();
        this.reads.flush();
        if (!this.core.hasReady()) break;
        const rd = this.core.ready();
        await this.handleReady(rd, ++this.readiesTaken);
      }
      // No Ready is coming: an answer still held was due at one, and its batch produced nothing
      // to acknowledge.
      this.heldReplies.releaseAll();
    } catch (error) {
      this.onFatalError(error as Error);
    } finally {
      this.loopRunning = false;
    }
    if (!this.stopped && this.fatal === null && (this.core.hasReady() || this.queuedWrites.length > 0)) this.kick();
  }

  private async handleReady(rd: Ready, seq: number): Promise<void> {
    if (rd.softState !== null) this.onSoftState(rd.softState);
    if (rd.messages.length > 0) this.send(rd.messages);
    // Hard state, new entries and the committed entries' changes go to disk in one synced batch
    // (NodeStorage.writeReady says why apply must be synced too): one fsync per Ready.
    await this.writeReady(rd);
    // Now, not before: the acknowledgements held in answers say the entries are on disk.
    const persisted = this.heldReplies.answerDue(seq, rd.persistedMessages);
    if (persisted.length > 0) this.send(persisted);
    for (const rs of rd.readStates) this.reads.confirmed(rs.ctx, rs.index);
    for (const ctx of rd.failedReads) this.reads.failed(ctx);
    this.core.advance(rd);
    // After advance: compaction must never pass what the core counts as applied.
    await this.maybeCompact();
  }

  /** Snapshot requests go to the snapshot sender, everything else to the peers. */
  private send(messages: readonly Message[]): void {
    if (!messages.some((m) => m.type === 'snap')) {
      this.outbox.send(messages);
      return;
    }
    const rest: Message[] = [];
    for (const m of messages) {
      if (m.type === 'snap') this.options.onSnapshotRequested?.(m.to, m.term);
      else rest.push(m);
    }
    if (rest.length > 0) this.outbox.send(rest);
  }

  /** Writes the Ready, then settles the requests waiting on what it applied (or the snapshot installed). */
  private async writeReady(rd: Ready): Promise<void> {
    if (rd.hardState === null && rd.entries.length === 0 && rd.committedEntries.length === 0 && rd.snapshot === null)
      return;
    const { outcomes } = await this.store.writeReady(rd.hardState, rd.entries, rd.committedEntries, rd.snapshot);
    if (rd.snapshot !== null) {
      this.lastSnapshotIndex = rd.snapshot.index;
      this.metrics?.snapshotsInstalled.inc();
      this.logger.info({ index: rd.snapshot.index, term: rd.snapshot.term }, 'installed a snapshot from the leader');
      this.appliedWaiters.applied(this.store.applied.index);
      this.membershipChanged();
    }
    this.metrics?.entriesPersisted.inc(rd.entries.length);
    if (outcomes.length === 0) return;
    this.metrics?.entriesApplied.inc(outcomes.length);
    let membershipChanged = false;
    for (const o of outcomes) {
      if (o.op === 'member') {
        // The state machine took it: every node changes its configuration at this index.
        this.core.applyConfChange(confChangeOf(o.change), o.index);
        membershipChanged = true;
        this.logger.info(
          { index: o.index, change: o.change },
          `membership change applied: ${describeChange(o.change)}`,
        );
      }
      this.writes.applied(o.index, o.term, o.op === 'request' ? o.answer : undefined);
    }
    this.appliedWaiters.applied(this.store.applied.index);
    if (membershipChanged) this.membershipChanged();
  }

  /**
   * A peer refused this node as removed from the cluster (the peer transport's 403 `removed`): the
   * peer applied the removal, which this node's log may never bring it, since the leader no longer
   * replicates to it. From now on it serves nothing (503 removed), and its data dir refuses to start.
   * Peers are authenticated by the cluster's token: a peer's word is as good as its log.
   */
  removedByPeer(peer: NodeId): void {
    if (this.removed || this.stopped) return;
    this.removed = true;
    this.logger.warn(
      { by: peer },
      'this node was removed from the cluster (a peer refused it as removed): it takes no further part (stop it; its data dir will refuse to start)',
    );
    this.store
      .markRemoved?.(peer)
      .catch((error: unknown) => this.logger.error({ err: error }, 'could not record the removal'));
  }

  /** Tells the owner; notes it when this node itself was removed (it then takes no further part). */
  private membershipChanged(): void {
    const membership = this.store.membership;
    if (membership === undefined) return;
    if (membership.removed.includes(this.id) && !this.removed) {
      this.removed = true;
      this.logger.warn(
        'this node was removed from the cluster: it takes no further part (stop it; its data dir will refuse to start)',
      );
    }
    this.options.onMembershipChanged?.(membership);
  }

  /**
   * Every `compaction.everyEntries` applied entries: record a snapshot point at the applied index
   * and compact the log to `keepEntries` before it. The state machine at the applied index is the
   * snapshot (nothing is copied); a follower that needs older entries is sent a view of it.
   */
  private async maybeCompact(): Promise<void> {
    const compaction = this.options.compaction;
    const applied = this.store.applied.index;
    if (
      compaction === undefined ||
      this.store.compactLog === undefined ||
      applied - this.lastSnapshotIndex < compaction.everyEntries
    )
      return;
    this.lastSnapshotIndex = applied;
    const compactIndex = Math.max(0, applied - compaction.keepEntries);
    await this.store.compactLog(compactIndex);
    this.metrics?.snapshotsTaken.inc();
    this.logger.info({ index: applied, compactedTo: compactIndex }, 'took a snapshot and compacted the log');
  }

  /** Proposes every queued write in one batch: one Ready, one fsync, however many writes. */
  private proposeQueuedWrites(): void {
    if (this.queuedWrites.length === 0) return;
    const batch = this.queuedWrites;
    this.queuedWrites = [];
    this.queuedWriteBytes = 0;
    const result = this.core.propose(batch.map((w) => w.data));
    if (!result.ok) {
      const error =
        result.error === 'not-leader'
          ? new NotLeaderError(result.leader)
          : result.error === 'transferring-leadership'
            ? new LeaderTransferError()
            : new OverloadedError('too much uncommitted data; retry shortly');
      for (const w of batch) w.reject(error);
      return;
    }
    if (this.options.unsafe?.earlyAck === true) {
      // Deliberately wrong (test-only): acknowledged before commit, before any fsync.
      batch.forEach((w, i) => w.resolve({ index: result.index + i, term: result.term }));
      return;
    }
    batch.forEach((w, i) => this.writes.add(result.index + i, result.term, w));
  }

  private expireQueuedWrites(now: number): void {
    if (this.queuedWrites.length === 0 || (this.queuedWrites[0]?.deadline ?? Infinity) > now) return;
    // Not proposed yet: nothing can take effect, so this is a clean refusal, not an unknown outcome.
    const keep: QueuedWrite[] = [];
    for (const w of this.queuedWrites) {
      if (w.deadline > now) keep.push(w);
      else w.reject(new OverloadedError('the write could not be proposed in time'));
    }
    this.queuedWrites = keep;
    this.queuedWriteBytes = keep.reduce((sum, w) => sum + w.data.length, 0);
  }

  private onSoftState(soft: SoftState): void {
    const before = this.soft;
    this.soft = soft;
    if (before.role === 'leader' && (soft.role !== 'leader' || soft.term !== before.term))
      this.options.onLeadershipEnded?.();
    if (soft.leader !== before.leader) {
      this.metrics?.leaderChanges.inc();
      if (soft.leader !== '') this.lastHeardLeaderAt = Date.now();
      this.logger.info(
        { term: soft.term, leader: soft.leader || null, role: soft.role },
        soft.leader === '' ? 'no leader' : `leader is ${soft.leader}`,
      );
    } else if (soft.role !== before.role) {
      this.logger.info({ term: soft.term, role: soft.role }, `became ${soft.role}`);
    }
    if (soft.role !== 'leader' && this.queuedWrites.length > 0) {
      const error = new NotLeaderError(soft.leader);
      for (const w of this.queuedWrites) w.reject(error);
      this.queuedWrites = [];
      this.queuedWriteBytes = 0;
    }
  }

  private onFatalError(error: Error): void {
    if (this.fatal !== null) return;
    this.fatal = error;
    this.stopped = true;
    if (this.ticker !== null) clearInterval(this.ticker);
    this.ticker = null;
    this.logger.fatal({ err: error }, 'fatal error (storage I/O or a broken invariant): stopping this node');
    this.failEverything(error, 'the node stopped on a fatal error');
    this.options.onFatal(error);
  }

  /** Fails every waiting request; proposed writes get an unknown outcome, others a refusal. */
  private failEverything(error: Error, why: string): void {
    for (const w of this.queuedWrites) w.reject(error);
    this.queuedWrites = [];
    this.writes.rejectAllWith((index) => new WriteUnknownError(index, why));
    this.reads.rejectAll(error);
    this.appliedWaiters.rejectAll(error);
    // The acknowledgements they wait for will never come: the peers see an answer without them.
    this.heldReplies.releaseAll();
  }

  private async waitForLoop(): Promise<void> {
    // A kick may be scheduled but not yet run: let it run (it sees `stopped` and returns).
    await new Promise((resolve) => setImmediate(resolve));
    await this.loopDone;
  }
}

/**
 * The follower to hand leadership to: the one with the highest match among those heard from lately
 * (a transfer to an unreachable one could only time out); ties by id, so the choice is stable.
 */
export function mostUpToDateFollower(status: RaftStatus): NodeId | null {
  let best: { id: NodeId; match: number } | null = null;
  for (const [id, pr] of Object.entries(status.progress ?? {})) {
    if (id === status.id || !pr.recentActive || pr.learner) continue; // learners cannot lead
    if (best === null || pr.match > best.match || (pr.match === best.match && id < best.id))
      best = { id, match: pr.match };
  }
  return best?.id ?? null;
}

/** A membership change in words, for the log. */
function describeChange(change: MemberChange): string {
  switch (change.type) {
    case 'addLearner':
      return `${change.node} joins as a learner (client ${change.clientUrl}, peer ${change.peerUrl})`;
    case 'promote':
      return `${change.node} is promoted to voter`;
    case 'remove':
      return `${change.node} is removed`;
  }
}
