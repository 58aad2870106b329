// The nemesis schedule: a pure function of the seed and the options, so that the same seed always
// injects the same sequence of faults (kinds, durations, gaps and every random target). Only the
// targets of the *-leader kinds are resolved at run time, because the leader is whoever won the
// last election; each carries a seeded fallback for when no leader is known. With the `membership`
// kind the node ids of later plans name *places* in the cluster (member-slots.ts): a node that
// replaced n1 takes n1's place, so a later "kill-random n1" kills it.
import { SeededRandom } from '../../../src/raft/prng.js';
import type { NemesisKind } from './nemesis-kinds.js';

export interface Range {
  readonly min: number;
  readonly max: number;
}

export interface ScheduleOptions {
  readonly seed: number;
  readonly kinds: readonly NemesisKind[];
  readonly nodeIds: readonly string[];
  /** How long the workload runs; faults are planned to be healed before it ends. */
  readonly durationMs: number;
  /** How long each fault lasts before it is healed. */
  readonly faultMs: Range;
  /** The quiet time before each fault (measured from the previous heal, or from the start). */
  readonly gapMs: Range;
}

/** What a fault does to which nodes. Leader targets are resolved when the fault starts. */
export type FaultTarget =
  | { readonly type: 'node'; readonly node: string }
  | { readonly type: 'leader'; readonly fallback: string }
  | { readonly type: 'all' }
  /** Both ways between `minority` and every other node. */
  | { readonly type: 'split'; readonly minority: readonly string[] }
  /** Both ways between `a` and `b` only. */
  | { readonly type: 'link'; readonly a: string; readonly b: string }
  /** The Raft messages `from` sends to `to` are lost. */
  | { readonly type: 'oneway'; readonly from: string; readonly to: string }
  /** A membership change (membership-nemesis.ts). */
  | ({ readonly type: 'membership' } & MembershipPlan);

/**
 * What a membership turn is planned to do. `replace`: remove a voter, stop it, and add a node with a
 * new id that joins, catches up and is promoted. `grow`: add and promote one more voter; the next
 * membership turn after a grow is a `shrink`, which removes a voter and stops it. The victim of a
 * replace or shrink is the leader (resolved when the change starts, `transferFirst`: hand leadership
 * to another voter before removing it, as an operator would; otherwise it is removed while it leads
 * and steps down once the removal is applied) or a place chosen by the seed.
 */
export type MembershipPlan =
  | { readonly action: 'grow' }
  | {
      readonly action: 'replace' | 'shrink';
      readonly victim:
        { readonly type: 'leader'; readonly fallback: string } | { readonly type: 'node'; readonly node: string };
      readonly transferFirst: boolean;
    };

/**
 * With `membership` and faults both chosen, a plan is a membership change this often (the rest are
 * faults, drawn uniformly). Drawn like any other kind (1 in 10 with `all,membership`), a 60 s run
 * would see less than one change.
 */
export const MEMBERSHIP_SHARE = 1 / 3;
/** A membership turn that is not a shrink grows the cluster this often; replacements are the rest. */
export const GROW_SHARE = 1 / 4;

export interface FaultPlan {
  readonly index: number;
  readonly kind: NemesisKind;
  readonly target: FaultTarget;
  /** Quiet time before the fault starts. */
  readonly gapMs: number;
  readonly durationMs: number;
  /** When it would start if every heal took no time (the real start can slip later). */
  readonly plannedStartMs: number;
}

export function generateSchedule(options: ScheduleOptions): FaultPlan[] {
  validate(options);
  if (options.kinds.length === 0) return [];
  // A stream of its own, so that the workload's seeded choices never shift the fault schedule.
  const random = new SeededRandom((options.seed ^ 0x5eed_fa17) >>> 0);
  const plans: FaultPlan[] = [];
  const faultKinds = options.kinds.filter((kind) => kind !== 'membership');
  // Drawn like every other kind when it is the only one; otherwise at MEMBERSHIP_SHARE. Lists
  // without it draw exactly as before it existed, so their seeds replay the same schedules.
  const mixed = options.kinds.includes('membership') && faultKinds.length > 0;
  let grown = false;
  let time = 0;
  for (;;) {
    const gapMs = uniform(random, options.gapMs);
    const durationMs = uniform(random, options.faultMs);
    const kind = mixed
      ? random.chance(MEMBERSHIP_SHARE)
        ? 'membership'
        : random.pick(faultKinds)
      : random.pick(options.kinds);
    const target: FaultTarget =
      kind === 'membership'
        ? chooseMembership(grown, options.nodeIds, random)
        : chooseTarget(kind, options.nodeIds, random);
    if (target.type === 'membership') grown = target.action === 'grow';
    if (time + gapMs + durationMs > options.durationMs) break;
    plans.push({ index: plans.length, kind, target, gapMs, durationMs, plannedStartMs: time + gapMs });
    time += gapMs + durationMs;
  }
  return plans;
}

function chooseMembership(grown: boolean, ids: readonly string[], random: SeededRandom): FaultTarget {
  if (!grown && random.chance(GROW_SHARE)) return { type: 'membership', action: 'grow' };
  const victim = random.chance(0.5)
    ? ({ type: 'leader', fallback: random.pick(ids) } as const)
    : ({ type: 'node', node: random.pick(ids) } as const);
  return { type: 'membership', action: grown ? 'shrink' : 'replace', victim, transferFirst: random.chance(0.5) };
}

function chooseTarget(
  kind: Exclude<NemesisKind, 'membership'>,
  ids: readonly string[],
  random: SeededRandom,
): FaultTarget {
  switch (kind) {
    case 'kill-random':
    case 'pause-random':
      return { type: 'node', node: random.pick(ids) };
    case 'kill-leader':
    case 'pause-leader':
    case 'partition-leader':
      return { type: 'leader', fallback: random.pick(ids) };
    case 'kill-all':
      return { type: 'all' };
    case 'partition-split': {
      // The largest minority: 1 of 3, 2 of 5. The majority side can still elect a leader.
      const minority = shuffle(ids, random).slice(0, Math.floor((ids.length - 1) / 2));
      return { type: 'split', minority: [...minority].sort() };
    }
    case 'partition-link': {
      const [a, b] = shuffle(ids, random);
      return a! < b! ? { type: 'link', a: a!, b: b! } : { type: 'link', a: b!, b: a! };
    }
    case 'partition-oneway': {
      const [from, to] = shuffle(ids, random);
      return { type: 'oneway', from: from!, to: to! };
    }
  }
}

function uniform(random: SeededRandom, range: Range): number {
  return range.min + random.int(range.max - range.min + 1);
}

function shuffle<T>(items: readonly T[], random: SeededRandom): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = random.int(i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

function validate(options: ScheduleOptions): void {
  if (options.nodeIds.length < 2) throw new Error('a chaos schedule needs at least two nodes');
  for (const [name, range] of [
    ['faultMs', options.faultMs],
    ['gapMs', options.gapMs],
  ] as const) {
    if (!(Number.isInteger(range.min) && Number.isInteger(range.max) && range.min >= 0 && range.min <= range.max)) {
      throw new Error(`${name} must be integers with 0 <= min <= max, got ${range.min}-${range.max}`);
    }
  }
  if (options.faultMs.min === 0 && options.gapMs.min === 0)
    throw new Error('faults and gaps cannot both be allowed to last 0 ms');
}

/** A human description of a planned fault, e.g. "partition-link n1<->n3 for 3.2 s". */
export function describeTarget(target: FaultTarget): string {
  switch (target.type) {
    case 'node':
      return target.node;
    case 'leader':
      return 'the leader';
    case 'all':
      return 'every node';
    case 'split':
      return `{${target.minority.join(',')}} | rest`;
    case 'link':
      return `${target.a}<->${target.b}`;
    case 'oneway':
      return `${target.from}->${target.to}`;
    case 'membership':
      if (target.action === 'grow') return 'add a voter';
      return `${target.action} ${target.victim.type === 'leader' ? `the leader${target.transferFirst ? ' (after a transfer)' : ''}` : target.victim.node}`;
  }
}
