// The outcome of a chaos run as one JSON document (summary.json), and the verdict rules.
import type { CheckResult, KeyVerdict } from '../check/linearizability.js';
import type { NodeCrash } from './chaos-cluster.js';
import type { Leadership } from './leaders.js';
import type { FaultRecord } from './nemesis.js';
import type { ChaosOptions } from './options.js';
import type { ChaosOp } from './recorder.js';
import type { FaultPlan } from './schedule.js';
import type { SnapshotActivity } from './snapshots.js';
import type { NodeSecond, OpStats, TimelineBucket, Unavailability, VersionedStats } from './summary.js';

export type Verdict = 'pass' | 'violation' | 'inconclusive';

export const EXIT_CODES: Readonly<Record<Verdict, 0 | 1 | 2>> = { pass: 0, violation: 1, inconclusive: 2 };

export interface CrashReport extends NodeCrash {
  readonly logTail: readonly string[];
}

export interface ViolationDetail {
  readonly key: string;
  readonly message: string;
  readonly failedOp: number;
  /** The culprit operations, as the checker listed them (ids resolved to operations). */
  readonly culprits: readonly ChaosOp[];
}

export interface ChaosSummary {
  readonly seed: number;
  readonly startedAt: string;
  readonly config: Pick<
    ChaosOptions,
    | 'nodes'
    | 'clients'
    | 'durationMs'
    | 'kinds'
    | 'network'
    | 'keys'
    | 'requestTimeoutMs'
    | 'faultMs'
    | 'gapMs'
    | 'unsafeMode'
  > &
    // Optional: summaries written before snapshots were recorded, or before the versioned workload,
    // lack them (--report re-renders them).
    Partial<Pick<ChaosOptions, 'snapshot' | 'workload'>>;
  readonly schedule: readonly FaultPlan[];
  /** When the workload ran (run clock, ms), and when everything ended. */
  readonly workload: { readonly from: number; readonly to: number; readonly capReached: boolean };
  readonly endedAt: number;
  readonly ops: OpStats & {
    readonly total: number;
    readonly unexpected: number;
    readonly reasons: readonly [string, number][];
  };
  /** Conditional writes, transactions, retries and replays (absent in summaries from before them). */
  readonly versioned?: VersionedStats;
  readonly opsPerSecond: number;
  readonly faults: readonly FaultRecord[];
  readonly faultCounts: readonly [string, number][];
  readonly leaderships: readonly Leadership[];
  readonly leaderChanges: number;
  /** Snapshot transfers and installs from the node logs (absent in summaries from before they were recorded). */
  readonly snapshots?: SnapshotActivity;
  readonly unavailability: Unavailability;
  readonly timeline: readonly TimelineBucket[];
  /** Per node, per second of the workload: operations sent to it that succeeded or not. */
  readonly nodeTimeline: Readonly<Record<string, readonly NodeSecond[]>>;
  readonly recovery: {
    readonly recovered: boolean;
    readonly problem: string | null;
    readonly leader: string | null;
    readonly finalValues: Record<string, string | null>;
    /** Nodes that served no linearizable read after recovery (a liveness warning, not a verdict). */
    readonly stuckNodes: readonly { readonly node: string; readonly answers: string }[];
  };
  readonly linearizability: {
    readonly result: CheckResult['result'] | 'not-run';
    readonly checkMs: number;
    readonly keys: readonly Omit<KeyVerdict, 'culprits'>[];
    readonly violations: readonly ViolationDetail[];
  };
  readonly durability: { readonly acknowledgedWrites: number; readonly lost: readonly ChaosOp[] };
  readonly crashes: readonly CrashReport[];
  /** Things that make the run inconclusive (setup failure, interrupted...), besides the above. */
  readonly problems: readonly string[];
  readonly verdict: Verdict;
  /** One line per reason for the verdict. */
  readonly reasons: readonly string[];
  readonly exitCode: 0 | 1 | 2;
}

export interface VerdictInputs {
  readonly linearizability: CheckResult['result'] | 'not-run';
  readonly lostWrites: number;
  readonly crashes: readonly NodeCrash[];
  /** Null when recovery was not attempted (setup failed, or the run was interrupted). */
  readonly recovered: boolean | null;
  readonly recoveryProblem: string | null;
  readonly okOps: number;
  readonly problems: readonly string[];
}

/**
 * Violations win over everything: a crash, a non-linearizable history or a lost acknowledged write
 * is a failure even if the run was also cut short. Otherwise anything that kept the check from
 * being complete makes the run inconclusive.
 */
export function decideVerdict(inputs: VerdictInputs): { verdict: Verdict; reasons: string[] } {
  const violations: string[] = [];
  for (const crash of inputs.crashes) {
    violations.push(`node ${crash.node} exited on its own (code ${crash.code ?? '-'}, signal ${crash.signal ?? '-'})`);
  }
  if (inputs.linearizability === 'violation') violations.push('the history is not linearizable');
  if (inputs.lostWrites > 0) violations.push(`${inputs.lostWrites} acknowledged write(s) lost`);
  if (violations.length > 0) return { verdict: 'violation', reasons: violations };

  const doubts = [...inputs.problems];
  if (inputs.recovered === false)
    doubts.push(`the cluster did not recover: ${inputs.recoveryProblem ?? 'unknown reason'}`);
  if (inputs.recovered === null && doubts.length === 0) doubts.push('the cluster was not healed and read back');
  if (inputs.linearizability === 'unknown')
    doubts.push('the linearizability checker ran out of budget on some key (raise --checker-steps)');
  if (inputs.linearizability === 'not-run') doubts.push('the history was not checked');
  if (inputs.okOps === 0) doubts.push('no operation succeeded: nothing was tested');
  if (doubts.length > 0) return { verdict: 'inconclusive', reasons: doubts };
  return { verdict: 'pass', reasons: ['linearizable, no acknowledged write lost, no node crashed'] };
}
