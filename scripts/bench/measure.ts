// One measured run: find the target node (the leader may have moved), warm up with the same load,
// snapshot the system's counters, run the load, snapshot again. A failure is recorded, not thrown,
// so one broken path never costs the rest of a long run.
import { deltasBetween } from './deltas.js';
import type { LoadGenerator } from './load.js';
import { followerOf, type BenchSystem } from './system.js';
import type { LoadResult, RunDeltas, ToolName, VariantRun } from './types.js';
import { describeWorkload, type VarTables, type Workload } from './workload.js';
import type { Variant } from './cases.js';
import { loadAverage } from './host.js';

export interface MeasureSettings {
  readonly connections: number;
  readonly durationS: number;
  readonly warmupS: number;
  readonly tables: VarTables;
}

export const NO_DELTAS: RunDeltas = {
  leaderChanges: 0,
  termChanges: 0,
  leaderBefore: null,
  leaderAfter: null,
  fsyncs: 0,
  writesAcknowledged: null,
};

export function emptyLoad(tool: ToolName, connections: number): LoadResult {
  return {
    tool,
    connections,
    durationS: 0,
    requests: 0,
    reqPerSec: 0,
    p50Ms: 0,
    p99Ms: 0,
    maxMs: 0,
    non2xx: 0,
    socketErrors: 0,
    timeouts: 0,
  };
}

export async function targetNode(system: BenchSystem, target: 'leader' | 'follower'): Promise<string> {
  return target === 'leader' ? system.leader() : followerOf(system);
}

export async function measureVariant(
  system: BenchSystem,
  variant: Variant,
  load: LoadGenerator,
  settings: MeasureSettings,
): Promise<VariantRun> {
  const base = { system: system.name, variant: variant.variant, target: variant.target } as const;
  let describe = variant.requests.map((r) => `${r.method} ${r.path}`).join(' + ');
  try {
    const node = await targetNode(system, variant.target);
    const workload: Workload = { baseUrl: system.clientUrl(node), requests: variant.requests };
    describe = describeWorkload(workload);
    const run = { workload, tables: settings.tables, connections: settings.connections };
    if (settings.warmupS > 0) await load.run({ ...run, durationS: settings.warmupS });
    const before = await system.snapshot();
    const loadAvg1 = loadAverage()[0] ?? 0;
    const result = await load.run({ ...run, durationS: settings.durationS });
    const after = await system.snapshot();
    return { ...base, describe: `${describe} (${node})`, load: result, deltas: deltasBetween(before, after), loadAvg1 };
  } catch (error) {
    return {
      ...base,
      describe,
      load: emptyLoad(load.tool, settings.connections),
      deltas: NO_DELTAS,
      loadAvg1: loadAverage()[0] ?? 0,
      failed: (error as Error).message,
    };
  }
}
