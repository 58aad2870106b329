// The `membership` nemesis: membership changes made the way an operator makes them, through the
// admin API, while the clients keep working. A turn replaces a voter (remove it, stop it, add a node
// with a new id as a learner, start it with --join, promote it once it has caught up), grows the
// cluster by one voter, or shrinks it back. Turns take their place in the fault schedule (nemesis.ts),
// so one change or one fault is in force at a time.
//
// Every step is bounded (retries included); a turn that cannot finish a step in time gives up and
// says where. Two rules keep a turn that gives up from harming the cluster:
//  - a process is stopped only once the cluster's membership no longer has it (the removal was
//    applied, or the node was never added), so the runner never leaves a member dead behind it.
//    With the nodes' own would_lose_quorum refusal this never leaves fewer live voters than a majority;
//  - every turn starts by reading the membership and making the run's bookkeeping (processes, client
//    targets, places) match it, so a step whose answer was lost (the change may have been applied
//    anyway) is accounted for at the next turn; a place left vacant is filled before anything else.
import { describeAnswer, type AdminAnswer, type AdminMethod } from './admin-client.js';
import type { NodeState } from './chaos-cluster.js';
import type { ClientTargets } from './client-targets.js';
import { sleep, type RunClock } from './clock.js';
import type { MemberSlots } from './member-slots.js';
import type { MembershipAction, MembershipChange, MembershipStepName } from './membership-change.js';
import type { MembershipPlan } from './schedule.js';

/** What a turn needs of the run's processes (ChaosCluster; a fake in the unit tests). */
export interface MemberProcesses {
  /** Member processes and joiners not started yet: not the retired ones. */
  memberIds(): string[];
  state(id: string): NodeState;
  /** Waits (bounded) for a leader; null if none shows up in time. */
  findLeader(timeoutMs: number): Promise<string | null>;
  /** Prepares a new node that joins through `via`: its addresses. */
  addJoiner(id: string, via: string): Promise<{ clientUrl: string; peerUrl: string }>;
  start(id: string): void;
  /** The node was promoted: later restarts start from its data dir. */
  joined(id: string): void;
  /** Stops the node for good (it is no member). */
  retire(id: string): Promise<void>;
}

/** One admin request to `node`; never throws (no answer is status 0). */
export type AdminCall = (
  node: string,
  method: AdminMethod,
  path: string,
  body: unknown,
  timeoutMs: number,
  signal: AbortSignal,
) => Promise<AdminAnswer>;

export interface MembershipBounds {
  /** Each admin step (transfer, remove, add, undo, reading the membership), retries included. */
  readonly stepMs: number;
  /** From starting the new node to its promotion: the join, its snapshot, catching up. */
  readonly catchUpMs: number;
  /** Pause between two attempts of a step. */
  readonly retryMs: number;
  /** One request's deadline. */
  readonly requestMs: number;
  /** How long a turn waits for a leader to show up when it needs to know it. */
  readonly leaderLookupMs: number;
}

export const MEMBERSHIP_BOUNDS: MembershipBounds = {
  stepMs: 10_000,
  catchUpMs: 20_000,
  retryMs: 250,
  requestMs: 5000,
  leaderLookupMs: 3000,
};

export interface MembershipDeps {
  readonly processes: MemberProcesses;
  readonly admin: AdminCall;
  readonly targets: ClientTargets;
  readonly slots: MemberSlots;
  readonly clock: RunClock;
  readonly log: (line: string) => void;
  /** The first nodes' ids (n1..nN): new nodes are numbered after them. */
  readonly firstIds: readonly string[];
  readonly bounds?: MembershipBounds;
}

interface MemberView {
  readonly id: string;
  readonly role: string;
}

type Attempt<T> = { readonly done: T } | { readonly retry: string } | { readonly fail: string };
type Outcome<T> =
  { readonly ok: true; readonly value: T; readonly tries: string } | { readonly ok: false; readonly why: string };

export class MembershipNemesis {
  private nextNumber: number;
  /** Every id the run's processes or the cluster's membership ever had: a removed id is never reused. */
  private readonly seenIds = new Set<string>();
  private readonly bounds: MembershipBounds;

  constructor(private readonly deps: MembershipDeps) {
    this.bounds = deps.bounds ?? MEMBERSHIP_BOUNDS;
    this.nextNumber = deps.firstIds.length + 1;
  }

  /**
   * Decides what this turn does and to whom: reads the membership first (and accounts for what
   * earlier turns left), then the plan's action, adjusted so the voters stay between the first
   * count and one more (a grow while a voter is extra shrinks instead; a shrink with none extra
   * replaces instead), and a vacant place is refilled before anything else.
   */
  async begin(plan: MembershipPlan, signal: AbortSignal): Promise<MembershipChange> {
    const problem = await this.reconcile(signal, false);
    const action = this.actionFor(plan);
    if (problem !== null) {
      return {
        action,
        victim: null,
        victimLed: false,
        newcomer: null,
        steps: [],
        outcome: 'gave-up',
        gaveUp: problem,
        voters: null,
      };
    }
    const needsVictim = action === 'replace' || action === 'shrink';
    const leader = await this.deps.processes.findLeader(this.bounds.leaderLookupMs);
    let victim: string | null = null;
    if (needsVictim) {
      const choice = plan.action === 'grow' ? { type: 'node' as const, node: this.deps.firstIds.at(-1)! } : plan.victim;
      victim =
        choice.type === 'leader' && leader !== null
          ? leader
          : this.deps.slots.resolve(choice.type === 'leader' ? choice.fallback : choice.node);
    }
    return {
      action,
      victim,
      victimLed: victim !== null && victim === leader,
      newcomer: action === 'shrink' ? null : this.newId(),
      steps: [],
      outcome: 'running',
      voters: null,
    };
  }

  /** Runs the change `begin` decided; records every step on it. Never throws. */
  async run(change: MembershipChange, transferFirst: boolean, signal: AbortSignal): Promise<void> {
    if (change.outcome !== 'running') return;
    try {
      await this.steps(change, transferFirst, signal);
    } catch (error) {
      this.giveUp(change, `runner error: ${(error as Error).message}`);
    }
    if (!signal.aborted) change.voters = await this.readVoters(signal).catch(() => null);
  }

  private async steps(change: MembershipChange, transferFirst: boolean, signal: AbortSignal): Promise<void> {
    if (change.victim !== null) {
      if (change.victimLed && transferFirst) await this.transferAway(change, change.victim, signal);
      if (!(await this.removeVictim(change, change.victim, signal))) return;
    }
    if (change.newcomer === null) change.outcome = 'done';
    else await this.addNewcomer(change, change.newcomer, signal);
  }

  /**
   * Makes the run's bookkeeping match the cluster's membership: a process the membership no longer
   * has (a removal applied although its answer was lost, a joiner never added) is retired; a voter
   * the places do not know (a promotion whose answer was lost) takes a place. At a turn's start
   * (`final` false) learners left by a turn that gave up are removed as well; at the end of the run
   * they stay (a learner serves reads). Returns why it could not, or null.
   */
  async reconcile(signal: AbortSignal, final: boolean): Promise<string | null> {
    const read = await this.readMembers(signal, this.bounds.stepMs);
    if (!read.ok) return `could not read the membership: ${read.why}`;
    const roles = new Map(read.value.map((m) => [m.id, m.role]));
    const { processes, targets, slots } = this.deps;
    for (const id of [...roles.keys(), ...processes.memberIds()]) this.seenIds.add(id);
    for (const id of processes.memberIds()) {
      if (roles.has(id)) continue;
      this.deps.log(`membership: ${id} is no member of the cluster: stopping it for good`);
      targets.remove(id);
      slots.vacated(id, false);
      await processes.retire(id);
    }
    const ours = new Set(processes.memberIds());
    for (const [id, role] of roles) {
      if (!ours.has(id)) continue;
      if (role === 'voter' && !slots.holds(id)) {
        slots.filled(id);
        processes.joined(id);
      }
      if (role === 'learner' && !final) {
        this.deps.log(`membership: removing ${id}, a learner an earlier change left behind`);
        targets.remove(id);
        const removed = await this.untilDone(signal, this.bounds.stepMs, (attempt, remaining) =>
          this.removal(id, attempt, [id], remaining, signal),
        );
        if (!removed.ok) return `could not remove the learner ${id}: ${removed.why}`;
        await processes.retire(id);
      }
    }
    return null;
  }

  /** The next unused id: numbered after the first nodes, never one seen before. */
  private newId(): string {
    for (const id of this.deps.processes.memberIds()) this.seenIds.add(id);
    let id: string;
    do id = `n${this.nextNumber++}`;
    while (this.seenIds.has(id));
    this.seenIds.add(id);
    return id;
  }

  private actionFor(plan: MembershipPlan): MembershipAction {
    const slots = this.deps.slots;
    if (slots.vacancies > 0) return 'refill';
    if (plan.action === 'grow') return slots.extraCount > 0 ? 'shrink' : 'grow';
    if (plan.action === 'shrink') return slots.extraCount > 0 ? 'shrink' : 'replace';
    return 'replace';
  }

  /** Leadership away from `victim` before its removal. A failure is recorded, and the removal goes on. */
  private async transferAway(change: MembershipChange, victim: string, signal: AbortSignal): Promise<void> {
    const result = await this.untilDone(signal, this.bounds.stepMs, async (attempt, remaining) => {
      const answer = await this.call(attempt, [], 'POST', '/leader/transfer', {}, remaining, signal);
      const leader = (answer.body as { leader?: unknown } | null)?.leader;
      if (answer.status === 200 && typeof leader === 'string' && leader !== victim) return { done: leader };
      return { retry: describeAnswer(answer) };
    });
    this.step(change, 'transfer', result.ok ? result.value : victim, result.ok, result.ok ? result.tries : result.why);
  }

  /** DELETE /members/<victim>, then its process stopped. False when the turn gave up. */
  private async removeVictim(change: MembershipChange, victim: string, signal: AbortSignal): Promise<boolean> {
    const result = await this.untilDone(signal, this.bounds.stepMs, (attempt, remaining) =>
      this.removal(victim, attempt, [victim], remaining, signal),
    );
    this.step(change, 'remove', victim, result.ok, result.ok ? result.tries : result.why);
    if (!result.ok) {
      this.giveUp(change, `remove ${victim}: ${result.why}`);
      return false;
    }
    this.deps.targets.remove(victim);
    this.deps.slots.vacated(victim, change.action === 'shrink');
    await this.deps.processes.retire(victim);
    this.step(change, 'stop', victim, true);
    return true;
  }

  /** One attempt of DELETE /members/<id>: an unknown member (404) was removed by an earlier attempt. */
  private async removal(
    id: string,
    attempt: number,
    avoid: readonly string[],
    remaining: number,
    signal: AbortSignal,
  ): Promise<Attempt<null>> {
    const answer = await this.call(attempt, avoid, 'DELETE', `/members/${id}`, undefined, remaining, signal);
    if (answer.status === 200 || answer.status === 404) return { done: null };
    return retryable(answer) ? { retry: describeAnswer(answer) } : { fail: describeAnswer(answer) };
  }

  /** Adds `newcomer` as a learner, starts it with --join, promotes it; undoes the add if it cannot be promoted. */
  private async addNewcomer(change: MembershipChange, newcomer: string, signal: AbortSignal): Promise<void> {
    const { processes, targets, slots } = this.deps;
    const leader = await processes.findLeader(this.bounds.leaderLookupMs);
    const running = processes.memberIds().filter((id) => processes.state(id) === 'running');
    const via = leader ?? running[0];
    if (via === undefined) {
      this.giveUp(change, 'add: no running member to join through');
      return;
    }
    const addresses = await processes.addJoiner(newcomer, via);
    const added = await this.untilDone(signal, this.bounds.stepMs, async (attempt, remaining) => {
      const answer = await this.call(
        attempt,
        [newcomer],
        'POST',
        '/members',
        { id: newcomer, ...addresses },
        remaining,
        signal,
      );
      if (answer.status === 200) return { done: null };
      // An earlier attempt may have been applied: then the id is in use, by this very node.
      if (answer.status === 409 && answer.error === 'conflict') {
        const members = await this.readMembers(signal, this.bounds.requestMs);
        if (members.ok && members.value.some((m) => m.id === newcomer)) return { done: null };
      }
      return retryable(answer) ? { retry: describeAnswer(answer) } : { fail: describeAnswer(answer) };
    });
    this.step(change, 'add', newcomer, added.ok, added.ok ? added.tries : added.why);
    if (!added.ok) {
      // Not started: if the add was applied after all, the next turn removes the learner.
      this.giveUp(change, `add ${newcomer}: ${added.why}`);
      return;
    }
    processes.start(newcomer);
    targets.add(newcomer, addresses.clientUrl);
    this.step(change, 'start', newcomer, true, `--join ${via}`);
    const promoted = await this.untilDone(signal, this.bounds.catchUpMs, async (attempt, remaining) => {
      const answer = await this.call(
        attempt,
        [newcomer],
        'POST',
        `/members/${newcomer}/promote`,
        undefined,
        remaining,
        signal,
      );
      if (answer.status === 200 || (answer.status === 409 && answer.error === 'not_a_learner')) return { done: null };
      return retryable(answer) ? { retry: describeAnswer(answer) } : { fail: describeAnswer(answer) };
    });
    this.step(change, 'promote', newcomer, promoted.ok, promoted.ok ? promoted.tries : promoted.why);
    if (promoted.ok) {
      processes.joined(newcomer);
      slots.filled(newcomer);
      change.outcome = 'done';
      return;
    }
    this.giveUp(change, `promote ${newcomer}: ${promoted.why}`);
    if (signal.aborted) return; // the run's end: the learner stays, a member that serves reads
    targets.remove(newcomer);
    const undone = await this.untilDone(signal, this.bounds.stepMs, (attempt, remaining) =>
      this.removal(newcomer, attempt, [newcomer], remaining, signal),
    );
    this.step(change, 'undo', newcomer, undone.ok, undone.ok ? undone.tries : undone.why);
    if (undone.ok) await processes.retire(newcomer);
    // Still a member (learner, or a voter if the promotion was applied after all): it keeps running
    // and serving; the next turn's reconcile decides.
    else targets.add(newcomer, addresses.clientUrl);
  }

  private async readMembers(signal: AbortSignal, boundMs: number): Promise<Outcome<MemberView[]>> {
    return this.untilDone(signal, boundMs, async (attempt, remaining) => {
      const answer = await this.call(attempt, [], 'GET', '/members', undefined, remaining, signal);
      const members = (answer.body as { members?: unknown } | null)?.members;
      if (answer.status === 200 && Array.isArray(members)) return { done: members as MemberView[] };
      return { retry: describeAnswer(answer) };
    });
  }

  private async readVoters(signal: AbortSignal): Promise<string[] | null> {
    const read = await this.readMembers(signal, this.bounds.requestMs);
    return read.ok ? read.value.filter((m) => m.role === 'voter').map((m) => m.id) : null;
  }

  /**
   * One admin request, to the leader when one is known (every other attempt, in case that is stale)
   * or else to the running members in turn, never to a node in `avoid` unless it is the only one.
   */
  private async call(
    attempt: number,
    avoid: readonly string[],
    method: AdminMethod,
    path: string,
    body: unknown,
    remaining: number,
    signal: AbortSignal,
  ): Promise<AdminAnswer> {
    const { processes } = this.deps;
    const running = processes.memberIds().filter((id) => processes.state(id) === 'running');
    const preferred = running.filter((id) => !avoid.includes(id));
    const candidates = preferred.length > 0 ? preferred : running;
    if (candidates.length === 0) return { status: 0, error: 'no running member', body: null };
    let node = candidates[attempt % candidates.length]!;
    if (attempt % 2 === 0) {
      const leader = await processes.findLeader(0);
      if (leader !== null && candidates.includes(leader)) node = leader;
    }
    return this.deps.admin(node, method, path, body, Math.min(this.bounds.requestMs, remaining), signal);
  }

  /** Attempts until done, failed, the bound, or the run's end; says what the retried answers were. */
  private async untilDone<T>(
    signal: AbortSignal,
    boundMs: number,
    attempt: (attempt: number, remainingMs: number) => Promise<Attempt<T>>,
  ): Promise<Outcome<T>> {
    const clock = this.deps.clock;
    const deadline = clock.now() + boundMs;
    const retries = new Map<string, number>();
    const seen = (): string => [...retries].map(([answer, n]) => `${answer} ×${n}`).join(', ');
    for (let i = 0; ; i++) {
      if (signal.aborted) return { ok: false, why: 'the run ended' };
      const remaining = deadline - clock.now();
      if (remaining <= 0) return { ok: false, why: `not done within ${boundMs / 1000} s (${seen()})` };
      const result = await attempt(i, remaining);
      if ('done' in result) return { ok: true, value: result.done, tries: seen() };
      if ('fail' in result) return { ok: false, why: result.fail };
      retries.set(result.retry, (retries.get(result.retry) ?? 0) + 1);
      await sleep(Math.min(this.bounds.retryMs, Math.max(0, deadline - clock.now())), signal);
    }
  }

  private step(change: MembershipChange, step: MembershipStepName, node: string, ok: boolean, detail = ''): void {
    change.steps.push({ step, node, at: this.deps.clock.now(), ok, ...(detail === '' ? {} : { detail }) });
    this.deps.log(`membership: ${step} ${node}${ok ? '' : ' FAILED'}${detail === '' ? '' : ` (${detail})`}`);
  }

  private giveUp(change: MembershipChange, why: string): void {
    change.outcome = 'gave-up';
    change.gaveUp = why;
  }
}

/** Answers worth another attempt: no answer, a 5xx, or a 409 that says "later". */
function retryable(answer: AdminAnswer): boolean {
  if (answer.status === 0 || answer.status >= 500) return true;
  return (
    answer.status === 409 &&
    (answer.error === 'change_in_progress' || answer.error === 'would_lose_quorum' || answer.error === 'not_caught_up')
  );
}
