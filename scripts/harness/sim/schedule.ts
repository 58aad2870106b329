// A fault schedule: everything about one simulated run that fast-check generates (and shrinks).
// The seed drives the rest (message delays, drops, client choices), so (schedule) => run is a pure
// function and any run replays exactly.
import fc from 'fast-check';

export type SimEvent =
  | { readonly kind: 'crash'; readonly node: number; readonly downFor: number }
  | { readonly kind: 'crashLeader'; readonly downFor: number }
  | { readonly kind: 'crashAll'; readonly downFor: number }
  /** Kills a node while it is persisting a vote, its own or a grant (between the write and its fsync). */
  | { readonly kind: 'crashDuringPersist'; readonly downFor: number }
  /** Symmetric partition: nodes in different groups cannot talk. */
  | { readonly kind: 'partition'; readonly groups: readonly number[]; readonly duration: number }
  | { readonly kind: 'isolate'; readonly node: number; readonly duration: number }
  /**
   * Cuts the leader off: at once; as soon as the next leader is elected (before its empty entry
   * spreads); right after its commit index next advances (so the others may not have learned the
   * commit); or while it has uncommitted entries in flight.
   */
  | { readonly kind: 'isolateLeader'; readonly when: LeaderMoment; readonly duration: number }
  /** One-way loss: messages from `from` to `to` are lost, the other direction works. */
  | { readonly kind: 'oneWay'; readonly from: number; readonly to: number; readonly duration: number }
  /** One link cut both ways, everything else connected: connectivity is no longer transitive. */
  | { readonly kind: 'cutLink'; readonly a: number; readonly b: number; readonly duration: number }
  | {
      readonly kind: 'lossy';
      readonly dropPercent: number;
      readonly duplicatePercent: number;
      readonly duration: number;
    }
  | { readonly kind: 'heal' }
  | { readonly kind: 'transferLeader'; readonly to: number }
  /**
   * The leader proposes a membership change chosen by `pick` among what its configuration allows
   * (promote a learner, add a spare node as a learner, remove a member); with `burst`, a second one
   * right after (refused while the first is not applied: one change at a time).
   */
  | { readonly kind: 'membership'; readonly pick: number; readonly burst: boolean };

export type LeaderMoment = 'now' | 'afterElection' | 'afterCommit' | 'whileReplicating';

export interface TimedEvent {
  readonly at: number;
  readonly event: SimEvent;
}

export interface Schedule {
  readonly seed: number;
  /** Which class of faults this run concentrates on (informational; the events are what counts). */
  readonly profile: Profile;
  readonly nodes: 3 | 5;
  /** Steps of the fault phase; then the network heals, crashed nodes restart, and liveness is checked. */
  readonly steps: number;
  readonly electionTicks: number;
  readonly maxMsgBytes: number;
  readonly maxInflightMsgs: number;
  /** Bytes in flight per follower (0 or absent: no bound; schedules recorded before it lack it). */
  readonly maxInflightBytes?: number;
  /**
   * Bytes of committed entries one Ready hands out (0 or absent: the core's default, which the
   * simulation's small entries never reach). Small values split a backlog's applies over many
   * Readies, next to snapshots, membership changes and crashes.
   */
  readonly maxApplyBytes?: number;
  /**
   * Entries at the end of a log that can be sent at once; older ones load in the background
   * (cold-storage.ts). 0 or absent: the whole log is in memory.
   */
  readonly warmEntries?: number;
  /**
   * Log compaction: each node compacts about every `snapshotEvery` applied entries (at a random point),
   * keeping `snapshotKeep` before its applied index, so lagging and restarted followers need
   * snapshots. 0 or absent: never (schedules recorded before it lack it).
   */
  readonly snapshotEvery?: number;
  readonly snapshotKeep?: number;
  /** Nodes running outside the configuration that membership changes may add (0 or absent: none). */
  readonly spares?: number;
  /** A persist (fsync) takes 0..persistDelayMax steps: crashes land between write and sync. */
  readonly persistDelayMax: number;
  readonly clients: number;
  readonly events: readonly TimedEvent[];
}

const node = fc.nat({ max: 4 });
const downFor = fc.integer({ min: 0, max: 120 });
/** Network faults heal on their own after this many steps (unless a heal comes first). */
const duration = fc.integer({ min: 8, max: 160 });

type Weighted = { weight: number; arbitrary: fc.Arbitrary<SimEvent> };

const crash: fc.Arbitrary<SimEvent> = fc.record({ kind: fc.constant('crash' as const), node, downFor });
const crashLeader: fc.Arbitrary<SimEvent> = fc.record({ kind: fc.constant('crashLeader' as const), downFor });
const crashAll: fc.Arbitrary<SimEvent> = fc.record({ kind: fc.constant('crashAll' as const), downFor });
const crashDuringPersist: fc.Arbitrary<SimEvent> = fc.record({
  kind: fc.constant('crashDuringPersist' as const),
  downFor,
});
const partition: fc.Arbitrary<SimEvent> = fc.record({
  kind: fc.constant('partition' as const),
  groups: fc.array(fc.nat({ max: 2 }), { minLength: 5, maxLength: 5 }),
  duration,
});
const isolate: fc.Arbitrary<SimEvent> = fc.record({ kind: fc.constant('isolate' as const), node, duration });
const isolateLeader: fc.Arbitrary<SimEvent> = fc.record({
  kind: fc.constant('isolateLeader' as const),
  when: fc.constantFrom<LeaderMoment>('now', 'afterElection', 'afterCommit', 'whileReplicating'),
  duration,
});
const oneWay: fc.Arbitrary<SimEvent> = fc.record({
  kind: fc.constant('oneWay' as const),
  from: node,
  to: node,
  duration,
});
const cutLink: fc.Arbitrary<SimEvent> = fc.record({
  kind: fc.constant('cutLink' as const),
  a: node,
  b: node,
  duration,
});
const lossy: fc.Arbitrary<SimEvent> = fc.record({
  kind: fc.constant('lossy' as const),
  dropPercent: fc.integer({ min: 0, max: 40 }),
  duplicatePercent: fc.integer({ min: 0, max: 30 }),
  duration,
});
const heal: fc.Arbitrary<SimEvent> = fc.constant({ kind: 'heal' as const });
const transferLeader: fc.Arbitrary<SimEvent> = fc.record({ kind: fc.constant('transferLeader' as const), to: node });
const membership: fc.Arbitrary<SimEvent> = fc.record({
  kind: fc.constant('membership' as const),
  pick: fc.nat({ max: 1000 }),
  burst: fc.boolean(),
});

/**
 * Each run draws its faults from one profile, so every class of fault gets runs where it is dense
 * (a mix of everything tends to leave the cluster down, and then timed faults never fire).
 */
export const PROFILES = {
  mixed: [
    { weight: 3, arbitrary: crash },
    { weight: 3, arbitrary: crashLeader },
    { weight: 1, arbitrary: crashAll },
    { weight: 2, arbitrary: crashDuringPersist },
    { weight: 2, arbitrary: partition },
    { weight: 2, arbitrary: isolate },
    { weight: 4, arbitrary: isolateLeader },
    { weight: 1, arbitrary: oneWay },
    { weight: 1, arbitrary: cutLink },
    { weight: 2, arbitrary: lossy },
    { weight: 1, arbitrary: heal },
    { weight: 1, arbitrary: transferLeader },
    { weight: 2, arbitrary: membership },
  ],
  membership: [
    { weight: 6, arbitrary: membership },
    { weight: 2, arbitrary: crashLeader },
    { weight: 2, arbitrary: crash },
    { weight: 2, arbitrary: isolateLeader },
    { weight: 1, arbitrary: partition },
    { weight: 1, arbitrary: lossy },
    { weight: 1, arbitrary: transferLeader },
  ],
  leaderChurn: [
    { weight: 6, arbitrary: isolateLeader },
    { weight: 3, arbitrary: crashLeader },
    { weight: 1, arbitrary: transferLeader },
    { weight: 1, arbitrary: isolate },
  ],
  crashes: [
    { weight: 3, arbitrary: crash },
    { weight: 2, arbitrary: crashLeader },
    { weight: 4, arbitrary: crashDuringPersist },
    { weight: 1, arbitrary: crashAll },
    { weight: 2, arbitrary: isolateLeader },
  ],
  network: [
    { weight: 2, arbitrary: partition },
    { weight: 2, arbitrary: isolate },
    { weight: 2, arbitrary: isolateLeader },
    { weight: 2, arbitrary: oneWay },
    { weight: 2, arbitrary: cutLink },
    { weight: 3, arbitrary: lossy },
    { weight: 1, arbitrary: heal },
  ],
} satisfies Record<string, Weighted[]>;

export type Profile = keyof typeof PROFILES;

export interface ScheduleBounds {
  readonly nodes?: readonly (3 | 5)[];
  readonly minSteps?: number;
  readonly maxSteps?: number;
  readonly minEvents?: number;
  readonly maxEvents?: number;
}

export function scheduleArbitrary(bounds: ScheduleBounds = {}): fc.Arbitrary<Schedule> {
  const minSteps = bounds.minSteps ?? 1000;
  const maxSteps = bounds.maxSteps ?? 1600;
  const profiles = Object.keys(PROFILES) as Profile[];
  return fc.constantFrom(...profiles).chain((profile) =>
    fc.record({
      seed: fc.integer({ min: 0, max: 0x7fffffff }),
      profile: fc.constant(profile),
      nodes: fc.constantFrom(...(bounds.nodes ?? [3, 5])),
      steps: fc.integer({ min: minSteps, max: maxSteps }),
      electionTicks: fc.constantFrom(5, 10),
      maxMsgBytes: fc.constantFrom(1, 100, 4096, 1 << 20),
      maxInflightMsgs: fc.constantFrom(1, 4, 64),
      maxInflightBytes: fc.constantFrom(0, 300, 5000),
      warmEntries: fc.constantFrom(0, 0, 3, 20),
      snapshotEvery: fc.constantFrom(0, 5, 20, 60),
      snapshotKeep: fc.constantFrom(0, 2, 10),
      spares: fc.constantFrom(0, 1, 2),
      persistDelayMax: fc.constantFrom(0, 2, 6, 12),
      clients: fc.integer({ min: 2, max: 6 }),
      events: fc
        .array(fc.record({ at: fc.nat({ max: maxSteps }), event: fc.oneof(...PROFILES[profile]) }), {
          minLength: bounds.minEvents ?? 20,
          maxLength: bounds.maxEvents ?? 60,
        })
        .map((events) => events.slice().sort((a, b) => a.at - b.at)),
      // Last, after every field recorded before it: a seed and path printed before it was added
      // still give the same faults and parameters.
      maxApplyBytes: fc.constantFrom(0, 0, 1, 200),
    }),
  );
}
