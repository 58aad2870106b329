// npm run bench:catch-up -- [--entries 1000000] [--value-bytes 100] [--connections 64]
//   [--during-connections 16] [--tool wrk|autocannon] [--keep]   (RAFTKV_NODE_ARGS: flags for each node's `node`)
//
// Measures how a follower far behind catches up (BENCHMARKS.md, "Catch-up"): a fresh three-node
// cluster with the production settings; one follower is killed; PUTs go to the leader until the log
// holds --entries entries; the follower restarts while PUTs keep coming. Reported: how long until it
// has applied everything the leader had committed when it restarted, the term changes on any node
// (there should be none), the write rate meanwhile, the leader's event-loop lag, and the restarted
// follower's (from its first answer on: with the production config's compaction, a backlog past
// snapshotEveryEntries reaches it as an InstallSnapshot, whose chunks its loop decodes and stages).
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { chooseTool, LoadGenerator } from './bench/load.js';
import { KeySpace } from './bench/keys.js';
import { nodeArgsFromEnv } from '../src/node-flags.js';
import { Processes } from './bench/processes.js';
import { metricSum } from './bench/prometheus.js';
import { PRODUCTION_RAFT } from './bench/raftkv-system.js';
import { totalErrors } from './bench/types.js';
import { buildTables, type Workload } from './bench/workload.js';
import { ProcessCluster, type NodeStatus } from './harness/cluster/process-cluster.js';
import { readLoopLag, startLoopLagWindow, type LoopLag } from './harness/cluster/loop-lag.js';

const { values } = parseArgs({
  options: {
    entries: { type: 'string', default: '1000000' },
    'value-bytes': { type: 'string', default: '100' },
    connections: { type: 'string', default: '64' },
    'during-connections': { type: 'string', default: '16' },
    tool: { type: 'string' },
    keep: { type: 'boolean', default: false },
  },
});
const entries = Number(values.entries);
const valueBytes = Number(values['value-bytes']);
const connections = Number(values.connections);
const duringConnections = Number(values['during-connections']);
const log = (line: string): void => console.error(`[catch-up ${new Date().toISOString().slice(11, 19)}] ${line}`);

const processes = new Processes();
const cluster = await ProcessCluster.create({
  ...PRODUCTION_RAFT,
  limits: { writeTimeoutMs: 5000, readTimeoutMs: 5000 },
  keepDir: values.keep,
  // As the bench takes them (say --cpu-prof --cpu-prof-dir=DIR, to profile a node's catch-up).
  nodeArgs: nodeArgsFromEnv(),
});
const tool = chooseTool(values.tool === 'autocannon' ? 'autocannon' : values.tool === 'wrk' ? 'wrk' : null, true, log);
const load = new LoadGenerator(tool, { threads: 1, timeoutS: 5, dir: cluster.dir, processes });
const keys = new KeySpace(100_000, valueBytes);
const tables = buildTables(keys, keys.values(64));

async function statuses(): Promise<NodeStatus[]> {
  return (await Promise.all(cluster.runningIds().map((id) => cluster.status(id)))).filter(
    (s): s is NodeStatus => s !== null,
  );
}

/** The follower's raftkv_snapshots_installed_total (null if /metrics did not answer). */
async function snapshotsInstalled(clientUrl: string): Promise<number | null> {
  try {
    const text = await (await fetch(`${clientUrl}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
    return metricSum(text, 'raftkv_snapshots_installed_total');
  } catch {
    return null;
  }
}

function putWorkload(baseUrl: string): Workload {
  return { baseUrl, requests: [{ method: 'PUT', path: '/kv/<key>', body: '<value>', weight: 1 }] };
}

try {
  cluster.startAll();
  for (const n of cluster.nodes) if (n.process !== null) processes.track(n.process, `raftkv ${n.id}`);
  const leader = await cluster.waitForLeader(30_000);
  const follower = cluster.nodes.map((n) => n.id).find((id) => id !== leader)!;
  const leaderUrl = cluster.node(leader).clientUrl;
  log(
    `leader ${leader}; killing follower ${follower}; writing ${entries} entries of ${valueBytes}-byte values with ${tool}, ${connections} connections`,
  );
  await cluster.kill(follower, 'SIGKILL');
  const fillStarted = Date.now();
  for (;;) {
    const commit = (await cluster.status(leader))?.commit ?? 0;
    if (commit >= entries) break;
    const result = await load.run({ workload: putWorkload(leaderUrl), tables, connections, durationS: 10 });
    log(
      `  commit ${(await cluster.status(leader))?.commit}: ${Math.round(result.reqPerSec)} PUT/s, ${totalErrors(result)} errors`,
    );
  }
  const fillS = (Date.now() - fillStarted) / 1000;
  const before = await statuses();
  const term = Math.max(...before.map((s) => s.term));
  const target = Math.max(...before.map((s) => s.commit));
  log(
    `backlog: ${target} entries in ${fillS.toFixed(0)} s; term ${term}. Restarting ${follower}, with ${duringConnections} connections of PUTs meanwhile`,
  );

  await startLoopLagWindow(leaderUrl);
  const started = Date.now();
  cluster.start(follower);
  processes.track(cluster.node(follower).process!, `raftkv ${follower}`);
  // The follower's window opens once its /metrics answers (before that it is opening its storage).
  const followerUrl = cluster.node(follower).clientUrl;
  const followerWindow = (async (): Promise<boolean> => {
    while (Date.now() - started < 60_000) {
      try {
        await startLoopLagWindow(followerUrl);
        return true;
      } catch {
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    return false;
  })();
  let caughtUpAt: number | null = null;
  let maxTerm = term;
  let writes = 0;
  let writeSeconds = 0;
  // Resolves with the follower's loop lag, read the moment it has caught up: the window ends there,
  // not with the load run going on.
  const watcher = (async (): Promise<LoopLag | null> => {
    let lag: LoopLag | null = null;
    while (caughtUpAt === null && Date.now() - started < 30 * 60_000) {
      for (const s of await statuses()) {
        maxTerm = Math.max(maxTerm, s.term);
        if (s.id === follower && s.applied >= target && caughtUpAt === null) {
          caughtUpAt = Date.now();
          if (await followerWindow) lag = await readLoopLag(followerUrl);
        }
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    return lag;
  })();
  while (caughtUpAt === null && Date.now() - started < 30 * 60_000) {
    const result = await load.run({
      workload: putWorkload(leaderUrl),
      tables,
      connections: duringConnections,
      durationS: 2,
    });
    writes += result.requests - totalErrors(result);
    writeSeconds += result.durationS;
  }
  const followerLag = await watcher;
  const lag = await readLoopLag(leaderUrl);
  const installs = await snapshotsInstalled(followerUrl);
  const after = await statuses();
  maxTerm = Math.max(maxTerm, ...after.map((s) => s.term));
  const seconds = ((caughtUpAt ?? Date.now()) - started) / 1000;
  const report = {
    backlogEntries: target,
    valueBytes,
    caughtUp: caughtUpAt !== null,
    catchUpSeconds: Number(seconds.toFixed(1)),
    entriesPerSecond: Math.round(target / seconds),
    termChanges: maxTerm - term,
    writesPerSecondMeanwhile: Math.round(writes / Math.max(1, writeSeconds)),
    leaderLoopLagMs: { p99: Number((lag.p99 * 1000).toFixed(1)), max: Number((lag.max * 1000).toFixed(1)) },
    followerLoopLagMs:
      followerLag === null
        ? null
        : { p99: Number((followerLag.p99 * 1000).toFixed(1)), max: Number((followerLag.max * 1000).toFixed(1)) },
    followerSnapshotInstalls: installs,
    tool,
  };
  console.log(JSON.stringify(report, null, 2));
  if (values.keep) log(`kept ${join(cluster.dir)}`);
  process.exitCode = report.caughtUp && report.termChanges === 0 ? 0 : 1;
} finally {
  // SIGTERM first, as the bench does: a node run with --cpu-prof writes its profile only when it exits normally.
  await cluster.killAll('SIGTERM');
  await cluster.destroy();
  await processes.killAll();
}
