// What changed in a system between two snapshots: leader changes, term, fsyncs, acknowledgements.
import type { RunDeltas, SystemSnapshot } from './types.js';

function maxTerm(s: SystemSnapshot): number {
  return Math.max(0, ...Object.values(s.terms).filter((t): t is number => t !== null));
}

function cpuBetween(before: SystemSnapshot, after: SystemSnapshot): Record<string, number> {
  const used: Record<string, number> = {};
  for (const [id, end] of Object.entries(after.cpuSeconds)) {
    const start = before.cpuSeconds[id];
    if (end !== null && start !== null && start !== undefined) used[id] = end - start;
  }
  return used;
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
    ...(after.peerRequests === undefined || before.peerRequests === undefined
      ? {}
      : { peerRequests: after.peerRequests - before.peerRequests }),
    cpuSeconds: cpuBetween(before, after),
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
    ...(a.peerRequests === undefined || b.peerRequests === undefined
      ? {}
      : { peerRequests: a.peerRequests + b.peerRequests }),
    cpuSeconds: Object.fromEntries(
      [...new Set([...Object.keys(a.cpuSeconds ?? {}), ...Object.keys(b.cpuSeconds ?? {})])].map((id) => [
        id,
        (a.cpuSeconds?.[id] ?? 0) + (b.cpuSeconds?.[id] ?? 0),
      ]),
    ),
  };
}

/** CPU per request in microseconds, summed over the nodes, and the leader's and the busiest follower's shares. */
export interface CpuPerRequest {
  readonly total: number;
  readonly leader: number | null;
  readonly follower: number | null;
}

/** The run's CPU per request; null when it measured no CPU (older results) or no request. */
export function cpuPerRequest(deltas: RunDeltas, requests: number): CpuPerRequest | null {
  const used = deltas.cpuSeconds;
  if (used === undefined || requests <= 0 || Object.keys(used).length === 0) return null;
  const perRequest = (s: number): number => (s * 1e6) / requests;
  const leader = deltas.leaderAfter ?? deltas.leaderBefore;
  const followers = Object.entries(used)
    .filter(([id]) => id !== leader)
    .map(([, s]) => s);
  return {
    total: perRequest(Object.values(used).reduce((a, b) => a + b, 0)),
    leader: leader !== null && used[leader] !== undefined ? perRequest(used[leader]) : null,
    follower: followers.length > 0 ? perRequest(Math.max(...followers)) : null,
  };
}
