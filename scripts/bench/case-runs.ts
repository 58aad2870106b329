// The runs of one case that the report's tables and the targets compare: raftkv's, etcd's best,
// and the ratio of the two.
//
// With `--repeat N` a case holds N runs of each system and API variant. One run on this kind of
// shared machine moves by 20-40% (BENCHMARKS.md), so each side is represented by its median run,
// never by its best: a lucky run of either system must not decide a target. With one round the
// median is that run, so a report reads as it did before rounds existed.
import { cpuPerRequest, type CpuPerRequest } from './deltas.js';
import type { CaseResult, VariantRun } from './types.js';

/**
 * The median of `items` by `key`; null for none. Of an even number the median is one of the two
 * middle ones (so it is always a measured run), and the worse one for the side it stands for:
 * `worse: 'lower'` where less is worse (req/s), `'higher'` where more is (CPU per request). A side is
 * never judged by the luckier of its two middle runs.
 */
export function medianBy<T>(items: readonly T[], key: (item: T) => number, worse: 'lower' | 'higher'): T | null {
  if (items.length === 0) return null;
  const sorted = [...items].sort((a, b) => key(a) - key(b));
  const middle = (sorted.length - 1) / 2;
  return sorted[worse === 'lower' ? Math.floor(middle) : Math.ceil(middle)]!;
}

function measured(r: VariantRun): boolean {
  return r.failed === undefined && r.load.requests > 0;
}

/** The runs of `system` and `variant` in a case, in round order, failed ones included. */
export function roundsOf(runs: readonly VariantRun[], like: VariantRun): VariantRun[] {
  return runs.filter((r) => r.system === like.system && r.variant === like.variant);
}

/**
 * The median p99 of `rounds` (one side's runs of a case; of an even count the higher: more is
 * worse), null when none was measured. A run's p99 moves more than its req/s, so a side's p99 is
 * judged over its rounds, as its CPU is, not taken from the run whose req/s was the median.
 */
export function medianP99(rounds: readonly VariantRun[]): number | null {
  return medianBy(rounds.filter(measured), (r) => r.load.p99Ms, 'higher')?.load.p99Ms ?? null;
}

/** The case's etcd runs, one group per API variant (v2, v3), each in round order. */
function etcdVariants(c: CaseResult): VariantRun[][] {
  const runs = c.runs.filter((r) => r.system === 'etcd');
  return [...new Set(runs.map((r) => r.variant))].map((variant) => runs.filter((r) => r.variant === variant));
}

/** etcd's best API for the case (v2 or v3): the variant whose median run by req/s is the fastest. */
export function etcdBest(c: CaseResult): VariantRun | null {
  let best: VariantRun | null = null;
  for (const rounds of etcdVariants(c)) {
    const median = medianBy(rounds.filter(measured), (r) => r.load.reqPerSec, 'lower');
    if (median !== null && (best === null || median.load.reqPerSec > best.load.reqPerSec)) best = median;
  }
  return best;
}

/** raftkv's median run by req/s; a failed run only when every round failed. */
export function raftkvRun(c: CaseResult): VariantRun | null {
  const runs = c.runs.filter((r) => r.system === 'raftkv');
  return medianBy(runs.filter(measured), (r) => r.load.reqPerSec, 'lower') ?? runs[0] ?? null;
}

/** raftkv req/s over etcd best req/s for one case; null without both. */
export function ratio(c: CaseResult): number | null {
  const ours = raftkvRun(c);
  const theirs = etcdBest(c);
  if (ours === null || theirs === null || ours.failed !== undefined || theirs.load.reqPerSec === 0) return null;
  return ours.load.reqPerSec / theirs.load.reqPerSec;
}

export interface CpuOfRun {
  readonly run: VariantRun;
  readonly cpu: CpuPerRequest;
}

/** The run of `runs` with the median CPU per request (summed over the nodes), and that CPU. */
export function medianCpu(runs: readonly VariantRun[]): CpuOfRun | null {
  const withCpu: CpuOfRun[] = [];
  for (const run of runs.filter(measured)) {
    const cpu = cpuPerRequest(run.deltas, run.load.requests);
    if (cpu !== null) withCpu.push({ run, cpu });
  }
  return medianBy(withCpu, (r) => r.cpu.total, 'higher');
}

/** raftkv's median CPU per request over the case's rounds. */
export function raftkvCpu(c: CaseResult): CpuOfRun | null {
  return medianCpu(c.runs.filter((r) => r.system === 'raftkv'));
}

/** etcd's cheapest API by its median CPU per request over the rounds. */
export function etcdCheapestCpu(c: CaseResult): CpuOfRun | null {
  let cheapest: CpuOfRun | null = null;
  for (const rounds of etcdVariants(c)) {
    const median = medianCpu(rounds);
    if (median !== null && (cheapest === null || median.cpu.total < cheapest.cpu.total)) cheapest = median;
  }
  return cheapest;
}
