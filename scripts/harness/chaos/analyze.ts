// After a run: what happened, checked and summed up. The run's raw record in, summary.json out;
// no I/O (the linearizability search is the only expensive part).
import { checkLinearizability, type CheckResult } from '../check/linearizability.js';
import type { FinalReadsResult } from './final-reads.js';
import { leaderChanges, type Leadership } from './leaders.js';
import type { FaultRecord } from './nemesis.js';
import type { ChaosOptions } from './options.js';
import type { ChaosOp } from './recorder.js';
import { decideVerdict, EXIT_CODES, type ChaosSummary, type CrashReport, type ViolationDetail } from './result.js';
import type { FaultPlan } from './schedule.js';
import type { SnapshotActivity } from './snapshots.js';
import { isWrite } from '../check/history.js';
import {
  countBy,
  longestUnavailability,
  lostAckedWrites,
  nodeTimeline,
  opStats,
  timeline,
  versionedStats,
} from './summary.js';

export interface RunRecord {
  readonly options: ChaosOptions;
  readonly startedAt: Date;
  readonly nodeIds: readonly string[];
  readonly schedule: readonly FaultPlan[];
  /** Every operation, the final reads included. */
  readonly ops: readonly ChaosOp[];
  readonly unexpectedAnswers: number;
  readonly capReached: boolean;
  /** Run-clock times: the workload's start and end, and the end of everything. */
  readonly workloadFrom: number;
  readonly workloadTo: number;
  readonly endedAt: number;
  readonly faults: readonly FaultRecord[];
  readonly leaderships: readonly Leadership[];
  /** Snapshot transfers and installs, from the node logs. */
  readonly snapshots: SnapshotActivity;
  /** Null when the run never got to recover the cluster. */
  readonly finalReads: FinalReadsResult | null;
  readonly crashes: readonly CrashReport[];
  /** Setup failures, interruptions...: each makes the run inconclusive unless it found a violation. */
  readonly problems: readonly string[];
}

/** The checker's culprits can list a whole linearizable prefix: at most this many are kept. */
const MAX_CULPRITS_SHOWN = 40;

export function analyzeRun(run: RunRecord): ChaosSummary {
  const { options } = run;
  const problems = [...run.problems];
  const checkStarted = performance.now();
  let check: CheckResult | null = null;
  if (run.ops.length > 0) {
    try {
      check = checkLinearizability(run.ops, { maxStepsPerKey: options.checkerSteps });
    } catch (error) {
      problems.push(`the checker refused the history: ${(error as Error).message}`);
    }
  }
  const checkMs = performance.now() - checkStarted;

  const workloadOps = run.ops.filter((op) => op.final !== true);
  const finalValues = run.finalReads?.values ?? new Map<string, string | null>();
  const lost = lostAckedWrites(run.ops, finalValues);
  const stats = opStats(workloadOps);
  const verdict = decideVerdict({
    linearizability: check?.result ?? 'not-run',
    lostWrites: lost.length,
    crashes: run.crashes,
    recovered: run.finalReads?.recovered ?? null,
    recoveryProblem: run.finalReads?.problem ?? null,
    okOps: stats.all.ok,
    problems,
  });
  const byId = new Map(run.ops.map((op) => [op.id, op]));
  const from = run.workloadFrom;
  const to = Math.max(run.workloadTo, from + 1);
  return {
    seed: options.seed,
    startedAt: run.startedAt.toISOString(),
    config: {
      nodes: options.nodes,
      clients: options.clients,
      durationMs: options.durationMs,
      kinds: options.kinds,
      network: options.network,
      keys: options.keys,
      requestTimeoutMs: options.requestTimeoutMs,
      faultMs: options.faultMs,
      gapMs: options.gapMs,
      unsafeMode: options.unsafeMode,
      snapshot: options.snapshot,
      workload: options.workload,
    },
    schedule: run.schedule,
    workload: { from: run.workloadFrom, to: run.workloadTo, capReached: run.capReached },
    endedAt: run.endedAt,
    ops: {
      ...stats,
      total: workloadOps.length,
      unexpected: run.unexpectedAnswers,
      reasons: countBy(
        workloadOps.filter((op) => op.status !== 'ok'),
        (op) => `${op.kind} ${op.reason}`,
      ),
    },
    versioned: versionedStats(workloadOps),
    opsPerSecond: run.workloadTo > from ? (workloadOps.length * 1000) / (run.workloadTo - from) : 0,
    faults: run.faults,
    faultCounts: countBy(run.faults, (f) => f.kind),
    leaderships: run.leaderships,
    leaderChanges: leaderChanges(run.leaderships),
    snapshots: run.snapshots,
    unavailability: longestUnavailability(workloadOps, from, run.workloadTo),
    timeline: timeline(workloadOps, from, to),
    nodeTimeline: nodeTimeline(workloadOps, run.nodeIds, from, to),
    recovery: {
      recovered: run.finalReads?.recovered ?? false,
      problem: run.finalReads?.problem ?? null,
      leader: run.finalReads?.leader ?? null,
      finalValues: Object.fromEntries(finalValues),
      stuckNodes: run.finalReads?.stuckNodes ?? [],
    },
    linearizability: {
      result: check?.result ?? 'not-run',
      checkMs,
      keys: (check?.keys ?? []).map((k) =>
        k.result === 'violation'
          ? { key: k.key, result: k.result, ops: k.ops, message: k.message, failedOp: k.failedOp }
          : k,
      ),
      violations: (check?.keys ?? []).flatMap((k): ViolationDetail[] =>
        k.result === 'violation'
          ? [
              {
                key: k.key,
                message: k.message,
                failedOp: k.failedOp,
                culprits: shownCulprits(k.culprits, k.failedOp).flatMap((id) => byId.get(id) ?? []),
              },
            ]
          : [],
      ),
    },
    durability: { acknowledgedWrites: run.ops.filter((op) => isWrite(op) && op.status === 'ok').length, lost },
    crashes: run.crashes,
    problems,
    verdict: verdict.verdict,
    reasons: verdict.reasons,
    exitCode: EXIT_CODES[verdict.verdict],
  };
}

/** The end of the linearizable prefix, the failed operation, and what was concurrent with it. */
function shownCulprits(culprits: readonly number[], failedOp: number): number[] {
  if (culprits.length <= MAX_CULPRITS_SHOWN) return [...culprits];
  const at = culprits.indexOf(failedOp);
  if (at < 0) return culprits.slice(0, MAX_CULPRITS_SHOWN);
  const before = Math.max(0, at - 10);
  return culprits.slice(before, before + MAX_CULPRITS_SHOWN);
}
