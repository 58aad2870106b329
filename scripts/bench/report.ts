// The benchmark's result as one JSON document (scripts/bench/results/<timestamp>.json): everything measured,
// the machine it ran on, and the derived figures (ratios, batching factor, targets).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { REPO_ROOT } from '../harness/cluster/process-cluster.js';
import type { BenchOptions } from './options.js';
import type {
  CaseResult,
  MachineInfo,
  NodeMemory,
  ReadPathResult,
  ScanUnderWriteResult,
  ToolName,
  VariantRun,
} from './types.js';
import { evaluateTargets, type TargetResult } from './targets.js';

export interface Batching {
  /** Sum over the nodes of synchronous log writes during the measured PUT runs. */
  readonly fsyncs: number;
  /** Client writes acknowledged (raftkv) or answered 2xx (etcd) during the same runs. */
  readonly writes: number;
  /** fsyncs / writes: 3 means one fsync per write on each of 3 nodes (no batching); lower is better. */
  readonly fsyncsPerWrite: number | null;
  /** Peer requests sent by all nodes / writes (raftkv; absent for etcd and in older results). */
  readonly peerRequestsPerWrite?: number | null;
}

export interface BenchReport {
  readonly format: 1;
  /** When measuring began (after any --wait-for-load). */
  readonly startedAt: string;
  /** Seconds spent waiting for the load average to drop first. */
  readonly waitedForLoadS?: number;
  readonly finishedAt: string;
  readonly command: string;
  readonly options: BenchOptions;
  readonly machine: MachineInfo;
  readonly tool: ToolName;
  readonly systems: { readonly raftkv: string | null; readonly etcd: string | null };
  /** Flags given to every etcd member besides names, URLs and data dirs. */
  readonly etcdFlags: readonly string[] | null;
  /** etcd processes not started by the benchmark that were running (they share the CPU). */
  readonly foreignEtcdPids: readonly number[];
  readonly cases: readonly CaseResult[];
  readonly memory: { readonly afterWrites: readonly NodeMemory[]; readonly atEnd: readonly NodeMemory[] };
  readonly batching: { readonly raftkv: Batching | null; readonly etcd: Readonly<Record<string, Batching>> };
  /**
   * raftkv linearizable GET / GET through the log at the highest connection count (issue 4: >= 3):
   * from readPath when it ran, else from the two cases' runs.
   */
  readonly readPathRatio: number | null;
  readonly readPath?: ReadPathResult | null;
  readonly scanUnderWrite: readonly ScanUnderWriteResult[];
  readonly targets: readonly TargetResult[];
  readonly notes: readonly string[];
}

export function defaultResultPath(startedAt: Date): string {
  return join(REPO_ROOT, 'scripts/bench/results', `${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
}

export function writeReport(path: string, report: BenchReport): void {
  mkdirSync(dirname(path), { recursive: true });
  // JSON has no Infinity: a p99 ratio over a zero p99 is written as null.
  writeFileSync(path, `${JSON.stringify(report, null, 2)}\n`);
}

export function batchingOf(runs: readonly VariantRun[]): Batching | null {
  if (runs.length === 0) return null;
  const fsyncs = runs.reduce((sum, r) => sum + r.deltas.fsyncs, 0);
  // raftkv counts acknowledged writes itself; for etcd the 2xx answers stand in.
  const writes = runs.reduce(
    (sum, r) => sum + (r.deltas.writesAcknowledged ?? Math.max(0, r.load.requests - r.load.non2xx)),
    0,
  );
  const counted = runs.every((r) => r.deltas.peerRequests !== undefined);
  const peerRequests = runs.reduce((sum, r) => sum + (r.deltas.peerRequests ?? 0), 0);
  return {
    fsyncs,
    writes,
    fsyncsPerWrite: writes > 0 ? fsyncs / writes : null,
    ...(counted ? { peerRequestsPerWrite: writes > 0 ? peerRequests / writes : null } : {}),
  };
}

/** An earlier run's JSON, its targets evaluated again by today's rules. */
export function readReport(path: string): BenchReport {
  const report = JSON.parse(readFileSync(path, 'utf8')) as BenchReport;
  const targets = evaluateTargets({
    cases: report.cases,
    maxConnections: Math.max(...report.options.connections),
    readPathRatio: report.readPathRatio,
    readPath: report.readPath ?? null,
    memory: report.memory.atEnd,
    memoryAfterWrites: report.memory.afterWrites,
    scanUnderWrite: report.scanUnderWrite,
    vsEtcd: report.systems.etcd !== null,
  });
  return { ...report, targets };
}
