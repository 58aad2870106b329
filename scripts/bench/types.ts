// The shapes shared by the benchmark's parts: what a load run measures, and what a case records.

export type SystemName = 'raftkv' | 'etcd';
export type ToolName = 'wrk' | 'autocannon';
/** The interleaved cases (cases.ts says what each one runs). */
export const CASE_NAMES = ['put', 'get-leader', 'get-follower', 'get-stale', 'mixed', 'scan', 'get-log'] as const;
export type CaseName = (typeof CASE_NAMES)[number];

/** What one load-generator run measured (the same fields whichever tool ran). */
export interface LoadResult {
  readonly tool: ToolName;
  readonly connections: number;
  /** Seconds the load actually ran, as the tool reports it. */
  readonly durationS: number;
  readonly requests: number;
  readonly reqPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** Answers with a status outside 2xx. */
  readonly non2xx: number;
  /** Connect, read and write errors of the socket. */
  readonly socketErrors: number;
  /** Requests without an answer within the tool's timeout. */
  readonly timeouts: number;
}

export function totalErrors(r: LoadResult): number {
  return r.non2xx + r.socketErrors + r.timeouts;
}

/** Counters of a system read before and after a run; their deltas describe the run. */
export interface SystemSnapshot {
  /** Leader changes seen, per node (raftkv_leader_changes_total / etcd_server_leader_changes_seen_total). */
  readonly leaderChanges: Readonly<Record<string, number>>;
  /** Raft term per node (null: the node did not answer). */
  readonly terms: Readonly<Record<string, number | null>>;
  /** The leader's id as the first answering node sees it. */
  readonly leader: string | null;
  /** Synchronous log writes, summed over the nodes. */
  readonly fsyncs: number;
  /** Writes acknowledged to clients, summed over the nodes (raftkv only; null for etcd). */
  readonly writesAcknowledged: number | null;
  /** Peer requests sent, summed over the nodes (raftkv only; absent for etcd, which streams). */
  readonly peerRequests?: number;
  /** CPU seconds each node process has used so far (/proc; null: unreadable). */
  readonly cpuSeconds: Readonly<Record<string, number | null>>;
}

export interface RunDeltas {
  /** The most leader changes any one node saw (one election: one or two, as the leader is first lost). */
  readonly leaderChanges: number;
  /** Highest term after minus highest term before. */
  readonly termChanges: number;
  readonly leaderBefore: string | null;
  readonly leaderAfter: string | null;
  readonly fsyncs: number;
  readonly writesAcknowledged: number | null;
  /** Peer requests sent during the run, summed over the nodes (raftkv; absent in older results). */
  readonly peerRequests?: number;
  /** CPU seconds each node used during the run (absent in results recorded before it was measured). */
  readonly cpuSeconds?: Readonly<Record<string, number>>;
}

/** One measured run: one system, one API variant, one connection count. */
export interface VariantRun {
  readonly system: SystemName;
  /** The API path used, e.g. "raftkv", "etcd-v2", "etcd-v3". */
  readonly variant: string;
  /** How the requests look, for the report (method and path template). */
  readonly describe: string;
  readonly target: 'leader' | 'follower';
  readonly load: LoadResult;
  readonly deltas: RunDeltas;
  /** The machine's 1-minute load average as the measured part began (the machine is shared). */
  readonly loadAvg1: number;
  /** Set when the run could not be made (the error text); load then holds zeros. */
  readonly failed?: string;
  /** Which round of the case it was (1, 2, ...), with `--repeat` above 1 only. */
  readonly round?: number;
}

export interface CaseResult {
  readonly name: CaseName;
  readonly connections: number;
  readonly runs: VariantRun[];
}

export interface NodeMemory {
  readonly system: SystemName;
  readonly node: string;
  readonly pid: number;
  /** Peak resident set (VmHWM) in MB (10^6 bytes, as the target says); null when /proc could not be read. */
  readonly peakRssMB: number | null;
}

export interface MachineInfo {
  readonly cpus: number;
  readonly cpuModel: string;
  readonly totalMemMiB: number;
  readonly node: string;
  readonly platform: string;
  readonly loadAvgBefore: readonly number[];
  readonly loadAvgAfter: readonly number[];
}

/**
 * The read-path ratio's own measurement: pairs of a linearizable GET run and a GET-through-the-log
 * run on the leader, interleaved so that neither always runs first (leader, log, log, leader, ...)
 * on a machine whose speed drifts. The ratio is the mean of the first over the mean of the second.
 */
export interface ReadPathResult {
  readonly connections: number;
  readonly pairs: readonly { readonly linearizable: VariantRun; readonly log: VariantRun }[];
  readonly ratio: number | null;
}

/** A write load alone (phase A), then with concurrent big scans (phase B), on one fresh cluster. */
export interface ScanUnderWritePhase {
  readonly writes: LoadResult;
  /** null in phase A. */
  readonly scans: LoadResult | null;
  readonly deltas: RunDeltas;
}

export interface ScanUnderWriteResult {
  /** "pool" (the default read pool) or "inline" (RAFTKV_READ_POOL_THREADS=0 on every node). */
  readonly mode: 'pool' | 'inline';
  readonly writeConnections: number;
  readonly scanConnections: number;
  readonly scanLimit: number;
  readonly phaseA: ScanUnderWritePhase;
  readonly phaseB: ScanUnderWritePhase;
  /** Write p99 in B / write p99 in A. */
  readonly writeP99Ratio: number;
  /** Leader changes over both phases (the most any node saw). */
  readonly leaderChanges: number;
  readonly failed?: string;
}
