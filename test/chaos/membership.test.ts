// The membership nemesis against a fake cluster: an in-memory membership behind the admin routes
// the nemesis uses (GET /members, POST /members, promote, DELETE, leader transfer), with answers
// that can be refused, lost after being applied, or never come. The fake checks the one rule a
// turn must never break: a process is stopped only once the membership no longer has it.
import { describe, expect, it } from 'vitest';
import type { AdminAnswer, AdminMethod } from '../../scripts/harness/chaos/admin-client.js';
import type { NodeState } from '../../scripts/harness/chaos/chaos-cluster.js';
import { ClientTargets } from '../../scripts/harness/chaos/client-targets.js';
import { RunClock } from '../../scripts/harness/chaos/clock.js';
import { MemberSlots } from '../../scripts/harness/chaos/member-slots.js';
import { membershipCounts, type MembershipChange } from '../../scripts/harness/chaos/membership-change.js';
import {
  MembershipNemesis,
  type MembershipBounds,
  type MemberProcesses,
} from '../../scripts/harness/chaos/membership-nemesis.js';
import type { MembershipPlan } from '../../scripts/harness/chaos/schedule.js';

type Role = 'voter' | 'learner';

interface Behaviour {
  /** Promotions answered 409 not_caught_up before one succeeds (Infinity: never). */
  notCaughtUp: number;
  /** Removals answered 409 would_lose_quorum before one succeeds (Infinity: never). */
  wouldLoseQuorum: number;
  /** "METHOD path" of requests applied once and then answered with nothing (a lost answer). */
  loseAnswerOnce: Set<string>;
}

class FakeCluster implements MemberProcesses {
  readonly roles = new Map<string, Role>([
    ['n1', 'voter'],
    ['n2', 'voter'],
    ['n3', 'voter'],
  ]);
  readonly states = new Map<string, NodeState>([
    ['n1', 'running'],
    ['n2', 'running'],
    ['n3', 'running'],
  ]);
  leader = 'n1';
  term = 1;
  readonly removed = new Set<string>();
  readonly events: string[] = [];
  /** Broken rules, e.g. a member's process stopped: must stay empty. */
  readonly violations: string[] = [];
  readonly behaviour: Behaviour = { notCaughtUp: 0, wouldLoseQuorum: 0, loseAnswerOnce: new Set() };

  memberIds(): string[] {
    return [...this.states].filter(([, state]) => state !== 'retired').map(([id]) => id);
  }

  state(id: string): NodeState {
    return this.states.get(id) ?? 'killed';
  }

  findLeader(): Promise<string | null> {
    return Promise.resolve(this.roles.get(this.leader) === 'voter' ? this.leader : null);
  }

  addJoiner(id: string, via: string): Promise<{ clientUrl: string; peerUrl: string }> {
    this.events.push(`prepare ${id} via ${via}`);
    this.states.set(id, 'pending');
    return Promise.resolve({ clientUrl: `http://${id}.client`, peerUrl: `http://${id}.peer` });
  }

  start(id: string): void {
    if (this.states.get(id) !== 'pending') this.violations.push(`start of ${id} in state ${this.states.get(id)}`);
    this.events.push(`start ${id}`);
    this.states.set(id, 'running');
  }

  joined(id: string): void {
    this.events.push(`joined ${id}`);
  }

  retire(id: string): Promise<void> {
    if (this.roles.has(id)) this.violations.push(`${id} stopped while a ${this.roles.get(id)}`);
    this.events.push(`retire ${id}`);
    this.states.set(id, 'retired');
    return Promise.resolve();
  }

  voters(): string[] {
    return [...this.roles].filter(([, role]) => role === 'voter').map(([id]) => id);
  }

  readonly admin = (node: string, method: AdminMethod, path: string, body: unknown): Promise<AdminAnswer> => {
    if (this.states.get(node) !== 'running') return answer(0, 'ECONNREFUSED');
    const result = this.route(method, path, body);
    const key = `${method} ${path}`;
    if (result.status === 200 && this.behaviour.loseAnswerOnce.delete(key)) return answer(0, 'ECONNRESET');
    return Promise.resolve(result);
  };

  private route(method: AdminMethod, path: string, body: unknown): AdminAnswer {
    const members = (): AdminAnswer => ({
      status: 200,
      error: null,
      body: { members: [...this.roles].map(([id, role]) => ({ id, role })) },
    });
    if (method === 'GET' && path === '/members') return members();
    if (method === 'POST' && path === '/leader/transfer') {
      const to = this.voters().find((id) => id !== this.leader && this.states.get(id) === 'running');
      if (to === undefined) return { status: 503, error: 'transfer_failed', body: null };
      this.events.push(`transfer ${this.leader} -> ${to}`);
      this.leader = to;
      this.term++;
      return { status: 200, error: null, body: { leader: to, term: this.term } };
    }
    if (method === 'POST' && path === '/members') {
      const { id } = body as { id: string };
      if (this.roles.has(id) || this.removed.has(id)) return { status: 409, error: 'conflict', body: null };
      this.roles.set(id, 'learner');
      this.events.push(`add ${id}`);
      return members();
    }
    const promote = /^\/members\/([^/]+)\/promote$/.exec(path);
    if (method === 'POST' && promote !== null) {
      const id = promote[1]!;
      const role = this.roles.get(id);
      if (role === undefined) return { status: 404, error: 'unknown_member', body: null };
      if (role === 'voter') return { status: 409, error: 'not_a_learner', body: null };
      if (this.states.get(id) !== 'running' || this.behaviour.notCaughtUp > 0) {
        this.behaviour.notCaughtUp--;
        return { status: 409, error: 'not_caught_up', body: null };
      }
      this.roles.set(id, 'voter');
      this.events.push(`promote ${id}`);
      return members();
    }
    const remove = /^\/members\/([^/]+)$/.exec(path);
    if (method === 'DELETE' && remove !== null) {
      const id = remove[1]!;
      if (!this.roles.has(id)) return { status: 404, error: 'unknown_member', body: null };
      if (this.behaviour.wouldLoseQuorum > 0) {
        this.behaviour.wouldLoseQuorum--;
        return { status: 409, error: 'would_lose_quorum', body: null };
      }
      this.roles.delete(id);
      this.removed.add(id);
      this.events.push(`remove ${id}`);
      // A leader that applies its own removal steps down; another voter takes over.
      if (id === this.leader) {
        this.leader = this.voters()[0]!;
        this.term++;
      }
      return members();
    }
    return { status: 404, error: 'not_found', body: null };
  }
}

function answer(status: number, error: string): Promise<AdminAnswer> {
  return Promise.resolve({ status, error, body: null });
}

const BOUNDS: MembershipBounds = { stepMs: 300, catchUpMs: 300, retryMs: 2, requestMs: 100, leaderLookupMs: 0 };
const FIRST = ['n1', 'n2', 'n3'];

function setup(): { fake: FakeCluster; nemesis: MembershipNemesis; targets: ClientTargets; slots: MemberSlots } {
  const fake = new FakeCluster();
  const targets = new ClientTargets(new Map(FIRST.map((id) => [id, `http://${id}.client`])));
  const slots = new MemberSlots(FIRST);
  const nemesis = new MembershipNemesis({
    processes: fake,
    admin: fake.admin,
    targets,
    slots,
    clock: new RunClock(),
    log: () => undefined,
    firstIds: FIRST,
    bounds: BOUNDS,
  });
  return { fake, nemesis, targets, slots };
}

const replaceNode = (node: string, transferFirst = false): MembershipPlan => ({
  action: 'replace',
  victim: { type: 'node', node },
  transferFirst,
});
const replaceLeader = (transferFirst: boolean): MembershipPlan => ({
  action: 'replace',
  victim: { type: 'leader', fallback: 'n3' },
  transferFirst,
});

async function turn(nemesis: MembershipNemesis, plan: MembershipPlan, signal = new AbortController().signal) {
  const change = await nemesis.begin(plan, signal);
  await nemesis.run(change, 'transferFirst' in plan && plan.transferFirst, signal);
  return change;
}

const stepsOf = (change: MembershipChange): string[] =>
  change.steps.map((s) => `${s.step} ${s.node}${s.ok ? '' : ' x'}`);

describe('the membership nemesis', () => {
  it('replaces a follower: removes it, stops it, adds a new id as a learner, starts it with --join, promotes it', async () => {
    const { fake, nemesis, targets, slots } = setup();
    const change = await turn(nemesis, replaceNode('n2'));
    expect(change.outcome).toBe('done');
    expect(change).toMatchObject({ action: 'replace', victim: 'n2', victimLed: false, newcomer: 'n4' });
    expect(stepsOf(change)).toEqual(['remove n2', 'stop n2', 'add n4', 'start n4', 'promote n4']);
    // Removed before it was stopped, stopped before the new node was even prepared.
    expect(fake.events).toEqual([
      'remove n2',
      'retire n2',
      'prepare n4 via n1',
      'add n4',
      'start n4',
      'promote n4',
      'joined n4',
    ]);
    expect(change.voters).toEqual(['n1', 'n3', 'n4']);
    // The clients follow: n2 is no target, n4 is; later faults that name n2 hit n4.
    expect(targets.ids).toEqual(['n1', 'n3', 'n4']);
    expect(targets.urls.get('n4')).toBe('http://n4.client');
    expect(slots.resolve('n2')).toBe('n4');
    expect(fake.violations).toEqual([]);
  });

  it('replaces the leader either way: after handing leadership to another voter, or removing it while it leads', async () => {
    const transferred = setup();
    const first = await turn(transferred.nemesis, replaceLeader(true));
    expect(first).toMatchObject({ victim: 'n1', victimLed: true, outcome: 'done' });
    expect(stepsOf(first)).toEqual(['transfer n2', 'remove n1', 'stop n1', 'add n4', 'start n4', 'promote n4']);
    expect(transferred.fake.events.slice(0, 2)).toEqual(['transfer n1 -> n2', 'remove n1']);

    const removedWhileLeading = setup();
    const second = await turn(removedWhileLeading.nemesis, replaceLeader(false));
    expect(second).toMatchObject({ victim: 'n1', victimLed: true, outcome: 'done' });
    expect(stepsOf(second)).toEqual(['remove n1', 'stop n1', 'add n4', 'start n4', 'promote n4']);
    expect(removedWhileLeading.fake.events).not.toContain('transfer n1 -> n2');
    for (const { fake } of [transferred, removedWhileLeading]) {
      expect(fake.voters().sort()).toEqual(['n2', 'n3', 'n4']);
      expect(fake.violations).toEqual([]);
    }
  });

  it('never uses an id twice: every new node gets the next number', async () => {
    const { fake, nemesis, slots } = setup();
    await turn(nemesis, replaceNode('n1'));
    const second = await turn(nemesis, replaceNode('n1')); // n1's place now holds n4
    expect(second).toMatchObject({ victim: 'n4', newcomer: 'n5', outcome: 'done' });
    expect(fake.voters().sort()).toEqual(['n2', 'n3', 'n5']);
    expect([...fake.removed].sort()).toEqual(['n1', 'n4']);
    expect(slots.resolve('n1')).toBe('n5');
  });

  it('grows by one voter, and the next turn shrinks back (whatever it was planned as)', async () => {
    const { fake, nemesis, targets, slots } = setup();
    const grow = await turn(nemesis, { action: 'grow' });
    expect(grow).toMatchObject({ action: 'grow', victim: null, newcomer: 'n4', outcome: 'done' });
    expect(stepsOf(grow)).toEqual(['add n4', 'start n4', 'promote n4']);
    expect(fake.voters()).toEqual(['n1', 'n2', 'n3', 'n4']);
    expect(slots.size).toBe(4);

    // A second grow would make a 5th voter: the nemesis keeps to one extra, and shrinks instead.
    const shrink = await turn(nemesis, { action: 'grow' });
    expect(shrink).toMatchObject({ action: 'shrink', newcomer: null, outcome: 'done' });
    expect(stepsOf(shrink)).toEqual([`remove ${shrink.victim}`, `stop ${shrink.victim}`]);
    expect(fake.voters()).toHaveLength(3);
    expect(slots.size).toBe(3);
    expect(slots.extraCount).toBe(0);
    expect(targets.ids.sort()).toEqual(fake.voters().sort());
    // A shrink with no extra voter replaces instead.
    const replace = await turn(nemesis, {
      action: 'shrink',
      victim: { type: 'node', node: 'n2' },
      transferFirst: false,
    });
    expect(replace).toMatchObject({ action: 'replace', outcome: 'done' });
    expect(fake.voters()).toHaveLength(3);
    expect(fake.violations).toEqual([]);
  });

  it('gives up when the new node never catches up: removes the learner again, and the next turn refills the place', async () => {
    const { fake, nemesis, targets, slots } = setup();
    fake.behaviour.notCaughtUp = Infinity;
    const change = await turn(nemesis, replaceNode('n3'));
    expect(change.outcome).toBe('gave-up');
    expect(change.gaveUp).toMatch(/^promote n4: not done within 0.3 s \(409 not_caught_up ×\d+\)$/);
    expect(stepsOf(change)).toEqual(['remove n3', 'stop n3', 'add n4', 'start n4', 'promote n4 x', 'undo n4']);
    // Two voters, both live: a majority of the configuration. Nothing dead is left a member.
    expect(fake.voters()).toEqual(['n1', 'n2']);
    expect(fake.state('n4')).toBe('retired');
    expect(targets.ids).toEqual(['n1', 'n2']);
    expect(slots.vacancies).toBe(1);

    fake.behaviour.notCaughtUp = 2;
    const refill = await turn(nemesis, { action: 'grow' });
    expect(refill).toMatchObject({ action: 'refill', victim: null, newcomer: 'n5', outcome: 'done' });
    expect(fake.voters()).toEqual(['n1', 'n2', 'n5']);
    expect(slots.resolve('n3')).toBe('n5');
    expect(membershipCounts([change, refill])).toEqual({ replace: 0, grow: 0, shrink: 0, refill: 1, gaveUp: 1 });
    expect(fake.violations).toEqual([]);
  });

  it('gives up when the removal is refused for its whole bound, and changes nothing', async () => {
    const { fake, nemesis, targets } = setup();
    fake.behaviour.wouldLoseQuorum = Infinity;
    const change = await turn(nemesis, replaceNode('n2'));
    expect(change.outcome).toBe('gave-up');
    expect(change.gaveUp).toMatch(/^remove n2: not done within 0.3 s \(409 would_lose_quorum ×\d+\)$/);
    expect(stepsOf(change)).toEqual(['remove n2 x']);
    expect(fake.voters()).toEqual(['n1', 'n2', 'n3']);
    expect(fake.state('n2')).toBe('running');
    expect(targets.ids).toEqual(['n1', 'n2', 'n3']);
    expect(fake.events.filter((e) => e.startsWith('prepare'))).toEqual([]);
  });

  it('retries a step whose answer was lost after it was applied, and recognizes it as done', async () => {
    const { fake, nemesis } = setup();
    fake.behaviour.loseAnswerOnce = new Set(['DELETE /members/n2', 'POST /members', 'POST /members/n4/promote']);
    const change = await turn(nemesis, replaceNode('n2'));
    expect(change.outcome).toBe('done');
    expect(fake.behaviour.loseAnswerOnce.size).toBe(0);
    expect(change.steps.map((s) => s.detail ?? '')).toEqual([
      '0 ECONNRESET ×1', // then 404: the first attempt had removed it
      '',
      '0 ECONNRESET ×1', // then 409 conflict, and the membership lists it
      '--join n1',
      '0 ECONNRESET ×1', // then 409 not_a_learner
    ]);
    expect(fake.voters()).toEqual(['n1', 'n3', 'n4']);
    expect(fake.violations).toEqual([]);
  });

  it('starts each turn by matching the membership: a removed node still running is stopped, a learner left behind removed', async () => {
    const { fake, nemesis, targets, slots } = setup();
    // What an earlier turn could leave when its answers were lost: n2's removal applied but not
    // seen, and n4 added as a learner (and started) but never promoted.
    fake.roles.delete('n2');
    fake.removed.add('n2');
    fake.roles.set('n4', 'learner');
    fake.states.set('n4', 'running');
    targets.add('n4', 'http://n4.client');
    const change = await nemesis.begin({ action: 'grow' }, new AbortController().signal);
    expect(fake.state('n2')).toBe('retired');
    expect(fake.state('n4')).toBe('retired');
    expect(fake.roles.has('n4')).toBe(false);
    expect(targets.ids).toEqual(['n1', 'n3']);
    // n2's place is vacant: this turn refills it, whatever was planned.
    expect(slots.vacancies).toBe(1);
    expect(change).toMatchObject({ action: 'refill', newcomer: 'n5' });
    expect(fake.violations).toEqual([]);
  });

  it('at the end of the run gives up at once, leaving a learner that is a member running and a target', async () => {
    const { fake, nemesis, targets } = setup();
    fake.behaviour.notCaughtUp = Infinity;
    const stop = new AbortController();
    const change = await nemesis.begin(replaceNode('n2'), stop.signal);
    const running = nemesis.run(change, false, stop.signal);
    await new Promise((resolve) => setTimeout(resolve, 50));
    stop.abort();
    await running;
    expect(change.outcome).toBe('gave-up');
    expect(change.gaveUp).toBe('promote n4: the run ended');
    expect(fake.roles.get('n4')).toBe('learner');
    expect(fake.state('n4')).toBe('running');
    expect(targets.ids).toContain('n4');
    // The final bookkeeping keeps learners (they serve reads) and changes nothing here.
    expect(await nemesis.reconcile(new AbortController().signal, true)).toBeNull();
    expect(fake.state('n4')).toBe('running');
    expect(fake.violations).toEqual([]);
  });

  it('gives up, saying so, when the membership cannot be read', async () => {
    const { fake, nemesis } = setup();
    for (const id of ['n1', 'n2', 'n3']) fake.states.set(id, 'killed');
    const change = await turn(nemesis, replaceNode('n2'));
    expect(change.outcome).toBe('gave-up');
    expect(change.gaveUp).toMatch(
      /^could not read the membership: not done within 0.3 s \(0 no running member ×\d+\)$/,
    );
    expect(change.steps).toEqual([]);
  });
});

describe('places in the cluster', () => {
  it('maps the first ids to the nodes that replaced them, and fills vacancies before extra places', () => {
    const slots = new MemberSlots(['n1', 'n2', 'n3']);
    expect(slots.resolve('n2')).toBe('n2');
    slots.vacated('n2', false);
    expect(slots.vacancies).toBe(1);
    expect(slots.resolve('n2')).toBe('n3'); // vacant: the next occupied place
    slots.filled('n4');
    expect(slots.resolve('n2')).toBe('n4');
    slots.filled('n5'); // no vacancy: an extra place
    expect(slots.size).toBe(4);
    expect(slots.extraCount).toBe(1);
    expect(slots.placeOf('n5')).toBeNull();
    // A shrink that removes a node in a first place moves the extra node into it.
    slots.vacated('n1', true);
    expect(slots.resolve('n1')).toBe('n5');
    expect(slots.size).toBe(3);
    expect(slots.vacancies).toBe(0);
    expect(slots.resolve('n9')).toBe('n9'); // not a first id: as it is
  });
});
