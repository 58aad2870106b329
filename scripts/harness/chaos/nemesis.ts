// Executes a fault schedule against the cluster: one fault at a time, each after its quiet gap and
// healed after its duration. Healing always runs, also when the run is stopped mid-fault. A
// membership turn (membership-nemesis.ts) takes a fault's place in the schedule: it runs until its
// change is done or given up, then the schedule goes on.
import type { ChaosCluster } from './chaos-cluster.js';
import { sleep, type RunClock } from './clock.js';
import { describeChange, type MembershipChange } from './membership-change.js';
import type { MembershipNemesis } from './membership-nemesis.js';
import type { NemesisKind } from './nemesis-kinds.js';
import { isolate, type DirectedCut, type NetworkFaults } from './network.js';
import type { FaultPlan, MembershipPlan } from './schedule.js';

export interface FaultRecord {
  readonly index: number;
  readonly kind: NemesisKind;
  /** E.g. "kill-leader n2", "partition-link n1<->n3". */
  readonly label: string;
  /** The nodes it hit. */
  readonly nodes: readonly string[];
  /** Run-clock times: injected, and healed (null while active). */
  readonly start: number;
  end: number | null;
  readonly plannedMs: number;
  /** Set when the leader was wanted but none was known: the seeded fallback was used. */
  readonly note?: string;
  /** Set when injecting or healing went wrong (the run goes on; the report shows it). */
  error?: string;
  /** A membership turn's change, step by step (kind `membership` only). */
  readonly membership?: MembershipChange;
}

export interface NemesisMembership {
  /** Carries out membership turns; null when the run has none. */
  readonly changes: MembershipNemesis | null;
  /**
   * The node a plan's node id means now (member-slots.ts): after n1 was replaced by n4, "n1" is n4.
   * Identity when the membership never changes.
   */
  readonly resolve: (planned: string) => string;
}

/** How long the bookkeeping at the end of a run may take (reading the membership, retries included). */
const FINAL_RECONCILE_MS = 10_000;

/** How long a *-leader fault waits for a leader to show up before it takes its fallback node. */
const LEADER_LOOKUP_MS = 3000;

export class Nemesis {
  readonly records: FaultRecord[] = [];
  private active: FaultRecord | null = null;
  private readonly stopController = new AbortController();
  private running: Promise<void> = Promise.resolve();

  constructor(
    private readonly cluster: ChaosCluster,
    private readonly network: NetworkFaults,
    private readonly schedule: readonly FaultPlan[],
    private readonly clock: RunClock,
    private readonly log: (line: string) => void,
    private readonly membership: NemesisMembership = { changes: null, resolve: (id) => id },
  ) {}

  /** The fault in force right now, if any. */
  get current(): FaultRecord | null {
    return this.active;
  }

  /** Starts executing the schedule; no fault starts that could not be healed by `endAt`. */
  start(endAt: number): void {
    this.running = this.run(endAt);
  }

  /**
   * Stops injecting and waits until the active fault, if any, is healed (a membership change in
   * progress gives up at its next step); then makes the run's members those of the cluster, so that
   * recovery and the final reads use the current members.
   */
  async stop(): Promise<void> {
    this.stopController.abort();
    await this.running;
    const changes = this.membership.changes;
    if (changes !== null) {
      const problem = await changes.reconcile(AbortSignal.timeout(FINAL_RECONCILE_MS), true);
      if (problem !== null) this.log(`membership at the end of the run: ${problem}`);
    }
  }

  private async run(endAt: number): Promise<void> {
    const signal = this.stopController.signal;
    for (const plan of this.schedule) {
      await sleep(plan.gapMs, signal);
      if (signal.aborted || this.clock.now() + plan.durationMs > endAt) return;
      if (plan.target.type === 'membership') {
        await this.changeMembership(plan, plan.target, signal);
        continue;
      }
      const heal = await this.inject(plan);
      await sleep(plan.durationMs, signal);
      await heal();
    }
  }

  /** Injects `plan`'s fault, records it, and returns what heals it. */
  private async inject(plan: FaultPlan): Promise<() => Promise<void>> {
    const { nodes, note } = await this.resolveTargets(plan);
    const label = `${plan.kind} ${describe(plan, nodes, this.cluster.ids)}`;
    const record: FaultRecord = {
      index: plan.index,
      kind: plan.kind,
      label,
      nodes,
      start: this.clock.now(),
      end: null,
      plannedMs: plan.durationMs,
      ...(note === undefined ? {} : { note }),
    };
    this.records.push(record);
    this.active = record;
    this.log(
      `fault #${plan.index}: ${label} for ${(plan.durationMs / 1000).toFixed(1)} s${note === undefined ? '' : ` (${note})`}`,
    );
    let heal: () => Promise<void>;
    try {
      heal = await this.apply(plan, nodes);
    } catch (error) {
      record.error = `inject: ${(error as Error).message}`;
      this.log(`fault #${plan.index}: could not inject: ${(error as Error).message}`);
      heal = () => this.healEverything();
    }
    return async () => {
      try {
        await heal();
      } catch (error) {
        record.error = `${record.error === undefined ? '' : `${record.error}; `}heal: ${(error as Error).message}`;
        this.log(`fault #${plan.index}: healing failed: ${(error as Error).message}`);
      }
      record.end = this.clock.now();
      this.active = null;
    };
  }

  /** A membership turn: recorded like a fault, from the start of its change to its end. */
  private async changeMembership(plan: FaultPlan, target: MembershipPlan, signal: AbortSignal): Promise<void> {
    const changes = this.membership.changes;
    if (changes === null) return;
    const change = await changes.begin(target, signal);
    const record: FaultRecord = {
      index: plan.index,
      kind: plan.kind,
      label: `membership ${describeChange(change)}`,
      nodes: [change.victim, change.newcomer].filter((id): id is string => id !== null),
      start: this.clock.now(),
      end: null,
      plannedMs: plan.durationMs,
      membership: change,
    };
    this.records.push(record);
    this.active = record;
    this.log(`fault #${plan.index}: ${record.label}`);
    await changes.run(change, 'transferFirst' in target && target.transferFirst, signal);
    record.end = this.clock.now();
    this.active = null;
    this.log(
      `fault #${plan.index}: ${change.outcome === 'done' ? 'done' : `gave up: ${change.gaveUp ?? '?'}`}` +
        `${change.voters === null ? '' : `; voters ${change.voters.join(',')}`}`,
    );
  }

  private async resolveTargets(plan: FaultPlan): Promise<{ nodes: string[]; note?: string }> {
    const target = plan.target;
    const now = this.membership.resolve;
    switch (target.type) {
      case 'node':
        return { nodes: [now(target.node)] };
      case 'leader': {
        const leader = await this.cluster.findLeader(LEADER_LOOKUP_MS);
        const fallback = now(target.fallback);
        return leader === null
          ? { nodes: [fallback], note: `no leader known: hit ${fallback} instead` }
          : { nodes: [leader] };
      }
      case 'all':
        return { nodes: this.cluster.ids };
      case 'split':
        return { nodes: [...new Set(target.minority.map(now))] };
      case 'link':
        return { nodes: [now(target.a), now(target.b)] };
      case 'oneway':
        return { nodes: [now(target.from), now(target.to)] };
      case 'membership':
        throw new Error('a membership plan is no fault'); // run() hands it to changeMembership
    }
  }

  private async apply(plan: FaultPlan, nodes: readonly string[]): Promise<() => Promise<void>> {
    const cluster = this.cluster;
    switch (plan.kind) {
      case 'kill-random':
      case 'kill-leader':
      case 'kill-all':
        await Promise.all(nodes.map((id) => cluster.kill(id)));
        return async () => {
          await Promise.all(nodes.map((id) => cluster.restart(id)));
        };
      case 'pause-random':
      case 'pause-leader':
        for (const id of nodes) cluster.pause(id);
        return async () => {
          for (const id of nodes) cluster.resume(id);
        };
      case 'partition-leader':
      case 'partition-split':
        return this.cut(isolate(nodes, cluster.ids));
      case 'partition-link':
        return this.cut(isolate([nodes[0]!], [nodes[0]!, nodes[1]!]));
      case 'partition-oneway':
        return this.cut([{ from: nodes[0]!, to: nodes[1]! }]);
      case 'membership':
        throw new Error('a membership plan is no fault'); // run() hands it to changeMembership
    }
  }

  private async cut(cuts: DirectedCut[]): Promise<() => Promise<void>> {
    await this.network.apply(cuts);
    return () => this.network.apply([]);
  }

  /** Undo anything a half-injected fault may have left. */
  private async healEverything(): Promise<void> {
    await this.cluster.reviveAll();
    await this.network.apply([]);
  }
}

function describe(plan: FaultPlan, nodes: readonly string[], all: readonly string[]): string {
  switch (plan.target.type) {
    case 'link':
      return `${nodes[0]}<->${nodes[1]}`;
    case 'oneway':
      return `${nodes[0]}->${nodes[1]}`;
    case 'split':
      return `{${nodes.join(',')}}|{${all.filter((id) => !nodes.includes(id)).join(',')}}`;
    case 'all':
      return 'all nodes';
    default:
      return nodes.join(',');
  }
}
