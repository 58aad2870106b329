// Schedules that once failed, replayed on every run. Each file in regressions/ is the schedule
// fast-check printed (the "Counterexample"); each test says how it was found and what it broke, and
// proves it still catches that mistake in a core that makes it. A schedule recorded before the
// clients made conditional writes replays with the plain workload (`workload: 'plain'`), as it ran:
// every schedule here was but the last read one (seed 31001), so the other commands in the test
// names need `--workload plain` today. A replay is exact only while the core sends the same
// messages: where a later change of the core moved a schedule off the bug it caught, the test
// replays it with the core of the time for that part (`recordedWithReadExpiry`, `commitsEagerly`),
// and today's core must still pass it (`expectPasses`).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { RaftCore } from '../../src/raft/core.js';
import { EntryType, type Message } from '../../src/raft/types.js';
import { NeverResendsForwardedReads } from '../../scripts/harness/sim/planted-bugs.js';
import { checkSchedules, describeFailure } from '../../scripts/harness/sim/run-property.js';
import type { Schedule } from '../../scripts/harness/sim/schedule.js';
import { runSimulation } from '../../scripts/harness/sim/simulator.js';

function schedule(name: string): Schedule {
  return JSON.parse(readFileSync(new URL(`./regressions/${name}.json`, import.meta.url), 'utf8')) as Schedule;
}

/** Replays `s` with `options` and requires it to pass every check. */
function expectPasses(s: Schedule, options: Parameters<typeof runSimulation>[1] = {}): void {
  const result = runSimulation(s, options);
  expect(result.ok, describeFailure(result)).toBe(true);
}

/**
 * The first two fixes of the stuck follower read: an unanswered forwarded read failed after
 * `timeouts` election timeouts (one, then two), for the driver to retry under a new context, where
 * the core now sends it again under the same one.
 */
function failsForwardedReadsAfter(timeouts: number, Base: typeof RaftCore = RaftCore): typeof RaftCore {
  return class extends Base {
    protected override resendForwardedReads(): void {
      for (const [ctx, sentAt] of this.forwardedReads) {
        if (this.ticks - sentAt < timeouts * this.electionTimeout) break;
        this.forwardedReads.delete(ctx);
        this.failedReads.push(ctx);
      }
    }
  };
}

/**
 * Every schedule here was recorded while each commit went to the followers at once, in an empty
 * append if need be, and a follower's read index came without a heartbeat; since BENCHMARKS.md
 * profiling step 11 the commit travels with the next append or heartbeat, which changes the
 * messages enough to move a schedule off its bug. `Base` is today's core or a planted mistake on
 * top of it.
 */
function commitsEagerly(Base: typeof RaftCore = RaftCore): typeof RaftCore {
  return class extends Base {
    protected override maybeCommitAndReplicate(): boolean {
      if (!this.maybeCommit()) return false;
      this.broadcastAppend();
      return true;
    }

    protected override sendCommitForRead(): void {}
  };
}

/** A schedule recorded with the plain workload, replayed with the core of the time (`commitsEagerly`). */
const asRecordedWith = (Base: typeof RaftCore = RaftCore) => {
  const Core = commitsEagerly(Base);
  return {
    workload: 'plain' as const,
    factory: (config: ConstructorParameters<typeof RaftCore>[0]) => new Core(config),
  };
};

/**
 * The schedules recorded before forwarded reads were sent again (seed 31001) ran with reads failed
 * after two election timeouts; the resends change the messages, and those schedules no longer meet
 * their bugs without that behaviour. `Base` is today's core or a planted mistake on top of it.
 */
const recordedWithReadExpiry = (Base: typeof RaftCore = RaftCore) => asRecordedWith(failsForwardedReadsAfter(2, Base));

/** The first membership core: vote requests heard only from voters of this node's own configuration. */
class HearsVotesOnlyFromKnownVoters extends RaftCore {
  override step(m: Message): void {
    if ((m.type === 'vote' || m.type === 'preVote') && !this.voters.includes(m.from)) return;
    super.step(m);
  }
}

/** The first membership core: only the election timer asked whether this node is a voter; TimeoutNow did not. */
class CampaignsOnTimeoutNowWhenNotAVoter extends RaftCore {
  protected override mayCampaign(kind: Parameters<RaftCore['mayCampaign']>[0]): boolean {
    return kind === 'transfer' ? !this.hasUnappliedConfChange() : super.mayCampaign(kind);
  }
}

/** The first membership core: a change applied late, below a snapshot the core took meanwhile, still applied. */
class AppliesChangesBelowItsSnapshot extends RaftCore {
  override applyConfChange(change: Parameters<RaftCore['applyConfChange']>[0], index: number) {
    this.confIndex = 0;
    return super.applyConfChange(change, index);
  }
}

/** The first check for an unapplied change: it read from the applied index, below a snapshot taken but not installed. */
class ReadsBelowAPendingSnapshot extends RaftCore {
  protected override hasUnappliedConfChange(): boolean {
    if (this.log.committed <= this.log.applied) return false;
    return this.log
      .slice(this.log.applied + 1, this.log.committed + 1, Infinity)
      .some((e) => e.type === EntryType.ConfChange);
  }
}

/** The first membership core: a node that may not campaign reset its election timer at each timeout. */
class LearnerTimerResets extends RaftCore {
  protected override tickElection(): void {
    this.electionElapsed++;
    if (this.electionElapsed < this.randomizedElectionTimeout) return;
    this.electionElapsed = 0;
    if (this.promotable()) this.campaign('pre-vote');
  }
}

describe('simulation regressions', () => {
  it('a follower read lost under a steady leader (npm run sim -- --runs 200 --nodes 3 --seed 735524974 --path 24, before the fix)', () => {
    // Chaos seed 113 found it on real processes; the simulation's batched reader and read-liveness
    // check found it here. The core now fails such a read after two election timeouts.
    const s = schedule('follower-read-lost-under-steady-leader');
    expectPasses(s, { workload: 'plain' });
    expectPasses(s, asRecordedWith());
    const broken = runSimulation(s, asRecordedWith(NeverResendsForwardedReads));
    expect(broken.ok ? 'ok' : broken.kind).toBe('liveness');
  });

  it('a forwarded-read expiry of one election timeout fails every follower read of a slow cluster (npm run sim -- --runs 600 --seed 23116980 --path 27)', () => {
    // 5 nodes, 5-tick election timeout, persists taking up to 12 steps: a read round trip outlasts
    // one election timeout, so every retry expired too. Found by the simulation while fixing the
    // stuck follower read; the expiry is now two election timeouts.
    // Recorded before the transport carried heartbeat acknowledgements in its answers: replayed
    // without them, as it ran then (the next test is the same bug under today's transport model).
    const s = schedule('forwarded-read-expiry-too-short');
    const asRecorded = { inlineReplies: 0, workload: 'plain' as const };
    const result = runSimulation(s, asRecorded);
    expect(result.ok, describeFailure(result)).toBe(true);
    const broken = runSimulation(s, {
      ...asRecorded,
      factory: (config) => new (failsForwardedReadsAfter(1))(config),
    });
    expect(broken.ok ? 'ok' : broken.kind).toBe('liveness');
  });

  it('the same too-short expiry under inline heartbeat replies (found again by seed 23116980 path 49 with that core)', () => {
    // Heartbeat acknowledgements in the transport's answers changed the message pattern, and the
    // schedule above no longer catches the bug under it; this one does (5 nodes, 5-tick timeout).
    const s = schedule('forwarded-read-expiry-too-short-inline-replies');
    expectPasses(s, { workload: 'plain' });
    expectPasses(s, asRecordedWith());
    const broken = runSimulation(s, asRecordedWith(failsForwardedReadsAfter(1)));
    expect(broken.ok ? 'ok' : broken.kind).toBe('liveness');
  });

  it('a forwarded read failed after two election timeouts is never served on a slower cluster (npm run sim -- --nodes 5 --seed 31001 --path 222)', () => {
    // 5 nodes, 5-tick election timeout, persists of up to 12 steps, leader churn: a read round trip
    // from a follower took about as long as two election timeouts, so nearly every forwarded read
    // failed just before its answer came, and the retry under a new context threw that answer away.
    // Found by a search of 2,500 schedules (versioned workload) after the two-timeout fix; the core
    // now sends an unanswered read again under the same context instead of failing it.
    const s = schedule('forwarded-read-expiry-two-timeouts');
    expectPasses(s);
    const Recorded = commitsEagerly();
    expectPasses(s, { factory: (config) => new Recorded(config) });
    const broken = runSimulation(s, { factory: (config) => new (failsForwardedReadsAfter(2, Recorded))(config) });
    expect(broken.ok ? 'ok' : broken.kind).toBe('liveness');
  });

  it('a joiner that knows no configuration yet must still vote (npm run sim -- --nodes 3 --seed 902842905 --path 894)', () => {
    // n4 joined empty and was promoted before it caught up; the leader then removed itself, leaving
    // voters that needed n4's vote. n4 heard vote requests only from voters of its own (empty)
    // configuration, so no one could ever win. Vote requests are now heard from anyone (etcd-raft).
    const s = schedule('joiner-ignores-unknown-candidate');
    const asRecorded = { workload: 'plain' as const };
    const result = runSimulation(s, asRecorded);
    expect(result.ok, describeFailure(result)).toBe(true);
    const broken = runSimulation(s, {
      ...asRecorded,
      factory: (config) => new HearsVotesOnlyFromKnownVoters(config),
    });
    expect(broken.ok ? 'ok' : broken.kind).toBe('liveness');
  });

  it.each([
    [
      'restaged-snapshot-none',
      'npm run sim -- --nodes 5 --seed 181832 --path 365',
      /installs snapshot 47\/5 but staged none/,
    ],
    [
      'restaged-snapshot-other',
      'npm run sim -- --nodes 5 --seed 122103 --path 2469',
      /installs snapshot 12\/10 but staged 13\/10/,
    ],
  ])('a snapshot received while the last one waits for its Ready is refused (%s: %s)', (name, _replay, thrown) => {
    // CI's 5-node run ended early at 324 schedules and passed: a throw out of the simulation was not
    // reported as a failure (it is now). The driver staged a newer snapshot over the one the core had
    // taken, so the Ready in flight installed a state it was not about (or none). The real receiver
    // refuses a new staging meanwhile (NodeStorage.beginStaging); the simulation's does too.
    const s = schedule(name);
    expectPasses(s, { workload: 'plain' });
    const asRecorded = recordedWithReadExpiry();
    expectPasses(s, asRecorded);
    expect(() => runSimulation(s, { ...asRecorded, driverBugs: { restagesOverPendingSnapshot: true } })).toThrow(
      thrown,
    );
  });

  it('a throw out of the simulation is a failed schedule that names its seed and path, not an early end', () => {
    const outcome = checkSchedules({
      runs: 1,
      seed: 181832,
      path: '365',
      bounds: { nodes: [5] },
      driverBugs: { restagesOverPendingSnapshot: true },
      ...recordedWithReadExpiry(),
      // Printed before schedules drew maxApplyBytes: the core's default, as it ran then.
      maxApplyBytes: 0,
    });
    expect(outcome.schedules).toBe(1);
    expect(outcome.failure?.result.ok).toBe(false);
    expect(outcome.failure?.report).toContain('seed: 181832');
    expect(describeFailure(outcome.failure!.result)).toContain('installs snapshot 47/5 but staged none');
  });

  it('a removed node refuses TimeoutNow from a leader that has not applied its removal (npm run sim -- --nodes 5 --seed 77418717 --path 766)', () => {
    // n3 led, removed itself and stepped down once it applied the removal; n2 won the next term
    // before applying it, still counted n3 a voter, and handed it leadership. n3 campaigned, won the
    // votes of the voters and became a leader outside its own configuration (a core invariant broke:
    // no progress for n3). Every campaign now needs the node to be a voter of its configuration.
    const s = schedule('removed-node-campaigns-on-timeout-now');
    expectPasses(s, { workload: 'plain' });
    expectPasses(s, asRecordedWith());
    const broken = runSimulation(s, asRecordedWith(CampaignsOnTimeoutNowWhenNotAVoter));
    expect(broken.ok ? 'ok' : broken.kind).toBe('invariant');
  });

  it('a membership change applied after the core took a snapshot past it changes nothing (npm run sim -- --nodes 5 --seed 8831808 --path 356)', () => {
    // n3 was applying entry 18 (add learner n6) when the leader's snapshot at 20 (n6 removed again)
    // arrived and the core took it; the late apply of 18 then re-added n6 to the core's
    // configuration, which diverged from every other node's at index 22. The real driver applies
    // committed entries while the peer port hands the core snapshots, the same way.
    const s = schedule('late-conf-change-after-snapshot');
    expectPasses(s, { workload: 'plain' });
    expectPasses(s, recordedWithReadExpiry());
    const broken = runSimulation(s, recordedWithReadExpiry(AppliesChangesBelowItsSnapshot));
    expect(broken.ok ? 'ok' : broken.kind).toBe('safety');
  });

  it('an election timeout while a snapshot waits to be installed does not read below the log (npm run sim -- --nodes 5 --seed 9948958 --path 1189)', () => {
    // The check that no committed membership change waits to be applied read from the applied
    // index, which a snapshot taken but not installed yet leaves below the log's start: a core
    // invariant broke (slice out of range) and the node would have stopped.
    const s = schedule('campaign-check-reads-below-pending-snapshot');
    expectPasses(s, { workload: 'plain' });
    expectPasses(s, recordedWithReadExpiry());
    const broken = runSimulation(s, recordedWithReadExpiry(ReadsBelowAPendingSnapshot));
    expect(broken.ok ? 'ok' : broken.kind).toBe('invariant');
  });

  it("a learner's leader lease ends when its leader goes, so it grants the votes a newer configuration needs (npm run sim -- --nodes 5 --seed 11726124 --path 1487)", () => {
    // n1 promoted n6 (still a learner where its log ended) and then removed itself: voters n2 and n6.
    // n6 could not campaign, and reset its election timer at every timeout, so it always believed
    // its leader alive and ignored n2's pre-votes: no leader for the rest of the run.
    const s = schedule('learner-lease-never-ends');
    expectPasses(s, { workload: 'plain' });
    expectPasses(s, asRecordedWith());
    const broken = runSimulation(s, asRecordedWith(LearnerTimerResets));
    expect(broken.ok ? 'ok' : broken.kind).toBe('liveness');
  });
});
