// The whole benchmark: fresh clusters, preload, then every case at every connection count with the
// systems interleaved (raftkv X, etcd X, next...; the order alternates so neither always runs first
// on a machine whose load drifts), memory and batching, then scan-under-write on fresh clusters.
// Whatever happens, the session's cleanup kills every process we started and removes temp dirs.
import { raftkvRun } from './case-runs.js';
import { CASES, variantsFor } from './cases.js';
import { ensureEtcd, type EtcdBinary } from './etcd-install.js';
import { ETCD_COMMON_FLAGS } from './etcd-cluster.js';
import { EtcdSystem } from './etcd-system.js';
import { nodeArgsFromEnv } from '../../src/node-flags.js';
import { loadAverage, machineBasics } from './host.js';
import { KeySpace } from './keys.js';
import { chooseTool, LoadGenerator } from './load.js';
import { measureVariant } from './measure.js';
import type { BenchOptions } from './options.js';
import { RaftkvSystem, raftkvVersion } from './raftkv-system.js';
import { batchingOf, type Batching, type BenchReport } from './report.js';
import { scanUnderWrite } from './scan-under-write.js';
import type { BenchSession } from './session.js';
import type { BenchSystem } from './system.js';
import { evaluateTargets } from './targets.js';
import {
  totalErrors,
  type CaseName,
  type CaseResult,
  type NodeMemory,
  type ReadPathResult,
  type ScanUnderWriteResult,
  type VariantRun,
} from './types.js';
import { buildTables, type VarTables } from './workload.js';

export type Log = (line: string) => void;

/** Distinct random values the load generators pick from (and the preload cycles through). */
const VALUE_POOL = 64;

function nodeArgsOrUndefined(): string[] | undefined {
  const args = nodeArgsFromEnv();
  return args.length === 0 ? undefined : args;
}

async function waitForLoad(options: BenchOptions, log: Log): Promise<void> {
  if (options.waitForLoadS <= 0) return;
  const deadline = Date.now() + options.waitForLoadS * 1000;
  while ((loadAverage()[0] ?? 0) >= options.maxLoad && Date.now() < deadline) {
    log(
      `load average ${loadAverage().join(' ')} >= ${options.maxLoad}: waiting (up to ${Math.round((deadline - Date.now()) / 1000)} s more)`,
    );
    await new Promise((r) => setTimeout(r, 10_000));
  }
}

function describeRun(r: VariantRun): string {
  if (r.failed !== undefined) return `${r.variant.padEnd(8)} FAILED: ${r.failed}`;
  const l = r.load;
  return `${r.variant.padEnd(8)} ${l.reqPerSec.toFixed(0).padStart(7)} req/s  p50 ${l.p50Ms.toFixed(2)} ms  p99 ${l.p99Ms.toFixed(2)} ms  errors ${totalErrors(l)}  leader changes ${r.deltas.leaderChanges}`;
}

async function startRaftkv(
  session: BenchSession,
  keys: KeySpace,
  values: readonly string[],
  env: Record<string, string> | undefined,
  raft: Readonly<Record<string, number>>,
  log: Log,
): Promise<{ system: RaftkvSystem; stop: () => Promise<void> }> {
  const started = Date.now();
  const nodeArgs = nodeArgsOrUndefined();
  const system = await RaftkvSystem.start({
    processes: session.processes,
    raft,
    ...(env === undefined ? {} : { env }),
    ...(nodeArgs === undefined ? {} : { nodeArgs }),
  });
  const stop = session.own(() => system.stop());
  session.adoptDir(system.dir);
  log(`raftkv: 3 nodes up (leader ${await system.leader()}) in ${system.dir}; preloading ${keys.count} keys`);
  await system.preload(keys, (i) => values[i % values.length] ?? '');
  log(`raftkv: ready after ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return { system, stop };
}

async function startEtcd(
  session: BenchSession,
  binary: EtcdBinary,
  keys: KeySpace,
  values: readonly string[],
  log: Log,
): Promise<{ system: EtcdSystem; stop: () => Promise<void> }> {
  const started = Date.now();
  const system = await EtcdSystem.start(binary, session.processes);
  const stop = session.own(() => system.stop());
  session.adoptDir(system.dir);
  log(
    `etcd ${binary.version}: 3 members up (leader ${await system.leader()}); preloading ${keys.count} keys through v2 and v3`,
  );
  await system.preload(keys, (i) => values[i % values.length] ?? '');
  log(`etcd: ready after ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return { system, stop };
}

interface CaseLoopResult {
  readonly cases: CaseResult[];
  readonly afterWrites: NodeMemory[];
  readonly atEnd: NodeMemory[];
}

async function runCases(
  options: BenchOptions,
  systems: readonly BenchSystem[],
  load: LoadGenerator,
  tables: VarTables,
  log: Log,
): Promise<CaseLoopResult> {
  const cases: CaseResult[] = [];
  let afterWrites: NodeMemory[] = [];
  const maxConnections = Math.max(...options.connections);
  let turn = 0;
  for (const name of options.cases) {
    const spec = CASES[name];
    for (const connections of spec.onlyMaxConnections ? [maxConnections] : options.connections) {
      const runs: VariantRun[] = [];
      for (let round = 1; round <= options.repeat; round++) {
        // Alternate which system goes first, so a drifting background load favours neither.
        const order = turn++ % 2 === 0 ? systems : [...systems].reverse();
        for (const system of order) {
          for (const variant of variantsFor(system.name, name)) {
            const measured = await measureVariant(system, variant, load, {
              connections,
              durationS: options.durationS,
              warmupS: options.warmupS,
              tables,
            });
            const run = options.repeat > 1 ? { ...measured, round } : measured;
            const which = options.repeat > 1 ? ` #${round}` : '';
            log(`${name.padEnd(12)} c=${String(connections).padEnd(3)}${which} ${describeRun(run)}`);
            runs.push(run);
          }
        }
      }
      // Keep the report's order stable (raftkv first) whatever order the runs were made in; the sort
      // is stable, so each variant's rounds stay in the order they ran.
      runs.sort((a, b) =>
        a.system === b.system ? a.variant.localeCompare(b.variant) : a.system === 'raftkv' ? -1 : 1,
      );
      cases.push({ name, connections, runs });
    }
    if (name === 'put') afterWrites = systems.flatMap((s) => s.memory());
  }
  return { cases, afterWrites, atEnd: systems.flatMap((s) => s.memory()) };
}

function etcdBatching(cases: readonly CaseResult[]): Record<string, Batching> {
  const byVariant: Record<string, Batching> = {};
  const putRuns = cases
    .filter((c) => c.name === 'put')
    .flatMap((c) => c.runs.filter((r) => r.system === 'etcd' && r.failed === undefined));
  for (const variant of new Set(putRuns.map((r) => r.variant))) {
    const b = batchingOf(putRuns.filter((r) => r.variant === variant));
    if (b !== null) byVariant[variant] = b;
  }
  return byVariant;
}

/**
 * The read-path ratio's own runs (types.ts, ReadPathResult): `pairs` pairs on the case loop's
 * cluster, the order alternating (leader, log, log, leader, ...) so that a drift in the machine's
 * speed favours neither side.
 */
async function measureReadPath(
  system: BenchSystem,
  pairs: number,
  options: BenchOptions,
  load: LoadGenerator,
  tables: VarTables,
  log: Log,
): Promise<ReadPathResult> {
  const connections = Math.max(...options.connections);
  const [linearizable] = variantsFor('raftkv', 'get-leader');
  const [throughLog] = variantsFor('raftkv', 'get-log');
  if (linearizable === undefined || throughLog === undefined)
    throw new Error('unreachable: no raftkv variant for the read path');
  const measured: { linearizable: VariantRun; log: VariantRun }[] = [];
  for (let i = 0; i < pairs; i++) {
    const run = async (name: 'get-leader' | 'get-log'): Promise<VariantRun> => {
      const r = await measureVariant(system, name === 'get-leader' ? linearizable : throughLog, load, {
        connections,
        durationS: options.durationS,
        warmupS: options.warmupS,
        tables,
      });
      log(`read path ${i + 1}/${pairs} ${name.padEnd(10)} c=${connections} ${describeRun(r)}`);
      return r;
    };
    if (i % 2 === 0) {
      const l = await run('get-leader');
      measured.push({ linearizable: l, log: await run('get-log') });
    } else {
      const g = await run('get-log');
      measured.push({ linearizable: await run('get-leader'), log: g });
    }
  }
  const ok = measured.filter((p) => p.linearizable.failed === undefined && p.log.failed === undefined);
  const mean = (side: 'linearizable' | 'log'): number =>
    ok.reduce((sum, p) => sum + p[side].load.reqPerSec, 0) / ok.length;
  const ratio = ok.length === 0 || mean('log') === 0 ? null : mean('linearizable') / mean('log');
  return { connections, pairs: measured, ratio };
}

export function readPathRatio(cases: readonly CaseResult[], maxConnections: number): number | null {
  const rps = (name: CaseName): number | null => {
    // The median round, as everywhere else (case-runs.ts).
    const found = cases.find((c) => c.name === name && c.connections === maxConnections);
    const run = found === undefined ? null : raftkvRun(found);
    return run === null || run.failed !== undefined ? null : run.load.reqPerSec;
  };
  const linearizable = rps('get-leader');
  const log = rps('get-log');
  return linearizable === null || log === null || log === 0 ? null : linearizable / log;
}

export async function runBench(
  options: BenchOptions,
  session: BenchSession,
  command: string,
  log: Log,
): Promise<BenchReport> {
  const commandAt = Date.now();
  // Taken now, right after `npm run bench` built dist/: the tree may change while the run waits.
  const builtFrom = raftkvVersion();
  await waitForLoad(options, log);
  // The run starts once the wait for a quiet machine is over.
  const startedAt = new Date();
  const loadAvgBefore = loadAverage();
  log(`load average before: ${loadAvgBefore.join(' ')}`);
  const notes: string[] = [];
  const tool = chooseTool(options.tool, options.allowInstall, log);
  const load = new LoadGenerator(tool, {
    threads: options.threads,
    timeoutS: options.timeoutS,
    dir: session.tempDir('raftkv-bench-'),
    processes: session.processes,
  });
  log(`load generator: ${tool}`);
  const keys = new KeySpace(options.keys, options.valueBytes);
  const values = keys.values(VALUE_POOL);
  const tables = buildTables(keys, values);
  const maxConnections = Math.max(...options.connections);

  let etcdBinary: EtcdBinary | null = null;
  if (options.vsEtcd && options.cases.length > 0) etcdBinary = ensureEtcd(options.allowInstall, log);
  if (etcdBinary !== null && etcdBinary.foreignPids.length > 0)
    notes.push(`etcd processes not started by the benchmark were running (pids ${etcdBinary.foreignPids.join(', ')}).`);

  let ranRaftkv = false;
  let loop: CaseLoopResult = { cases: [], afterWrites: [], atEnd: [] };
  let readPath: ReadPathResult | null = null;
  let reusable: RaftkvSystem | null = null;
  let stopReusable: (() => Promise<void>) | null = null;
  if (options.cases.length > 0) {
    const raftkv = await startRaftkv(session, keys, values, undefined, options.raft, log);
    ranRaftkv = true;
    const etcd = etcdBinary === null ? null : await startEtcd(session, etcdBinary, keys, values, log);
    const systems: BenchSystem[] = etcd === null ? [raftkv.system] : [raftkv.system, etcd.system];
    loop = await runCases(options, systems, load, tables, log);
    await etcd?.stop();
    if (options.readPathPairs > 0 && options.cases.includes('get-leader') && options.cases.includes('get-log')) {
      readPath = await measureReadPath(raftkv.system, options.readPathPairs, options, load, tables, log);
    }
    // The smoke run reuses its cluster for scan-under-write (time); a full run starts fresh ones.
    if (options.smoke && options.scanUnderWrite) {
      reusable = raftkv.system;
      stopReusable = raftkv.stop;
    } else {
      await raftkv.stop();
    }
  }

  const suw: ScanUnderWriteResult[] = [];
  if (options.scanUnderWrite) {
    const modes: Array<'pool' | 'inline'> = options.suw.inline ? ['pool', 'inline'] : ['pool'];
    for (const mode of modes) {
      log(`scan-under-write, read pool ${mode === 'pool' ? 'on (default size)' : 'off (RAFTKV_READ_POOL_THREADS=0)'}:`);
      const fresh = reusable === null || mode === 'inline';
      const cluster = fresh
        ? await startRaftkv(
            session,
            keys,
            values,
            mode === 'inline' ? { RAFTKV_READ_POOL_THREADS: '0' } : undefined,
            options.raft,
            log,
          )
        : null;
      const system = cluster?.system ?? reusable;
      if (system === null) throw new Error('unreachable: no cluster for scan-under-write');
      ranRaftkv = true;
      suw.push(
        await scanUnderWrite(
          system,
          load,
          {
            mode,
            phaseS: options.suw.phaseS,
            warmupS: options.warmupS,
            writeConnections: options.suw.writeConnections,
            scanConnections: options.suw.scanConnections,
            scanLimit: options.suw.scanLimit,
            tables,
          },
          log,
        ),
      );
      await cluster?.stop();
    }
  }
  await stopReusable?.();

  const loadAvgAfter = loadAverage();
  log(`load average after: ${loadAvgAfter.join(' ')}`);
  if ((loadAvgBefore[0] ?? 0) > machineBasics().cpus || (loadAvgAfter[0] ?? 0) > machineBasics().cpus) {
    notes.push(
      `The machine was busy (load average ${loadAvgBefore[0]} before, ${loadAvgAfter[0]} after, on ${machineBasics().cpus} CPUs): absolute figures are low; the interleaved ratios are what to compare.`,
    );
  }
  if (tool === 'autocannon')
    notes.push('autocannon ran in the benchmark process and shares the CPU with the servers; wrk is lighter.');
  const raftkvPutRuns = loop.cases
    .filter((c) => c.name === 'put')
    .flatMap((c) => c.runs.filter((r) => r.system === 'raftkv' && r.failed === undefined));
  const rpr = readPath !== null ? readPath.ratio : readPathRatio(loop.cases, maxConnections);
  const targets = evaluateTargets({
    cases: loop.cases,
    maxConnections,
    readPathRatio: rpr,
    readPath,
    memory: loop.atEnd,
    memoryAfterWrites: loop.afterWrites,
    scanUnderWrite: suw,
    vsEtcd: etcdBinary !== null,
  });
  return {
    format: 1,
    startedAt: startedAt.toISOString(),
    waitedForLoadS: Math.round((startedAt.getTime() - commandAt) / 1000),
    finishedAt: new Date().toISOString(),
    command,
    options,
    machine: { ...machineBasics(), loadAvgBefore, loadAvgAfter },
    tool,
    systems: { raftkv: ranRaftkv ? builtFrom : null, etcd: etcdBinary === null ? null : `etcd ${etcdBinary.version}` },
    etcdFlags: etcdBinary === null ? null : ETCD_COMMON_FLAGS,
    foreignEtcdPids: etcdBinary?.foreignPids ?? [],
    cases: loop.cases,
    memory: { afterWrites: loop.afterWrites, atEnd: loop.atEnd },
    batching: { raftkv: batchingOf(raftkvPutRuns), etcd: etcdBatching(loop.cases) },
    readPathRatio: rpr,
    readPath,
    scanUnderWrite: suw,
    targets,
    notes,
  };
}
