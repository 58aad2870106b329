// The runs of one case that the report's tables and the targets compare: raftkv's, etcd's best,
// and the ratio of the two.
import type { CaseResult, VariantRun } from './types.js';

/** The fastest etcd run of a case (v2 or v3), ignoring failed ones. */
export function etcdBest(c: CaseResult): VariantRun | null {
  const runs = c.runs.filter((r) => r.system === 'etcd' && r.failed === undefined && r.load.requests > 0);
  return runs.reduce<VariantRun | null>(
    (best, r) => (best === null || r.load.reqPerSec > best.load.reqPerSec ? r : best),
    null,
  );
}

export function raftkvRun(c: CaseResult): VariantRun | null {
  return c.runs.find((r) => r.system === 'raftkv') ?? null;
}

/** raftkv req/s over etcd best req/s for one case; null without both. */
export function ratio(c: CaseResult): number | null {
  const ours = raftkvRun(c);
  const theirs = etcdBest(c);
  if (ours === null || theirs === null || ours.failed !== undefined || theirs.load.reqPerSec === 0) return null;
  return ours.load.reqPerSec / theirs.load.reqPerSec;
}
