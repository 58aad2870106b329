import { assert } from './assert.js';
import { RaftLog } from './log.js';
import type { Random } from './prng.js';
import { Progress } from './progress.js';
import { quorumIndex, voteResult } from './quorum.js';
import { changedConf, invalidChange } from './membership.js';
import { ReadOnly, type PendingRead } from './read-only.js';
import { entryBytes, type Storage } from './storage.js';
import {
  EntryType,
  NONE,
  type AppendMessage,
  type AppendResponseMessage,
  type ConfChange,
  type ConfChangeCheck,
  type ConfState,
  type Entry,
  type HardState,
  type HeartbeatMessage,
  type HeartbeatResponseMessage,
  type Message,
  type MessageType,
  type NodeId,
  type ProposeResult,
  type ReadIndexResult,
  type ReadState,
  type Ready,
  type Role,
  type SnapshotMessage,
  type SnapshotMeta,
  type SoftState,
  type TransferResult,
  type VoteMessage,
  type VoteResponseMessage,
} from './types.js';

export interface RaftConfig {
  readonly id: NodeId;
  /**
   * The configuration at the applied index: every voting member (this node included, unless it is a
   * learner, or joining: then both lists are empty until a snapshot brings the configuration).
   */
  readonly voters: readonly NodeId[];
  /** Members that replicate the log without voting. */
  readonly learners?: readonly NodeId[];
  readonly storage: Storage;
  /** Seeded randomness for the election timeout jitter. */
  readonly random: Random;
  /** A follower campaigns after a random timeout in [electionTicks, 2 * electionTicks). */
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  /** The state machine's applied index at start-up (entries after it are handed out again). */
  readonly applied?: number;
  /** Byte limit of the entries in one append message (at least one entry is always sent). */
  readonly maxMsgBytes?: number;
  /** Appends in flight to one follower in replicate state. */
  readonly maxInflightMsgs?: number;
  /**
   * Bytes of entries in flight to one follower in replicate state (0: no bound). The driver keeps it
   * below what its transport holds, so a follower far behind is fed a window at a time.
   */
  readonly maxInflightBytes?: number;
  /** Bytes of proposals the leader holds uncommitted before it refuses more. */
  readonly maxUncommittedBytes?: number;
  /**
   * Byte limit of the committed entries handed out in one Ready (at least one entry always goes):
   * it bounds the loop time of one Ready's apply (DEFAULT_MAX_APPLY_BYTES says why).
   */
  readonly maxApplyBytes?: number;
  /** ReadIndex requests waiting on this node, as leader or as follower. */
  readonly maxPendingReads?: number;
}

export interface ProgressStatus {
  readonly match: number;
  readonly next: number;
  readonly state: string;
  readonly recentActive: boolean;
  readonly inflight: number;
  /** A learner: replicated to, not counted in quorums. */
  readonly learner: boolean;
}

export interface RaftStatus {
  readonly id: NodeId;
  readonly role: Role;
  readonly term: number;
  readonly vote: NodeId;
  readonly leader: NodeId;
  readonly commit: number;
  readonly applied: number;
  readonly firstIndex: number;
  readonly lastIndex: number;
  readonly leadTransferee: NodeId;
  /** The configuration in force. */
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
  /** Per-member replication progress; only a leader knows it. */
  readonly progress: Readonly<Record<NodeId, ProgressStatus>> | null;
}

/**
 * Message types that may leave before the Ready that produced them is persisted.
 *  - Everything a leader sends as leader: its term and vote were made durable before it could win,
 *    and Raft thesis 10.2.1 lets its appends race its own disk write, because it counts itself in
 *    the commit quorum only once that write is done.
 *  - Heartbeat acknowledgements: they say "when your heartbeat arrived I had seen no later term",
 *    which stays true even if a crash loses the term update; ReadIndex rounds need no fsync.
 *  - Pre-votes and read requests change no state.
 * Votes, vote grants and append acknowledgements wait: they promise something about durable state.
 */
const SEND_BEFORE_PERSIST: ReadonlySet<MessageType> = new Set<MessageType>([
  'app',
  'heartbeat',
  'heartbeatResp',
  'timeoutNow',
  'readIndex',
  'readIndexResp',
  'preVote',
]);

type CampaignKind = 'pre-vote' | 'election' | 'transfer';

/**
 * The Raft consensus core: pure, synchronous and deterministic. No I/O, no clock, no Promises.
 * Time advances by `tick()`, input arrives by `step()`, `propose()`, `readIndex()` and
 * `transferLeader()`, and everything the driver must do comes out of `ready()`.
 *
 * Methods are protected rather than private where the simulation tests plant deliberate bugs by
 * overriding them (scripts/harness/sim/planted-bugs.ts); production code never subclasses the core.
 */
export class RaftCore {
  readonly id: NodeId;
  /** The configuration in force: it changes when a ConfChange entry is applied (applyConfChange). */
  protected voters: readonly NodeId[];
  protected learners: readonly NodeId[];
  /**
   * Leader: the index of the last membership change proposed. Another may be proposed only once
   * it is applied: one change at a time is what keeps single-server changes safe.
   */
  private pendingConfIndex = 0;
  /**
   * The log index the configuration in force is as of: the last change applied, or the snapshot it
   * came with. A change at or below it is already part of it (applyConfChange says when that happens).
   */
  protected confIndex = 0;
  protected readonly log: RaftLog;
  private readonly random: Random;
  protected readonly electionTimeout: number;
  private readonly heartbeatTimeout: number;
  private readonly maxMsgBytes: number;
  private readonly maxInflightMsgs: number;
  private readonly maxInflightBytes: number;
  private readonly maxUncommittedBytes: number;
  private readonly maxApplyBytes: number;
  private readonly maxPendingReads: number;

  protected term = 0;
  protected vote: NodeId = NONE;
  protected lead: NodeId = NONE;
  protected role: Role = 'follower';

  protected electionElapsed = 0;
  private heartbeatElapsed = 0;
  protected randomizedElectionTimeout = 0;

  protected readonly progress = new Map<NodeId, Progress>();
  private readonly votes = new Map<NodeId, boolean>();
  private leadTransferee: NodeId = NONE;

  /** Leader: ReadIndex rounds of this term. */
  private readOnly: ReadOnly;
  /** Leader: reads that wait until an entry of this term is committed. */
  private readsAwaitingTermCommit: { from: NodeId; ctx: number }[] = [];
  /**
   * Follower: our reads forwarded to the leader and not yet answered, by context, with the tick
   * they were last sent at (insertion order is age order). A request or its answer can be lost
   * while the leader stays the same, so an unanswered one is sent again (resendForwardedReads);
   * they fail only when this node stops following that leader.
   */
  protected forwardedReads = new Map<number, number>();
  /** Ticks since this core was created: only forwarded reads are timed by it. */
  protected ticks = 0;

  /** Leader: bytes of entries proposed in this term and not yet committed, oldest first. */
  private uncommitted: { index: number; bytes: number }[] = [];
  private uncommittedBytes = 0;

  private messages: Message[] = [];
  private persistedMessages: Message[] = [];
  private readStates: ReadState[] = [];
  protected failedReads: number[] = [];

  private prevSoftState: SoftState;
  private prevHardState: HardState;
  private readyInFlight: Ready | null = null;

  constructor(config: RaftConfig) {
    const learners = config.learners ?? [];
    assert(
      new Set([...config.voters, ...learners]).size === config.voters.length + learners.length,
      'members must be distinct',
    );
    assert(![...config.voters, ...learners].includes(NONE), 'a member id must not be empty');
    assert(config.heartbeatTicks >= 1, 'heartbeatTicks must be >= 1');
    assert(config.electionTicks > config.heartbeatTicks, 'electionTicks must exceed heartbeatTicks');
    this.id = config.id;
    this.voters = config.voters.slice();
    this.learners = learners.slice();
    this.random = config.random;
    this.electionTimeout = config.electionTicks;
    this.heartbeatTimeout = config.heartbeatTicks;
    this.maxMsgBytes = config.maxMsgBytes ?? 1 << 20;
    this.maxInflightMsgs = config.maxInflightMsgs ?? 256;
    this.maxInflightBytes = config.maxInflightBytes ?? DEFAULT_MAX_INFLIGHT_BYTES;
    this.maxUncommittedBytes = config.maxUncommittedBytes ?? 64 << 20;
    this.maxApplyBytes = config.maxApplyBytes ?? DEFAULT_MAX_APPLY_BYTES;
    this.maxPendingReads = config.maxPendingReads ?? 16_384;

    const hardState = config.storage.initialHardState();
    this.log = new RaftLog(config.storage, hardState.commit, config.applied ?? 0);
    this.confIndex = this.log.applied;
    this.term = hardState.term;
    this.vote = hardState.vote;
    this.readOnly = new ReadOnly(this.id, () => this.voters);
    this.becomeFollower(this.term, NONE);
    this.prevHardState = this.hardState();
    this.prevSoftState = this.softState();
  }

  // ===========================================================================================
  // Public API

  /** Advances logical time by one tick: elections and heartbeats are driven from here. */
  tick(): void {
    this.ticks++;
    if (this.role === 'leader') this.tickHeartbeat();
    else {
      this.resendForwardedReads();
      this.tickElection();
    }
  }

  /** Feeds one message from a peer into the state machine. */
  step(m: Message): void {
    if (m.term === 0 || m.to !== this.id || m.from === this.id) return;
    // Vote requests are heard from anyone, whatever this node's configuration says (etcd-raft does
    // the same): a node's configuration can lag the cluster's (it has not applied the latest changes,
    // or it joined empty and knows none), and a voter it does not know yet may be the only one that
    // can win an election it must vote in; refusing would deadlock the cluster. Safety never depended
    // on it (a vote goes only to an up-to-date log), and disruption by removed nodes is stopped by
    // PreVote and the leader lease here, and by the peer transport, which admits only members.
    if (m.term > this.term) {
      if (!this.acceptHigherTerm(m)) return;
    } else if (m.term < this.term) {
      this.answerStaleTerm(m);
      return;
    }
    this.stepAtCurrentTerm(m);
  }

  /** Appends client commands to the log (leader only). Returns the index of the first. */
  propose(commands: readonly Uint8Array[]): ProposeResult {
    if (this.role !== 'leader') return { ok: false, error: 'not-leader', leader: this.lead };
    if (this.leadTransferee !== NONE) return { ok: false, error: 'transferring-leadership', leader: this.lead };
    assert(commands.length > 0, 'propose needs at least one command');
    let bytes = 0;
    for (const data of commands) bytes += data.length;
    // One batch may exceed the limit alone, or a huge command could never be proposed.
    if (this.uncommittedBytes > 0 && this.uncommittedBytes + bytes > this.maxUncommittedBytes) {
      return { ok: false, error: 'too-many-uncommitted', leader: this.lead };
    }
    const first = this.log.lastIndex() + 1;
    const entries: Entry[] = commands.map((data, i) => ({
      index: first + i,
      term: this.term,
      type: EntryType.Normal,
      data,
    }));
    this.appendAsLeader(entries);
    this.uncommitted.push({ index: first + entries.length - 1, bytes });
    this.uncommittedBytes += bytes;
    this.broadcastAppend();
    return { ok: true, index: first, term: this.term };
  }

  /**
   * Whether `change` may be proposed now: this node leads, no other change waits to be applied, and
   * the change makes sense for the configuration in force.
   */
  checkConfChange(change: ConfChange): ConfChangeCheck {
    if (this.role !== 'leader') return { ok: false, error: 'not-leader', reason: 'this node is not the leader' };
    if (this.pendingConfIndex > this.log.applied) {
      return {
        ok: false,
        error: 'change-in-progress',
        reason: `a membership change (entry ${this.pendingConfIndex}) is not applied yet: one change at a time`,
      };
    }
    const reason = invalidChange(change, { voters: this.voters, learners: this.learners });
    return reason === null ? { ok: true } : { ok: false, error: 'invalid-change', reason };
  }

  /**
   * Proposes a membership change, `data` being the driver's encoding of it (a ConfChange entry).
   * It takes effect on each node when that node applies it (applyConfChange).
   */
  proposeConfChange(change: ConfChange, data: Uint8Array): ProposeResult {
    const check = this.checkConfChange(change);
    if (!check.ok) return { ok: false, error: check.error, leader: this.lead };
    if (this.leadTransferee !== NONE) return { ok: false, error: 'transferring-leadership', leader: this.lead };
    const index = this.log.lastIndex() + 1;
    this.appendAsLeader([{ index, term: this.term, type: EntryType.ConfChange, data }]);
    this.pendingConfIndex = index;
    this.broadcastAppend();
    return { ok: true, index, term: this.term };
  }

  /**
   * The driver applied the ConfChange entry at `index`: the configuration changes now, on every node at the same
   * index. A change that no longer makes sense (it cannot happen with one change at a time, but a
   * replayed log must not crash on it) changes nothing. A leader that removed itself steps down.
   */
  applyConfChange(change: ConfChange, index: number): ConfState {
    // The driver applies committed entries while the core goes on: a snapshot taken meanwhile
    // (handleSnapshot) already holds the configuration at its index, and a change below it, applied
    // late by the Ready that was being written, must not roll it back (sim seed 8831808 path 356: a
    // follower re-added a learner the snapshot had seen removed, and its configuration diverged).
    if (index <= this.confIndex) return this.confState();
    this.confIndex = index;
    if (invalidChange(change, { voters: this.voters, learners: this.learners }) !== null) return this.confState();
    const next = changedConf({ voters: this.voters, learners: this.learners }, change);
    this.switchToConf(next);
    return this.confState();
  }

  confState(): ConfState {
    return { voters: this.voters.slice(), learners: this.learners.slice() };
  }

  /**
   * Asks for a linearizable read point for request `ctx` (unique per request, never reused across
   * retries). The answer comes as a ReadState in a later Ready, or as a failed read.
   */
  readIndex(ctx: number): ReadIndexResult {
    if (this.role === 'leader') {
      if (this.pendingReadCount() >= this.maxPendingReads) {
        return { ok: false, error: 'too-many-pending-reads', leader: this.lead };
      }
      this.handleReadRequest(this.id, ctx);
      return { ok: true };
    }
    if (this.lead === NONE) return { ok: false, error: 'no-leader', leader: NONE };
    if (this.forwardedReads.size >= this.maxPendingReads) {
      return { ok: false, error: 'too-many-pending-reads', leader: this.lead };
    }
    this.forwardedReads.set(ctx, this.ticks);
    this.send({ type: 'readIndex', from: this.id, to: this.lead, term: this.term, ctx });
    return { ok: true };
  }

  /** Hands leadership to `target` once its log has caught up (Raft thesis 3.10). */
  transferLeader(target: NodeId): TransferResult {
    if (this.role !== 'leader') return { ok: false, error: 'not-leader' };
    if (!this.voters.includes(target)) return { ok: false, error: 'unknown-target' };
    if (target === this.id || target === this.leadTransferee) return { ok: true };
    this.leadTransferee = target;
    // The transfer must finish within one election timeout, or it is abandoned.
    this.electionElapsed = 0;
    const pr = this.progressOf(target);
    if (pr.match === this.log.lastIndex()) this.sendTimeoutNow(target);
    else this.sendAppend(target, true);
    return { ok: true };
  }

  /**
   * Entries that storage answered "not in memory yet" for (`Storage.entriesToSend`) are loaded now:
   * resume replication to every follower that waits for them.
   */
  entriesLoaded(): void {
    if (this.role !== 'leader') return;
    for (const id of this.voters) {
      if (id === this.id) continue;
      while (this.sendAppend(id, false)) {
        /* bounded by the in-flight window, the log's end and what storage has in memory */
      }
    }
  }

  /**
   * The driver's transfer of the snapshot a 'snap' message asked for ended: `ok` once the follower
   * has it (its acknowledgement then moves replication on), not ok when the transfer failed (the
   * leader probes again, and sends another snapshot if the follower still needs one).
   */
  reportSnapshot(id: NodeId, ok: boolean): void {
    if (this.role !== 'leader') return;
    const pr = this.progress.get(id);
    if (pr === undefined || pr.state !== 'snapshot') return;
    if (!ok) pr.pendingSnapshot = 0;
    pr.becomeProbe();
    // Wait for a heartbeat response (or the follower's acknowledgement) before the next append.
    pr.probeSent = true;
  }

  /** The transport could not reach `id`: stop streaming to it and probe instead. */
  reportUnreachable(id: NodeId): void {
    if (this.role !== 'leader' || id === this.id) return;
    const pr = this.progress.get(id);
    if (pr !== undefined && pr.state === 'replicate') pr.becomeProbe();
  }

  /**
   * Removes and returns the heartbeat acknowledgements queued for `to`, so the transport can carry
   * them in the answer to the request that brought the heartbeats (one peer request per heartbeat
   * round instead of two). Only heartbeatResp qualifies: it may leave before anything is persisted
   * (SEND_BEFORE_PERSIST), and its order relative to other messages does not matter (the leader
   * takes the highest round it has seen). Everything else keeps its place in the next Ready.
   */
  takeHeartbeatReplies(to: NodeId): Message[] {
    if (!this.messages.some((m) => m.type === 'heartbeatResp' && m.to === to)) return [];
    const replies: Message[] = [];
    const rest: Message[] = [];
    for (const m of this.messages) (m.type === 'heartbeatResp' && m.to === to ? replies : rest).push(m);
    this.messages = rest;
    return replies;
  }

  hasReady(): boolean {
    return (
      this.readyInFlight === null &&
      (this.messages.length > 0 ||
        this.persistedMessages.length > 0 ||
        this.readStates.length > 0 ||
        this.failedReads.length > 0 ||
        this.log.hasUnstable() ||
        this.log.hasNextCommittedEntries() ||
        !sameHardState(this.hardState(), this.prevHardState) ||
        !sameSoftState(this.softState(), this.prevSoftState))
    );
  }

  /** Takes everything the driver must do now. Call `advance` with it before the next `ready`. */
  ready(): Ready {
    assert(this.readyInFlight === null, 'ready() called again before advance()');
    const soft = this.softState();
    const hard = this.hardState();
    const rd: Ready = {
      softState: sameSoftState(soft, this.prevSoftState) ? null : soft,
      hardState: sameHardState(hard, this.prevHardState) ? null : hard,
      snapshot: this.log.snapshotToInstall(),
      entries: this.log.unstableEntries(),
      committedEntries: this.log.nextCommittedEntries(this.maxApplyBytes),
      messages: this.messages,
      persistedMessages: this.persistedMessages,
      readStates: this.readStates,
      failedReads: this.failedReads,
    };
    this.prevSoftState = soft;
    this.prevHardState = hard;
    this.messages = [];
    this.persistedMessages = [];
    this.readStates = [];
    this.failedReads = [];
    this.readyInFlight = rd;
    return rd;
  }

  /** The driver persisted, sent and applied `rd`. */
  advance(rd: Ready): void {
    assert(this.readyInFlight === rd, 'advance() must be given the Ready returned by the last ready()');
    this.readyInFlight = null;
    if (rd.snapshot !== null) this.log.snapshotInstalled(rd.snapshot);
    const lastEntry = rd.entries[rd.entries.length - 1];
    if (lastEntry !== undefined) {
      this.log.stableTo(lastEntry.index, lastEntry.term);
      if (this.role === 'leader') {
        // The leader counts itself towards the commit quorum only for durable entries.
        const self = this.progressOf(this.id);
        if (self.maybeUpdate(this.log.stableLastIndex())) this.maybeCommitAndReplicate();
      }
    }
    const lastApplied = rd.committedEntries[rd.committedEntries.length - 1];
    if (lastApplied !== undefined) this.log.appliedTo(lastApplied.index);
  }

  status(): RaftStatus {
    let progress: Record<NodeId, ProgressStatus> | null = null;
    if (this.role === 'leader') {
      progress = {};
      for (const [id, pr] of this.progress) {
        progress[id] = {
          match: pr.match,
          next: pr.next,
          state: pr.state,
          recentActive: id === this.id || pr.recentActive,
          inflight: pr.inflights.count,
          learner: this.learners.includes(id),
        };
      }
    }
    return {
      id: this.id,
      role: this.role,
      term: this.term,
      vote: this.vote,
      leader: this.lead,
      commit: this.log.committed,
      applied: this.log.applied,
      firstIndex: this.log.firstIndex(),
      lastIndex: this.log.lastIndex(),
      leadTransferee: this.leadTransferee,
      voters: this.voters.slice(),
      learners: this.learners.slice(),
      progress,
    };
  }

  /** A snapshot this node took from its leader and has not installed yet (the next Ready installs it). */
  pendingSnapshot(): SnapshotMeta | null {
    return this.log.snapshotToInstall();
  }

  /** The term of entry `index` in this node's log (persisted or not); undefined beyond its end. */
  logTerm(index: number): number | undefined {
    return this.log.term(index);
  }

  softState(): SoftState {
    return { role: this.role, leader: this.lead, term: this.term };
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  // ===========================================================================================
  // Role transitions

  protected becomeFollower(term: number, lead: NodeId): void {
    this.endLeadership();
    this.reset(term);
    this.role = 'follower';
    this.lead = lead;
  }

  private becomePreCandidate(): void {
    assert(this.role !== 'leader', 'a leader cannot become a pre-candidate');
    // PreVote changes neither the term nor the vote: a node that cannot win must not disrupt.
    this.failForwardedReads();
    this.votes.clear();
    this.role = 'pre-candidate';
    this.lead = NONE;
  }

  private becomeCandidate(): void {
    assert(this.role !== 'leader', 'a leader cannot become a candidate');
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = 'candidate';
  }

  protected becomeLeader(): void {
    assert(this.role === 'candidate', () => `only a candidate can become leader, not a ${this.role}`);
    this.reset(this.term);
    this.role = 'leader';
    this.lead = this.id;
    const self = this.progressOf(this.id);
    self.becomeReplicate();
    self.maybeUpdate(this.log.stableLastIndex());
    // A change may sit unapplied in the log we inherit: no new one until ours is applied past it.
    this.pendingConfIndex = this.log.lastIndex();
    // The empty entry: committing it commits every earlier entry (Raft 5.4.2), and until it is
    // committed the leader does not know the commit index, so it serves no ReadIndex (thesis 6.4).
    this.appendAsLeader([{ index: this.log.lastIndex() + 1, term: this.term, type: EntryType.Normal, data: EMPTY }]);
  }

  /** Resets per-term volatile state; a new term clears the vote. */
  private reset(term: number): void {
    if (term !== this.term) {
      this.term = term;
      this.vote = NONE;
    }
    this.failForwardedReads();
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout = this.electionTimeout + this.random.int(this.electionTimeout);
    this.leadTransferee = NONE;
    this.votes.clear();
    this.progress.clear();
    const next = this.log.lastIndex() + 1;
    for (const id of this.members())
      this.progress.set(id, new Progress(next, this.maxInflightMsgs, this.maxInflightBytes));
    this.readOnly = new ReadOnly(this.id, () => this.voters);
    this.readsAwaitingTermCommit = [];
    this.uncommitted = [];
    this.uncommittedBytes = 0;
  }

  /** Fails every read this node still holds as leader; the askers retry elsewhere. */
  private endLeadership(): void {
    if (this.role !== 'leader') return;
    const waiting: { from: NodeId; ctx: number }[] = [...this.readOnly.drain(), ...this.readsAwaitingTermCommit];
    for (const read of waiting) this.rejectRead(read.from, read.ctx);
  }

  private failForwardedReads(): void {
    for (const ctx of this.forwardedReads.keys()) this.failedReads.push(ctx);
    this.forwardedReads.clear();
  }

  /**
   * Forwarded reads unanswered for an election timeout go to the leader again, under the same
   * context. A live leader answers within a round trip and a heartbeat round, so the request or
   * its answer was probably lost (chaos seed 113: without a second try, a driver that waits for one
   * answer before asking again waited until the next leader change). The read is not failed: an
   * answer to any copy serves it, and it is still linearizable, because the leader confirms its
   * leadership after that copy arrived, which is after the read began. Failing it instead, and
   * letting the driver retry under a new context, threw away every answer slower than the timeout:
   * on a slow cluster no follower read was ever served (simulation seeds 23116980 and 31001, with
   * expiries of one and then two election timeouts). Reads end when answered or rejected, or when
   * this node stops following the leader (failForwardedReads); the leader dedups nothing: a copy
   * answered twice is answered once here (handleReadIndexResponse).
   */
  protected resendForwardedReads(): void {
    if (this.lead === NONE) return; // none are waiting: losing the leader failed them
    // Collected first: re-inserting while iterating would visit a read again.
    let due: number[] | undefined;
    for (const [ctx, sentAt] of this.forwardedReads) {
      if (this.ticks - sentAt < this.electionTimeout) break; // the rest are younger
      (due ??= []).push(ctx);
    }
    if (due === undefined) return; // the common tick: nothing is due
    for (const ctx of due) {
      // Re-inserted at the end, so the map stays in order of the last send.
      this.forwardedReads.delete(ctx);
      this.forwardedReads.set(ctx, this.ticks);
      this.send({ type: 'readIndex', from: this.id, to: this.lead, term: this.term, ctx });
    }
  }

  // ===========================================================================================
  // Time

  protected tickElection(): void {
    this.electionElapsed++;
    // Learners, removed and joining nodes never campaign: they are not in the electorate. Their timer
    // runs on all the same (etcd's tickElection): it is what ends the leader lease, and a node that
    // is a voter in its leader's newer configuration must grant votes once that leader is gone. Reset
    // at each timeout, a learner's lease never ended, it ignored every vote request, and a two-voter
    // configuration that needed its vote never elected anyone (sim seed 11726124 path 1487).
    if (this.electionElapsed >= this.randomizedElectionTimeout && this.promotable()) {
      this.electionElapsed = 0;
      this.campaign('pre-vote');
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTimeout) {
      this.electionElapsed = 0;
      // CheckQuorum: a leader cut off from a majority steps down, so it stops accepting writes it
      // cannot commit and clients find the real leader.
      if (!this.quorumActive()) {
        this.becomeFollower(this.term, NONE);
        return;
      }
      if (this.leadTransferee !== NONE) this.leadTransferee = NONE; // the transfer timed out
    }
    if (this.heartbeatElapsed >= this.heartbeatTimeout) {
      this.heartbeatElapsed = 0;
      this.broadcastHeartbeat(this.readOnly.currentRound);
    }
  }

  /** Whether a majority was heard from since the last check; clears the marks for the next one. */
  private quorumActive(): boolean {
    // Only voters count; learners' marks are cleared too, so they stay fresh for snapshot decisions.
    let active = 0;
    for (const [id, pr] of this.progress) {
      if (this.voters.includes(id) && (id === this.id || pr.recentActive)) active++;
      if (id !== this.id) pr.recentActive = false;
    }
    return active >= Math.floor(this.voters.length / 2) + 1;
  }

  // ===========================================================================================
  // Elections

  protected campaign(kind: CampaignKind): void {
    if (!this.mayCampaign(kind)) return;
    if (kind === 'pre-vote') this.becomePreCandidate();
    else this.becomeCandidate();
    const voteType = kind === 'pre-vote' ? 'preVote' : 'vote';
    // A pre-vote asks "would you vote for me in the next term?" without raising our own term.
    const term = kind === 'pre-vote' ? this.term + 1 : this.term;
    this.votes.set(this.id, true);
    if (this.tallyVotes()) return; // a single-voter cluster wins at once
    const index = this.log.lastIndex();
    const logTerm = this.log.lastTerm();
    for (const to of this.voters) {
      if (to === this.id) continue;
      this.send({ type: voteType, from: this.id, to, term, index, logTerm, transfer: kind === 'transfer' });
    }
  }

  /**
   * Whether this node may start a campaign of `kind` now. Only a voter of its own configuration may
   * (etcd's `promotable`), whatever asked: the election timer, a pre-vote won, or a leader's
   * TimeoutNow. A leader that has not applied a removal yet still counts the removed node as a
   * voter and may hand it leadership; the removed node knows better and must refuse, or it wins
   * votes it cannot count itself in and leads a configuration it is not part of (sim seed 77418717
   * path 766). And a committed membership change not applied yet would leave us counting votes with
   * a configuration the cluster has moved past: wait until it is applied (etcd's rule); the election
   * timer runs again meanwhile.
   */
  protected mayCampaign(_kind: CampaignKind): boolean {
    return this.promotable() && !this.hasUnappliedConfChange();
  }

  /** Acts on the votes so far. Returns true when the campaign ended (won or lost). */
  private tallyVotes(): boolean {
    const result = voteResult(this.voters, this.votes);
    if (result === 'pending') return false;
    if (result === 'lost') {
      this.becomeFollower(this.term, NONE);
      return true;
    }
    if (this.role === 'pre-candidate') {
      this.campaign('election');
    } else {
      this.becomeLeader();
      this.broadcastAppend();
    }
    return true;
  }

  /**
   * Whether this node may grant `m`'s (pre)vote: it has not voted for someone else in this term (or
   * it is a pre-vote for a later term), and the candidate's log is at least as up to date as ours.
   */
  protected canGrantVote(m: VoteMessage): boolean {
    const free =
      this.vote === m.from ||
      (this.vote === NONE && this.lead === NONE) ||
      (m.type === 'preVote' && m.term > this.term);
    return free && this.log.isUpToDate(m.index, m.logTerm);
  }

  private handleVoteRequest(m: VoteMessage): void {
    const respType = m.type === 'vote' ? 'voteResp' : 'preVoteResp';
    if (this.canGrantVote(m)) {
      // A granted pre-vote answers with the term it was asked about, so the pre-candidate counts it.
      this.send({ type: respType, from: this.id, to: m.from, term: m.term, reject: false });
      if (m.type === 'vote') {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send({ type: respType, from: this.id, to: m.from, term: this.term, reject: true });
    }
  }

  private handleVoteResponse(m: VoteResponseMessage): void {
    const expected = this.role === 'pre-candidate' ? 'preVoteResp' : this.role === 'candidate' ? 'voteResp' : null;
    if (m.type !== expected) return;
    // A pre-vote grant names the term we would campaign in; one for another term is stale.
    if (m.type === 'preVoteResp' && !m.reject && m.term !== this.term + 1) return;
    if (!this.votes.has(m.from)) this.votes.set(m.from, !m.reject);
    this.tallyVotes();
  }

  // ===========================================================================================
  // Terms

  /**
   * A message from a later term. Returns false when it must be ignored.
   * CheckQuorum's lease: a node that heard from a live leader within an election timeout ignores
   * (pre)votes, so a partitioned node that rejoins cannot depose a healthy leader; a vote forced by
   * leadership transfer is exempt.
   */
  private acceptHigherTerm(m: Message): boolean {
    if (m.type === 'vote' || m.type === 'preVote') {
      const inLease = this.lead !== NONE && this.electionElapsed < this.electionTimeout;
      if (inLease && !m.transfer) return false;
    }
    if (m.type === 'preVote') return true; // a pre-vote never changes our term
    if (m.type === 'preVoteResp' && !m.reject) return true; // a grant carries the future term
    const lead = m.type === 'app' || m.type === 'heartbeat' ? m.from : NONE;
    this.becomeFollower(m.term, lead);
    return true;
  }

  /** A message from an earlier term: answer where that helps the sender catch up, else drop it. */
  private answerStaleTerm(m: Message): void {
    if (m.type === 'app' || m.type === 'heartbeat') {
      // A leader deposed while it was partitioned learns the new term from this and steps down.
      // Needed because PreVote and CheckQuorum keep its own elections from ever raising its term.
      this.send({
        type: 'appResp',
        from: this.id,
        to: m.from,
        term: this.term,
        index: 0,
        reject: true,
        hintIndex: 0,
        hintTerm: 0,
      });
    } else if (m.type === 'preVote') {
      this.send({ type: 'preVoteResp', from: this.id, to: m.from, term: this.term, reject: true });
    }
  }

  private stepAtCurrentTerm(m: Message): void {
    switch (m.type) {
      case 'vote':
      case 'preVote':
        this.handleVoteRequest(m);
        return;
      case 'voteResp':
      case 'preVoteResp':
        this.handleVoteResponse(m);
        return;
      case 'app':
        if (this.role === 'leader') return; // another leader in our term cannot exist
        this.followLeader(m.from);
        this.handleAppend(m);
        return;
      case 'heartbeat':
        if (this.role === 'leader') return;
        this.followLeader(m.from);
        this.handleHeartbeat(m);
        return;
      case 'appResp':
        // Not from a member (any more): a removed node's late answer.
        if (this.role === 'leader' && this.progress.has(m.from)) this.handleAppendResponse(m);
        return;
      case 'heartbeatResp':
        if (this.role === 'leader' && this.progress.has(m.from)) this.handleHeartbeatResponse(m);
        return;
      case 'readIndex':
        if (this.role === 'leader' && this.pendingReadCount() < this.maxPendingReads) {
          this.handleReadRequest(m.from, m.ctx);
        } else {
          this.rejectRead(m.from, m.ctx);
        }
        return;
      case 'readIndexResp':
        this.handleReadIndexResponse(m.ctx, m.index, m.reject);
        return;
      case 'timeoutNow':
        if (this.role !== 'leader') this.campaign('transfer');
        return;
      case 'snap':
        if (this.role === 'leader') return;
        this.followLeader(m.from);
        this.handleSnapshot(m);
        return;
    }
  }

  /** Hearing from the leader of our term: a (pre-)candidate gives up, and the election timer resets. */
  private followLeader(leader: NodeId): void {
    if (this.role !== 'follower') this.becomeFollower(this.term, leader);
    if (this.lead !== leader) {
      this.failForwardedReads();
      this.lead = leader;
    }
    this.electionElapsed = 0;
  }

  // ===========================================================================================
  // Replication, follower side

  private handleAppend(m: AppendMessage): void {
    const reply = { type: 'appResp', from: this.id, to: m.from, term: this.term } as const;
    if (this.voters.length === 0 && this.learners.length === 0) {
      // Joining, with no configuration yet: entries would build on a configuration we do not know.
      this.send({ ...reply, index: m.index, reject: true, hintIndex: 0, hintTerm: 0, needsSnapshot: true });
      return;
    }
    if (m.index < this.log.committed) {
      // Everything up to our commit is known to match: say so and let the leader move on.
      this.send({ ...reply, index: this.log.committed, reject: false, hintIndex: 0, hintTerm: 0 });
      return;
    }
    const lastNew = this.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastNew !== null) {
      this.send({ ...reply, index: lastNew, reject: false, hintIndex: 0, hintTerm: 0 });
      return;
    }
    const hintIndex = this.log.findConflictByTerm(Math.min(m.index, this.log.lastIndex()), m.logTerm);
    const hintTerm = this.log.term(hintIndex) ?? 0;
    this.send({ ...reply, index: m.index, reject: true, hintIndex, hintTerm });
  }

  /**
   * A snapshot from the leader, whose state the driver has staged already. Installed unless this log
   * already holds its last entry (then it commits up to it: the entries are here to apply) or it is
   * older than our commit. Either way the answer says how far this log matches the leader's.
   */
  protected handleSnapshot(m: SnapshotMessage): void {
    const s = m.snapshot;
    const reply = {
      type: 'appResp',
      from: this.id,
      to: m.from,
      term: this.term,
      reject: false,
      hintIndex: 0,
      hintTerm: 0,
    } as const;
    if (s.index <= this.log.committed) {
      this.send({ ...reply, index: this.log.committed });
      return;
    }
    if (this.log.matchTerm(s.index, s.term)) {
      this.log.commitTo(s.index);
      this.send({ ...reply, index: this.log.committed });
      return;
    }
    this.log.restore(s);
    // The snapshot carries the configuration at its index: it is ours now.
    this.voters = s.voters.slice();
    this.learners = (s.learners ?? []).slice();
    this.confIndex = s.index;
    this.send({ ...reply, index: this.log.lastIndex() });
  }

  private handleHeartbeat(m: HeartbeatMessage): void {
    // The leader caps the commit it sends at our match, so it is always within our log.
    this.log.commitTo(m.commit);
    this.send({ type: 'heartbeatResp', from: this.id, to: m.from, term: this.term, round: m.round });
  }

  // ===========================================================================================
  // Replication, leader side

  private appendAsLeader(entries: Entry[]): void {
    this.log.append(entries);
  }

  /** Sends `to` the entries it lacks (or an empty probe). Returns false if nothing was sent. */
  protected sendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.progressOf(to);
    if (pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.log.term(prevIndex);
    // The follower needs entries compacted away: only a snapshot can catch it up.
    if (prevTerm === undefined || pr.next < this.log.firstIndex()) return this.sendSnapshot(to);
    // Null: storage is loading them off the loop and entriesLoaded() resumes. Meanwhile only a probe
    // is worth sending empty: it finds where the follower's log matches ours.
    let entries = this.log.entriesToSend(pr.next, this.maxMsgBytes);
    if (entries === null) {
      if (!sendIfEmpty || pr.state !== 'probe') return false;
      entries = [];
    }
    if (entries.length === 0 && !sendIfEmpty) return false;
    const last = entries[entries.length - 1];
    let bytes = 0;
    for (const entry of entries) bytes += entryBytes(entry);
    pr.sentAppend(entries.length, last === undefined ? prevIndex : last.index, bytes);
    pr.commitSent = this.log.committed;
    this.send({
      type: 'app',
      from: this.id,
      to,
      term: this.term,
      index: prevIndex,
      logTerm: prevTerm,
      entries,
      commit: this.log.committed,
    });
    return true;
  }

  /**
   * Asks the driver to send `to` a snapshot of the state machine (the state at our applied index, at
   * least: the driver may send a later one). Only to a follower heard from lately: a snapshot to a
   * dead one would only fail (etcd does the same).
   */
  protected sendSnapshot(to: NodeId): boolean {
    const pr = this.progressOf(to);
    if (!pr.recentActive) return false;
    const index = this.log.applied;
    const term = this.log.term(index);
    assert(term !== undefined, () => `no term for the applied index ${index}: compaction went beyond it`);
    pr.becomeSnapshot(index);
    const snapshot: SnapshotMeta = { index, term, voters: this.voters, learners: this.learners };
    this.send({ type: 'snap', from: this.id, to, term: this.term, snapshot });
    return true;
  }

  /**
   * maybeCommit, then the followers hear of it. Each gets the entries it lacks and the new commit
   * with them, but no empty append for the commit alone (etcd sends one): a follower otherwise
   * learns the commit with its next append or heartbeat. Why: every message that moves a
   * follower's commit costs it a synced apply (NodeStorage.writeReady) and a peer request, and at
   * one write at a time the empty append doubled both per write (BENCHMARKS.md profiling step 11).
   * Nothing waits on a follower's apply but its own reads: a linearizable one gets the commit it
   * needs with its read index, or with the answer to its acknowledgement (sendCommitForRead); a
   * stale one may lag by a heartbeat, as it may anyway.
   * The commit still goes out at once, to everyone, when it passes a membership change (each node
   * changes its configuration when it applies one, and a leader that removed itself steps down
   * then and sends no more heartbeats) and at the first commit of a term (pendingConfIndex is the
   * log's end then), so followers agree on the state soon after an election.
   */
  protected maybeCommitAndReplicate(): boolean {
    const before = this.log.committed;
    if (!this.maybeCommit()) return false;
    const eager =
      this.log.term(before) !== this.term ||
      (before < this.pendingConfIndex && this.pendingConfIndex <= this.log.committed);
    for (const id of this.members()) if (id !== this.id) this.sendAppend(id, eager);
    return true;
  }

  protected broadcastAppend(): void {
    for (const id of this.members()) if (id !== this.id) this.sendAppend(id, true);
  }

  /** The periodic heartbeat, to every follower; it carries the read round in flight, if any. */
  private broadcastHeartbeat(round: number): void {
    for (const id of this.members()) if (id !== this.id) this.sendHeartbeat(id, round);
  }

  /** A new ReadIndex round goes only to the followers a quorum needs (read-only.ts says why). */
  private startReadRound(round: number): void {
    for (const id of this.readOnly.roundTargets((id) => this.progressOf(id).recentActive))
      this.sendHeartbeat(id, round);
  }

  private sendHeartbeat(to: NodeId, round: number): void {
    const pr = this.progressOf(to);
    // Never tell a follower to commit beyond what it is known to hold.
    const commit = Math.min(pr.match, this.log.committed);
    pr.commitSent = commit;
    this.send({ type: 'heartbeat', from: this.id, to, term: this.term, commit, round });
  }

  private handleAppendResponse(m: AppendResponseMessage): void {
    const pr = this.progressOf(m.from);
    pr.recentActive = true;
    if (m.reject && m.needsSnapshot === true) {
      if (pr.state !== 'snapshot') this.sendSnapshot(m.from);
      return;
    }
    if (m.reject) {
      // Skip back past every entry of a term the follower cannot have (the reject hint).
      const hint = m.hintTerm > 0 ? this.log.findConflictByTerm(m.hintIndex, m.hintTerm) : m.hintIndex;
      if (pr.maybeDecrTo(m.index, hint)) {
        if (pr.state === 'replicate') pr.becomeProbe();
        this.sendAppend(m.from, true);
      }
      return;
    }
    const wasPaused = pr.isPaused();
    const updated = pr.maybeUpdate(m.index);
    // A probe answered at exactly `match` also proves where the logs agree: start streaming.
    if (!updated && !(pr.state === 'probe' && pr.match === m.index)) return;
    if (pr.state === 'snapshot') {
      // Acknowledged: the follower holds the snapshot (or caught up some other way): stream from it.
      if (pr.match + 1 < this.log.firstIndex()) return;
      pr.becomeProbe();
      pr.becomeReplicate();
    } else if (pr.state === 'probe') pr.becomeReplicate();
    else pr.inflights.freeLE(m.index);
    // A follower that was paused may lack the commit: it gets an append, empty if need be (when the
    // commit moved just now, maybeCommitAndReplicate decided for every follower).
    if (!this.maybeCommitAndReplicate() && wasPaused) this.sendAppend(m.from, true);
    // Stream whatever else the follower lacks, as far as the in-flight window allows.
    while (this.sendAppend(m.from, false)) {
      /* bounded by the in-flight window and the log's end */
    }
    // A read of this follower waits for a commit it could not be sent before this acknowledgement.
    if (pr.commitWanted > pr.commitSent && pr.match >= pr.commitWanted) {
      this.sendHeartbeat(m.from, this.readOnly.currentRound);
    }
    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) this.sendTimeoutNow(m.from);
  }

  private handleHeartbeatResponse(m: HeartbeatResponseMessage): void {
    const pr = this.progressOf(m.from);
    pr.recentActive = true;
    pr.probeSent = false;
    // If every append in flight was lost, the window stays full forever: free a slot so the next
    // append goes out; the follower rejects it if there is a gap, and probing takes over.
    if (pr.state === 'replicate' && pr.inflights.full()) pr.inflights.freeFirstOne();
    if (pr.match < this.log.lastIndex()) this.sendAppend(m.from, true);
    this.releaseReads(this.readOnly.acknowledge(m.from, m.round));
  }

  /**
   * Advances the commit index to what a quorum holds, but only through an entry of the current term
   * (Raft 5.4.2, Figure 8): counting replicas of an older entry does not make it safe.
   */
  protected maybeCommit(): boolean {
    const matches = this.voters.map((id) => this.progressOf(id).match);
    const before = this.log.committed;
    if (!this.log.maybeCommit(quorumIndex(matches), this.term)) return false;
    this.onCommitAdvanced(before);
    return true;
  }

  protected onCommitAdvanced(before: number): void {
    assert(this.log.committed > before, 'commit only moves forward');
    while (this.uncommitted.length > 0 && (this.uncommitted[0]?.index ?? Infinity) <= this.log.committed) {
      this.uncommittedBytes -= this.uncommitted.shift()?.bytes ?? 0;
    }
    if (this.readsAwaitingTermCommit.length > 0 && this.committedInCurrentTerm()) {
      const waiting = this.readsAwaitingTermCommit;
      this.readsAwaitingTermCommit = [];
      for (const read of waiting) this.handleReadRequest(read.from, read.ctx);
    }
  }

  private sendTimeoutNow(to: NodeId): void {
    this.send({ type: 'timeoutNow', from: this.id, to, term: this.term });
  }

  // ===========================================================================================
  // ReadIndex

  /** Whether the leader has committed an entry of its own term, and so knows the commit index. */
  protected committedInCurrentTerm(): boolean {
    return this.log.term(this.log.committed) === this.term;
  }

  protected handleReadRequest(from: NodeId, ctx: number): void {
    if (!this.committedInCurrentTerm()) {
      this.readsAwaitingTermCommit.push({ from, ctx });
      return;
    }
    const round = this.readOnly.add(from, ctx, this.log.committed);
    if (round > 0) this.startReadRound(round);
    this.releaseReads(this.readOnly.release());
  }

  private releaseReads(result: { released: PendingRead[]; startRound: number }): void {
    for (const read of result.released) {
      if (read.from === this.id) this.readStates.push({ ctx: read.ctx, index: read.index });
      else {
        this.send({
          type: 'readIndexResp',
          from: this.id,
          to: read.from,
          term: this.term,
          ctx: read.ctx,
          index: read.index,
          reject: false,
        });
        this.sendCommitForRead(read.from, read.index);
      }
    }
    if (result.startRound > 0) this.startReadRound(result.startRound);
  }

  /**
   * A follower serves its read once it applied `index`, and may not know that commit yet
   * (maybeCommitAndReplicate sends no append for the commit alone): a heartbeat carries it, in the
   * same request as the read index. The heartbeat carries the round in flight, as a periodic one.
   */
  protected sendCommitForRead(to: NodeId, index: number): void {
    const pr = this.progress.get(to);
    if (pr === undefined || pr.commitSent >= index) return;
    this.sendHeartbeat(to, this.readOnly.currentRound);
    // A heartbeat carries no commit beyond what the follower acknowledged: if it has not
    // acknowledged `index` yet, its acknowledgement brings the commit (handleAppendResponse).
    if (pr.commitSent < index) pr.commitWanted = Math.max(pr.commitWanted, index);
  }

  private rejectRead(from: NodeId, ctx: number): void {
    if (from === this.id) this.failedReads.push(ctx);
    else this.send({ type: 'readIndexResp', from: this.id, to: from, term: this.term, ctx, index: 0, reject: true });
  }

  private handleReadIndexResponse(ctx: number, index: number, reject: boolean): void {
    if (!this.forwardedReads.delete(ctx)) return; // answered already, or failed on a leader change
    if (reject) this.failedReads.push(ctx);
    else this.readStates.push({ ctx, index });
  }

  private pendingReadCount(): number {
    return this.readOnly.size + this.readsAwaitingTermCommit.length;
  }

  // ===========================================================================================
  // Plumbing

  /** Voters and learners: everyone the leader replicates to. */
  protected members(): NodeId[] {
    return [...this.voters, ...this.learners];
  }

  /** Whether a committed ConfChange entry waits to be applied. */
  protected hasUnappliedConfChange(): boolean {
    // Entries a snapshot taken but not installed yet covers are not in the log any more, and their
    // configuration is already in force (handleSnapshot): look only after it (sim seed 9948958 path
    // 1189: an election timeout with a snapshot pending read below the log's start).
    const from = Math.max(this.log.applied + 1, this.log.firstIndex());
    if (this.log.committed < from) return false;
    return this.log.slice(from, this.log.committed + 1, Infinity).some((e) => e.type === EntryType.ConfChange);
  }

  /** Whether this node may campaign: it is a voter (not a learner, not removed, not joining). */
  protected promotable(): boolean {
    return this.voters.includes(this.id);
  }

  /**
   * Moves to configuration `next`. A leader tracks progress for members that joined, drops it for
   * those that left, recounts the commit (a quorum may have shrunk) and replicates; a leader that is
   * no longer a voter steps down (its removal is committed: it is applied).
   */
  private switchToConf(next: ConfState): void {
    this.voters = next.voters.slice();
    this.learners = next.learners.slice();
    if (this.role !== 'leader') return;
    if (!this.voters.includes(this.id)) {
      this.becomeFollower(this.term, NONE);
      return;
    }
    const members = new Set(this.members());
    for (const id of this.progress.keys()) if (!members.has(id)) this.progress.delete(id);
    for (const id of members) {
      if (!this.progress.has(id))
        this.progress.set(id, new Progress(this.log.lastIndex() + 1, this.maxInflightMsgs, this.maxInflightBytes));
    }
    if (this.leadTransferee !== NONE && !this.voters.includes(this.leadTransferee)) this.leadTransferee = NONE;
    if (this.maybeCommit()) this.broadcastAppend();
    else for (const id of members) if (id !== this.id) this.sendAppend(id, false);
  }

  protected progressOf(id: NodeId): Progress {
    const pr = this.progress.get(id);
    assert(pr !== undefined, () => `no progress for ${id}`);
    return pr;
  }

  /** Routes an outgoing message by whether it may leave before this Ready is persisted. */
  protected send(m: Message): void {
    if (this.sendsBeforePersist(m)) this.messages.push(m);
    else this.persistedMessages.push(m);
  }

  protected sendsBeforePersist(m: Message): boolean {
    return SEND_BEFORE_PERSIST.has(m.type);
  }
}

const EMPTY = new Uint8Array(0);

/**
 * The default byte bound of a follower's in-flight window: four appends of the core's default
 * maxMsgBytes (1 MiB; sixteen of the node config's default, 256 KiB). Below the
 * transport's queue (8 MiB), and small enough that what one round of appends costs a follower to
 * decode, persist and apply stays in the tens of milliseconds.
 */
export const DEFAULT_MAX_INFLIGHT_BYTES = 4 << 20;

/**
 * The default byte bound of the committed entries one Ready hands out (about 500 entries of 100-byte
 * values). The driver applies a Ready in one turn of its event loop (RaftNode.runLoop takes one
 * Ready per turn), and applying an entry whose key's metadata is not cached reads it from LevelDB,
 * 60-120 us each right after a snapshot install on the benchmark machine: under 4 MiB, the bound
 * before, a catching-up follower's Ready of 1,985 such applies took 284 ms (BENCHMARKS.md, profiling
 * step 18). A node under steady writes of small values applies a few dozen entries per Ready.
 */
export const DEFAULT_MAX_APPLY_BYTES = 64 << 10;

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

function sameSoftState(a: SoftState, b: SoftState): boolean {
  return a.role === b.role && a.leader === b.leader && a.term === b.term;
}

/** Bytes an entry costs in messages and memory (re-exported for drivers sizing their batches). */
export { entryBytes };
