// What changed in a system between two snapshots: leader changes, term, fsyncs, acknowledgements.
import type { RunDeltas, SystemSnapshot } from './types.js';

function maxTerm(s: SystemSnapshot): number {
  return Math.max(0, ...Object.values(s.terms).filter((t): t is number => t !== null));
}

export function deltasBetween(before: SystemSnapshot, after: SystemSnapshot): RunDeltas {
  // Each node counts every leader change it sees, so the most any one node saw is the cluster's count.
  const leaderChanges = Math.max(
    0,
    ...Object.keys(after.leaderChanges).map((id) => (after.leaderChanges[id] ?? 0) - (before.leaderChanges[id] ?? 0)),
  );
  return {
    leaderChanges,
    termChanges: maxTerm(after) - maxTerm(before),
    leaderBefore: before.leader,
    leaderAfter: after.leader,
    fsyncs: after.fsyncs - before.fsyncs,
    writesAcknowledged:
      after.writesAcknowledged === null || before.writesAcknowledged === null
        ? null
        : after.writesAcknowledged - before.writesAcknowledged,
  };
}

export function addDeltas(a: RunDeltas, b: RunDeltas): RunDeltas {
  return {
    leaderChanges: a.leaderChanges + b.leaderChanges,
    termChanges: a.termChanges + b.termChanges,
    leaderBefore: a.leaderBefore,
    leaderAfter: b.leaderAfter,
    fsyncs: a.fsyncs + b.fsyncs,
    writesAcknowledged:
      a.writesAcknowledged === null || b.writesAcknowledged === null
        ? null
        : a.writesAcknowledged + b.writesAcknowledged,
  };
}
