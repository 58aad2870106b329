// Runs one simulated cluster through a fault schedule, checking safety after every step, liveness
// after the faults end, and linearizability of every client operation at the end.
import { checkLinearizability, type CheckResult } from '../check/linearizability.js';
import type { Operation } from '../check/history.js';
import { RaftCore } from '../../../src/raft/core.js';
import { SeededRandom } from '../../../src/raft/prng.js';
import { RaftInvariantError } from '../../../src/raft/assert.js';
import type { ConfChange, NodeId, SnapshotMeta } from '../../../src/raft/types.js';
import { MAX_RECORD_BYTES, MAX_RECORDS } from '../../../src/storage/idempotency.js';
import {
  CLIENT_TIMEOUT_TICKS,
  RECORD_TTL_STEPS,
  SimClients,
  STEPS_PER_TICK,
  type ClientStats,
  type Workload,
} from './clients.js';
import { SafetyChecker, SafetyViolation } from './invariants.js';
import { encodeLegacyMarker } from './legacy-command.js';
import { SimNetwork } from './network.js';
import { SimNode, type CoreFactory, type DriverBugs, type NodeListener } from './node.js';
import type { Schedule, SimEvent } from './schedule.js';
import type { SimSnapshotState } from './state-machine.js';

export { STEPS_PER_TICK } from './clients.js';
export type { DriverBugs } from './node.js';

/**
 * The liveness bound: once the network heals and every node is back up, a leader must be elected
 * and a new proposal committed within this many election timeouts.
 */
export const LIVENESS_ELECTION_TIMEOUTS = 30;

export interface SimOptions {
  readonly factory?: CoreFactory;
  /** Records a line per fault and leader change, for replaying a failure by eye. */
  readonly trace?: (line: string) => void;
  /**
   * The share of delivered heartbeats whose acknowledgements leave at once, as the real transport's
   * inline replies do (default 0.5). 0 replays schedules recorded before the transport had them.
   */
  readonly inlineReplies?: number;
  /** Deliberate mistakes of the simulated driver (planted-bugs.ts), to prove the checks catch them. */
  readonly driverBugs?: DriverBugs;
  /**
   * What the clients do (clients.ts): 'versioned' (the default) or 'plain', the workload of before
   * conditional writes, to replay schedules recorded then as they ran.
   */
  readonly workload?: Workload;
}

export interface SimStats extends ClientStats {
  steps: number;
  messagesSent: number;
  messagesDelivered: number;
  leaderElections: number;
  crashes: number;
  committed: number;
  livenessSteps: number;
  snapshotsInstalled: number;
  membershipChanges: number;
  /** Retries answered by replay from a record the applying node received in a snapshot. */
  replaysFromSnapshot: number;
}

export type SimResult =
  | { readonly ok: true; readonly stats: SimStats; readonly history: readonly Operation[] }
  | {
      readonly ok: false;
      readonly kind: 'safety' | 'invariant' | 'liveness' | 'linearizability';
      readonly message: string;
      readonly step: number;
      readonly stats: SimStats;
      readonly history: readonly Operation[];
      readonly check?: CheckResult;
    };

export function runSimulation(schedule: Schedule, options: SimOptions = {}): SimResult {
  const sim = new Simulation(schedule, options);
  return sim.run();
}

class Simulation {
  private readonly random: SeededRandom;
  /** Its own stream, so modelling inline replies leaves the other random choices of a seed alone. */
  private readonly replyRandom: SeededRandom;
  private readonly inlineReplies: number;
  private readonly network: SimNetwork;
  private readonly checker = new SafetyChecker();
  private readonly nodes: SimNode[];
  private readonly ids: NodeId[];
  private readonly clients: SimClients;
  /** Step at which each crashed node comes back. */
  private readonly restartAt = new Map<number, number>();
  private readonly tickPhase: number[];
  private nextCtx = 1;
  private now = 0;
  private readonly trace: (line: string) => void;
  private readonly driverBugs: DriverBugs;
  private readonly workload: Workload;
  /** Every node ever added or initially a voter: a removed one is never added again. */
  private readonly everMember = new Set<NodeId>();
  private membershipChanges = 0;
  private lastLeaders = '';
  private pendingFsyncCrash: { downFor: number; until: number } | null = null;
  private pendingIsolations: {
    when: 'afterElection' | 'afterCommit' | 'whileReplicating';
    duration: number;
    until: number;
    termSeen: number;
  }[] = [];
  private leaderCommitBefore: { id: NodeId; term: number; commit: number } | null = null;
  private transfers: {
    from: NodeId;
    to: NodeId;
    term: number;
    meta: SnapshotMeta;
    kv: SimSnapshotState;
    senderGeneration: number;
    doneAt: number;
  }[] = [];

  constructor(
    private readonly schedule: Schedule,
    options: SimOptions,
  ) {
    this.random = new SeededRandom(schedule.seed);
    this.network = new SimNetwork(new SeededRandom(schedule.seed ^ 0x5bd1e995));
    this.replyRandom = new SeededRandom(schedule.seed ^ 0x2545f491);
    this.inlineReplies = options.inlineReplies ?? 0.5;
    this.trace = options.trace ?? (() => undefined);
    this.driverBugs = options.driverBugs ?? {};
    // The cluster's voters, then spares: running, outside the configuration, until a membership change adds them.
    this.ids = Array.from({ length: schedule.nodes + (schedule.spares ?? 0) }, (_, i) => `n${i + 1}`);
    const initialVoters = this.ids.slice(0, schedule.nodes);
    for (const id of initialVoters) this.everMember.add(id);
    const factory = options.factory ?? ((config) => new RaftCore(config));
    const listener: NodeListener = {
      proposalResolved: (attempt, outcome) => this.clients.proposalResolved(attempt, outcome),
      readServed: (attempt, read) => this.clients.readServed(attempt, read),
      readFailed: (attempt) => this.clients.readFailed(attempt),
    };
    this.nodes = this.ids.map(
      (id, i) =>
        new SimNode(
          {
            id,
            conf: i < schedule.nodes ? { voters: initialVoters, learners: [] } : { voters: [], learners: [] },
            seed: schedule.seed + i,
            electionTicks: schedule.electionTicks,
            maxMsgBytes: schedule.maxMsgBytes,
            maxInflightMsgs: schedule.maxInflightMsgs,
            maxInflightBytes: schedule.maxInflightBytes ?? 0,
            maxApplyBytes: schedule.maxApplyBytes ?? 0,
            coldLog: { warmEntries: schedule.warmEntries ?? 0, loadSteps: 3, loadEntries: 8 },
            compaction: { every: schedule.snapshotEvery ?? 0, keep: schedule.snapshotKeep ?? 0 },
            persistDelayMax: schedule.persistDelayMax,
            factory,
            eviction: { ttlMs: RECORD_TTL_STEPS, maxRecords: MAX_RECORDS, maxBytes: MAX_RECORD_BYTES },
            driverBugs: this.driverBugs,
          },
          new SeededRandom(schedule.seed * 31 + i),
          this.checker,
          listener,
        ),
    );
    // Nodes tick at different phases within a tick, as real timers do.
    this.tickPhase = this.ids.map(() => this.random.int(STEPS_PER_TICK));
    this.clients = new SimClients(
      schedule.clients,
      this.nodes,
      this.random,
      () => this.now,
      () => this.nextCtx++,
      options.workload,
    );
    this.workload = options.workload ?? 'versioned';
  }

  run(): SimResult {
    let livenessSteps: number;
    try {
      let eventIndex = 0;
      for (this.now = 0; this.now < this.schedule.steps; this.now++) {
        while (
          eventIndex < this.schedule.events.length &&
          (this.schedule.events[eventIndex]?.at ?? Infinity) <= this.now
        ) {
          const event = this.schedule.events[eventIndex++];
          if (event !== undefined) this.inject(event.event);
        }
        this.step(true);
      }
      livenessSteps = this.checkLiveness();
      // Let the clients' last requests finish or time out, then stop.
      const end = this.now + CLIENT_TIMEOUT_TICKS * STEPS_PER_TICK;
      for (; this.now < end && this.clients.anyBusy; this.now++) this.step(false);
    } catch (error) {
      if (error instanceof SafetyViolation) return this.failure('safety', error.message);
      if (error instanceof RaftInvariantError)
        return this.failure('invariant', `${error.message}\n${stackFrames(error)}`);
      if (error instanceof LivenessFailure) return this.failure('liveness', error.message);
      throw error;
    }
    this.clients.abandonAll();
    const history = this.clients.history();
    const check = checkLinearizability(history);
    if (check.result === 'violation') {
      const details = check.keys
        .filter((k) => k.result === 'violation')
        .map((k) => (k.result === 'violation' ? `key ${k.key}: ${k.message}` : ''))
        .join('; ');
      return { ...this.failure('linearizability', details), check };
    }
    return { ok: true, stats: this.stats(livenessSteps), history };
  }

  private step(clientsMayStart: boolean): void {
    const now = this.now;
    for (const [index, at] of this.restartAt) {
      if (at <= now) {
        this.restartAt.delete(index);
        this.nodes[index]?.start();
        this.trace(`${now}: ${this.ids[index]} restarts`);
      }
    }
    this.network.expire(now);
    for (let i = 0; i < this.nodes.length; i++) {
      if (now % STEPS_PER_TICK === this.tickPhase[i]) this.nodes[i]?.core?.tick();
    }
    this.finishTransfers();
    const send = (m: Parameters<SimNetwork['send']>[0]): void => {
      if (m.type === 'snap') {
        this.startTransfer(m);
        return;
      }
      const target = this.nodes[this.ids.indexOf(m.to)];
      // A transport notices a dead peer (connection refused) and tells the core.
      if (target !== undefined && !target.up) this.nodes[this.ids.indexOf(m.from)]?.core?.reportUnreachable(m.to);
      this.checker.onSend(m);
      this.network.send(m, now);
    };
    for (const m of this.network.due(now)) {
      const core = this.nodes[this.ids.indexOf(m.to)]?.core;
      core?.step(m);
      // The real transport carries heartbeat acknowledgements in the answer to the request that
      // brought the heartbeats (peer-server.ts), outside any Ready; model it for half of them.
      if (core != null && m.type === 'heartbeat' && this.replyRandom.chance(this.inlineReplies))
        for (const r of core.takeHeartbeatReplies(m.from)) send(r);
    }
    for (const node of this.nodes) node.drive(now, send);
    this.maybeCrashDuringPersist();
    this.maybeIsolateLeader();
    this.clients.run(clientsMayStart);
    for (const node of this.nodes) node.driveBatchedRead(() => this.nextCtx++);
    for (const node of this.nodes) node.drive(now, send);
    this.traceLeaders();
  }

  // ---------------------------------------------------------------------------------------------
  // Snapshot transfers

  /**
   * A leader's core asked for a snapshot to be sent: like the real sender, the view of its state
   * machine is taken now and streamed for a while; it arrives only if the link stays up, the target
   * stays up and the sender's incarnation lives (a dead sender reports nothing). The outcome is
   * reported to the sender's core, as the real sender does.
   */
  private startTransfer(m: Extract<Parameters<SimNetwork['send']>[0], { type: 'snap' }>): void {
    const from = this.nodes[this.ids.indexOf(m.from)];
    if (from === undefined) return;
    const { meta, kv } = from.snapshotState();
    this.transfers.push({
      from: m.from,
      to: m.to,
      term: m.term,
      meta: this.driverBugs.snapshotLabelBehind === true && meta.index > m.snapshot.index ? m.snapshot : meta,
      kv,
      senderGeneration: from.generation,
      doneAt: this.now + 2 + this.random.int(4 * STEPS_PER_TICK),
    });
    this.trace(`${this.now}: ${m.from} sends ${m.to} snapshot ${meta.index}/${meta.term}`);
  }

  private finishTransfers(): void {
    if (this.transfers.length === 0) return;
    const due = this.transfers.filter((t) => t.doneAt <= this.now);
    this.transfers = this.transfers.filter((t) => t.doneAt > this.now);
    for (const t of due) {
      const sender = this.nodes[this.ids.indexOf(t.from)];
      const target = this.nodes[this.ids.indexOf(t.to)];
      if (sender === undefined || sender.generation !== t.senderGeneration || sender.core === null) continue;
      const delivered =
        target !== undefined &&
        target.up &&
        !this.network.isBlocked(t.from, t.to) &&
        !this.network.isBlocked(t.to, t.from) &&
        !this.random.chance(this.network.currentDropRate);
      if (delivered) {
        const taken = target.receiveSnapshot(
          t.from,
          t.term,
          t.meta,
          t.kv,
          this.driverBugs.restagesOverPendingSnapshot === true,
        );
        this.trace(
          `${this.now}: ${t.to} received snapshot ${t.meta.index}/${t.meta.term}${taken ? '' : ' (not needed)'}`,
        );
      }
      sender.core.reportSnapshot(t.to, delivered);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Faults

  private inject(event: SimEvent): void {
    const n = this.nodes.length;
    const at = this.now;
    switch (event.kind) {
      case 'crash':
        this.crash(event.node % n, event.downFor);
        return;
      case 'crashLeader': {
        const leader = this.leaderIndex();
        if (leader >= 0) this.crash(leader, event.downFor);
        return;
      }
      case 'crashAll':
        for (let i = 0; i < n; i++) this.crash(i, event.downFor);
        return;
      case 'crashDuringPersist': {
        // Wait (a bounded while) for a node to be mid-way through persisting a new term or vote.
        this.pendingFsyncCrash = { downFor: event.downFor, until: at + 20 * STEPS_PER_TICK };
        return;
      }
      case 'partition': {
        const links: [NodeId, NodeId][] = [];
        for (let a = 0; a < n; a++) {
          for (let b = 0; b < n; b++) if (event.groups[a] !== event.groups[b]) links.push([this.id(a), this.id(b)]);
        }
        this.network.cut(links, at + event.duration);
        this.trace(
          `${at}: partition ${this.ids.map((id, i) => `${id}:${event.groups[i]}`).join(' ')} for ${event.duration}`,
        );
        return;
      }
      case 'isolate':
        this.isolate(event.node % n, event.duration);
        return;
      case 'isolateLeader':
        if (event.when === 'now') {
          const leader = this.leaderIndex();
          if (leader >= 0) this.isolate(leader, event.duration);
        } else if (this.pendingIsolations.length < 8) {
          const leader = this.leaderIndex();
          this.pendingIsolations.push({
            when: event.when,
            duration: event.duration,
            until: at + 100 * STEPS_PER_TICK,
            termSeen: leader >= 0 ? (this.nodes[leader]?.core?.status().term ?? 0) : 0,
          });
        }
        return;
      case 'oneWay':
        this.network.cut([[this.id(event.from % n), this.id(event.to % n)]], at + event.duration);
        this.trace(`${at}: lose ${this.id(event.from % n)} -> ${this.id(event.to % n)} for ${event.duration}`);
        return;
      case 'cutLink': {
        const a = this.id(event.a % n);
        const b = this.id(event.b % n);
        this.network.cut(
          [
            [a, b],
            [b, a],
          ],
          at + event.duration,
        );
        this.trace(`${at}: cut ${a} <-> ${b} for ${event.duration}`);
        return;
      }
      case 'lossy':
        this.network.lossy(event.dropPercent / 100, event.duplicatePercent / 100, at + event.duration);
        this.trace(`${at}: drop ${event.dropPercent}% duplicate ${event.duplicatePercent}% for ${event.duration}`);
        return;
      case 'heal':
        this.network.healAll();
        this.trace(`${at}: heal`);
        return;
      case 'membership':
        this.changeMembership(event.pick, event.burst);
        return;
      case 'transferLeader': {
        const leader = this.leaderIndex();
        if (leader >= 0) {
          this.nodes[leader]?.core?.transferLeader(this.id(event.to % n));
          this.trace(`${at}: transfer leadership ${this.id(leader)} -> ${this.id(event.to % n)}`);
        }
        return;
      }
    }
  }

  /**
   * The leader proposes a membership change its configuration allows, picked by `pick`: promote a
   * learner, add a spare (never one removed before: ids are not reused), or remove a member (the
   * leader itself included). With `burst`, a second right after: the core must refuse it while the
   * first is not applied.
   */
  private changeMembership(pick: number, burst: boolean): void {
    const leader = this.nodes[this.leaderIndex()];
    if (leader === undefined) return;
    const conf = leader.core?.confState();
    if (conf === undefined) return;
    const members = [...conf.voters, ...conf.learners];
    const options: ConfChange[] = [
      ...conf.learners.map((node): ConfChange => ({ type: 'promote', node })),
      ...this.ids
        .filter((id) => !members.includes(id) && !this.everMember.has(id))
        .map((node): ConfChange => ({ type: 'addLearner', node })),
      ...(conf.voters.length > 2 ? conf.voters : []).map((node): ConfChange => ({ type: 'remove', node })),
      ...conf.learners.map((node): ConfChange => ({ type: 'remove', node })),
    ];
    for (let i = 0; i < (burst ? 2 : 1) && options.length > 0; i++) {
      const change = options.splice((pick + i) % options.length, 1)[0]!;
      const result = leader.proposeConfChange(change);
      if (result?.ok === true) {
        this.everMember.add(change.node);
        this.membershipChanges++;
        this.trace(`${this.now}: ${leader.id} proposes ${change.type} ${change.node} at ${result.index}`);
      }
    }
  }

  /**
   * Fires the oldest pending leader isolation once its moment comes; drops those that waited too
   * long. Several may be pending, so a cascade (cut the leader, then its successor as soon as it is
   * elected, then the next right after its first commit...) builds divergent logs quickly. A leader
   * already cut off from everyone is passed over: cutting it again changes nothing.
   */
  private maybeIsolateLeader(): void {
    this.pendingIsolations = this.pendingIsolations.filter((p) => p.until > this.now);
    const leader = this.leaderIndex();
    const status = leader >= 0 ? this.nodes[leader]?.core?.status() : undefined;
    const previous = this.leaderCommitBefore;
    this.leaderCommitBefore = status === undefined ? null : { id: status.id, term: status.term, commit: status.commit };
    if (status === undefined) return;
    const committedNow =
      previous !== null &&
      previous.id === status.id &&
      previous.term === status.term &&
      status.commit > previous.commit;
    // Strictly in the order scheduled, so a generated sequence of moments composes into a cascade.
    const pending = this.pendingIsolations[0];
    if (pending === undefined || this.network.isCutOff(status.id, this.ids)) return;
    const due =
      pending.when === 'afterElection'
        ? status.term > pending.termSeen
        : pending.when === 'afterCommit'
          ? committedNow
          : status.lastIndex > status.commit + 1;
    if (!due) return;
    this.pendingIsolations.shift();
    this.trace(
      `${this.now}: the leader ${status.id} is cut off (${pending.when}, commit ${status.commit}, last ${status.lastIndex})`,
    );
    this.isolate(leader, pending.duration);
    this.leaderCommitBefore = null;
  }

  /** Fires a pending crash-during-fsync on a node caught persisting a vote. */
  private maybeCrashDuringPersist(): void {
    const pending = this.pendingFsyncCrash;
    if (pending === null) return;
    if (pending.until <= this.now) {
      this.pendingFsyncCrash = null;
      return;
    }
    const candidates = this.nodes.map((node, i) => (node.persistingVote ? i : -1)).filter((i) => i >= 0);
    if (candidates.length === 0) return;
    const index = this.random.pick(candidates);
    this.pendingFsyncCrash = null;
    this.trace(`${this.now}: ${this.id(index)} crashes while persisting a vote`);
    this.crash(index, pending.downFor);
  }

  private crash(index: number, downFor: number): void {
    const node = this.nodes[index];
    if (node === undefined || !node.up) return;
    node.crash();
    this.clients.nodeCrashed(index);
    this.restartAt.set(index, this.now + downFor);
    this.trace(`${this.now}: ${node.id} crashes for ${downFor} steps`);
  }

  private isolate(index: number, duration: number): void {
    const links: [NodeId, NodeId][] = [];
    for (let other = 0; other < this.nodes.length; other++) {
      if (other === index) continue;
      links.push([this.id(index), this.id(other)], [this.id(other), this.id(index)]);
    }
    this.network.cut(links, this.now + duration);
    this.trace(`${this.now}: isolate ${this.id(index)} for ${duration}`);
  }

  // ---------------------------------------------------------------------------------------------
  // Liveness: after the faults, the cluster must elect a leader and commit a new entry in bounded time.

  private checkLiveness(): number {
    this.network.healAll();
    this.pendingFsyncCrash = null;
    this.pendingIsolations = [];
    for (const index of [...this.restartAt.keys()]) {
      this.restartAt.set(index, this.now);
    }
    this.trace(`${this.now}: faults end; all nodes up, network healed`);
    const start = this.now;
    const deadline = start + LIVENESS_ELECTION_TIMEOUTS * this.schedule.electionTicks * STEPS_PER_TICK;
    let marker: { node: number; index: number; term: number } | null = null;
    for (; this.now < deadline; this.now++) {
      this.step(true);
      if (marker !== null) {
        const node = this.nodes[marker.node];
        if (node?.hasApplied(marker.index, marker.term)) return this.checkReadLiveness(start, deadline, node.conf);
        if (node?.core?.status().role !== 'leader') marker = null; // lost leadership: try again
      }
      if (marker === null) {
        const leader = this.leaderIndex();
        // A barrier: an entry that changes nothing, as a read through the log proposes (the plain
        // workload's legacy marker, of the size schedules recorded then had).
        const barrier = this.workload === 'plain' ? encodeLegacyMarker() : ({ op: 'barrier' } as const);
        const result = leader >= 0 ? this.nodes[leader]?.propose(-1, barrier) : null;
        if (result?.kind === 'proposed') marker = { node: leader, index: result.index, term: result.term };
      }
    }
    throw new LivenessFailure(
      `no leader committed a new entry within ${LIVENESS_ELECTION_TIMEOUTS} election timeouts after the faults ended ` +
        `(${this.describeNodes()})`,
    );
  }

  /**
   * Read liveness: once a new entry has committed, every node's batched reader must serve a read
   * within the same bound. A follower whose one forwarded request was lost must not wait for the
   * next leader change (chaos seed 113 found that on real processes).
   */
  /** Every member of the leader's configuration (spares never added and removed nodes take no part) must serve a read. */
  private checkReadLiveness(
    start: number,
    deadline: number,
    conf: { voters: readonly NodeId[]; learners: readonly NodeId[] },
  ): number {
    const servedBefore = this.nodes.map((node) => node.batchedReadsServed);
    const members = new Set([...conf.voters, ...conf.learners]);
    const waiting = (node: SimNode, i: number): boolean =>
      members.has(node.id) && node.batchedReadsServed <= (servedBefore[i] ?? 0);
    for (; this.now < deadline; this.now++) {
      if (!this.nodes.some(waiting)) return this.now - start;
      this.step(true);
    }
    const stuck = this.nodes.filter(waiting).map((node) => node.id);
    throw new LivenessFailure(
      `${stuck.join(', ')} served no linearizable read within ${LIVENESS_ELECTION_TIMEOUTS} election timeouts after the faults ended ` +
        `(${this.describeNodes()}; ${this.nodes.map((node) => node.describeBatchedRead()).join(', ')})`,
    );
  }

  // ---------------------------------------------------------------------------------------------

  private leaderIndex(): number {
    // The leader of the highest term among nodes that believe they lead.
    let best = -1;
    let bestTerm = -1;
    this.nodes.forEach((node, i) => {
      const status = node.core?.status();
      if (status?.role === 'leader' && status.term > bestTerm) {
        best = i;
        bestTerm = status.term;
      }
    });
    return best;
  }

  private traceLeaders(): void {
    const leaders = this.nodes
      .map((node) => node.core?.status())
      .filter((s) => s?.role === 'leader')
      .map((s) => `${s?.id}@${s?.term}`)
      .join(' ');
    if (leaders !== this.lastLeaders) {
      this.lastLeaders = leaders;
      this.trace(`${this.now}: leaders ${leaders || '(none)'}`);
    }
  }

  private describeNodes(): string {
    return this.nodes
      .map((node) => {
        const s = node.core?.status();
        return s === undefined
          ? `${node.id} down`
          : `${s.id} ${s.role} t${s.term} commit ${s.commit} last ${s.lastIndex}`;
      })
      .join('; ');
  }

  private id(index: number): NodeId {
    return this.ids[index] ?? 'n?';
  }

  private failure(kind: 'safety' | 'invariant' | 'liveness' | 'linearizability', message: string) {
    return {
      ok: false as const,
      kind,
      message,
      step: this.now,
      stats: this.stats(0),
      history: this.clients.history(),
    };
  }

  private stats(livenessSteps: number): SimStats {
    return {
      steps: this.now,
      messagesSent: this.network.sent,
      messagesDelivered: this.network.delivered,
      leaderElections: this.checker.leaderElections,
      crashes: this.nodes.reduce((sum, n) => sum + n.crashes, 0),
      committed: this.checker.maxCommitted,
      ...this.clients.stats(),
      livenessSteps,
      snapshotsInstalled: this.nodes.reduce((sum, n) => sum + n.snapshotsInstalled, 0),
      membershipChanges: this.membershipChanges,
      replaysFromSnapshot: this.nodes.reduce((sum, n) => sum + n.replaysFromSnapshot, 0),
    };
  }
}

class LivenessFailure extends Error {}

/** Where a core invariant broke: the first frames of its stack, for the failure report. */
function stackFrames(error: Error, frames = 6): string {
  return (error.stack ?? '')
    .split('\n')
    .filter((line) => line.trimStart().startsWith('at '))
    .slice(0, frames)
    .join('\n');
}
