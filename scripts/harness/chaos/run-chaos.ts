// One chaos run, start to verdict: cluster up, clients and nemesis for the duration, heal and read
// every key, check the history, write the run directory (history, node logs, summary, report).
// Every process it starts is killed by PID before it returns, whatever happened.
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { adminRequest } from './admin-client.js';
import { analyzeRun } from './analyze.js';
import { ChaosCluster, tailOfFile } from './chaos-cluster.js';
import { ClientTargets } from './client-targets.js';
import { RunClock, sleep } from './clock.js';
import { recoverAndReadAll, type FinalReadsResult } from './final-reads.js';
import { KvClient } from './kv-client.js';
import { leadershipsFromLogs, type Leadership } from './leaders.js';
import { MemberSlots } from './member-slots.js';
import { MembershipNemesis } from './membership-nemesis.js';
import { Nemesis } from './nemesis.js';
import { isPartition } from './nemesis-kinds.js';
import { FaultSwitchNetwork, type NetworkFaults } from './network.js';
import { NetnsNetwork, netnsUnavailable } from './netns.js';
import { LeaderObserver } from './observer.js';
import type { ChaosOptions } from './options.js';
import { Progress, type ProgressMode } from './progress.js';
import { HistoryRecorder } from './recorder.js';
import type { ChaosSummary, CrashReport } from './result.js';
import { generateSchedule } from './schedule.js';
import { snapshotActivityFromLogs } from './snapshots.js';
import { renderReport } from './report-html.js';
import { formatSummary } from './format-summary.js';
import { Workload } from './workload.js';
import { UnresponsiveNodes } from './unresponsive-nodes.js';

export interface RunHooks {
  /** How progress is shown (default none). */
  readonly progress?: ProgressMode;
  /** Where text goes (default stdout). */
  readonly write?: (text: string) => void;
  /** Aborting it ends the run early (Ctrl-C): cleanup and a report of what ran, verdict at best inconclusive. */
  readonly signal?: AbortSignal;
}

export interface ChaosRun {
  readonly summary: ChaosSummary;
  readonly runDir: string;
}

/** How long the cluster gets to elect its first leader, and to recover after the faults. */
const STARTUP_TIMEOUT_MS = 20_000;
const RECOVERY_TIMEOUT_MS = 30_000;
const LOG_TAIL_LINES = 30;

export async function runChaos(options: ChaosOptions, hooks: RunHooks = {}): Promise<ChaosRun> {
  const write = hooks.write ?? ((text: string) => void process.stdout.write(text));
  const progress = new Progress(hooks.progress ?? 'none', write);
  const log = (line: string): void => progress.log(line);
  const clock = new RunClock();
  const startedAt = new Date(clock.wallOrigin);
  const runDir = resolve(options.outDir ?? join('chaos-runs', `${timestamp(startedAt)}-${options.seed}`));
  mkdirSync(join(runDir, 'nodes'), { recursive: true });

  const nodeIds = Array.from({ length: options.nodes }, (_, i) => `n${i + 1}`);
  const keys = Array.from({ length: options.keys }, (_, i) => `k${i}`);
  const schedule = generateSchedule({
    seed: options.seed,
    kinds: options.kinds,
    nodeIds,
    durationMs: options.durationMs,
    faultMs: options.faultMs,
    gapMs: options.gapMs,
  });
  log(
    `chaos run: seed ${options.seed}, ${options.nodes} nodes, ${options.clients} clients, ${options.durationMs / 1000} s, ` +
      `nemesis ${options.kinds.join(',') || 'none'} (${schedule.length} faults planned), network ${options.network}, ` +
      `workload ${options.workload}` +
      (options.snapshot === null
        ? ''
        : `, snapshots every ${options.snapshot.everyEntries} entries keeping ${options.snapshot.keepEntries}`) +
      (options.unsafeMode === null ? '' : `, UNSAFE node mode ${options.unsafeMode}`),
  );
  log(`run dir: ${runDir}`);

  const recorder = new HistoryRecorder(options.maxOps, join(runDir, 'history.jsonl'));
  const problems: string[] = [];
  let cluster: ChaosCluster | null = null;
  let netns: NetnsNetwork | null = null;
  let nemesis: Nemesis | null = null;
  let observer: LeaderObserver | null = null;
  let finalReads: FinalReadsResult | null = null;
  let targets: ClientTargets | null = null;
  let workloadFrom = 0;
  let workloadTo = 0;
  const crashed = new AbortController();
  try {
    if (options.network === 'netns') {
      const unavailable = await netnsUnavailable();
      if (unavailable !== null) throw new SetupError(unavailable);
      try {
        netns = await NetnsNetwork.setup(nodeIds);
      } catch (error) {
        throw new SetupError(`could not set up the network namespaces: ${(error as Error).message}`);
      }
    }
    const namespaces = netns;
    const serverTimeoutMs = Math.max(200, Math.round(options.requestTimeoutMs * 0.75));
    cluster = await ChaosCluster.create(
      {
        nodes: options.nodes,
        faultInjection: true,
        keepDir: true,
        // Answer stuck requests before the client's own deadline, so more outcomes are definite.
        limits: { writeTimeoutMs: serverTimeoutMs, readTimeoutMs: serverTimeoutMs },
        ...(options.snapshot === null
          ? {}
          : {
              raft: {
                snapshotEveryEntries: options.snapshot.everyEntries,
                snapshotKeepEntries: options.snapshot.keepEntries,
              },
            }),
        ...(options.unsafeMode === null ? {} : { env: { RAFTKV_UNSAFE_TEST_MODE: options.unsafeMode } }),
        ...(namespaces === null
          ? {}
          : { hostOf: (id: string) => namespaces.hostOf(id), spawnPrefix: (id: string) => namespaces.spawnPrefix(id) }),
      },
      clock,
    );
    const live = cluster;
    // Ctrl-C in a terminal goes to the whole process group, the nodes included: they stop cleanly,
    // and that is no crash.
    hooks.signal?.addEventListener('abort', () => live.expectAllExits(), { once: true });
    cluster.onCrash((crash) => {
      log(`!!! node ${crash.node} exited on its own (code ${crash.code}, signal ${crash.signal}): stopping the run`);
      crashed.abort();
    });
    // The nodes the clients (and the observer) talk to: the members, as membership changes go on.
    const clientTargets = new ClientTargets(new Map(live.processes.nodes.map((n) => [n.id, n.clientUrl])));
    targets = clientTargets;
    const urls = clientTargets.urls;
    const network = namespaces ?? faultSwitch(options, live);
    namespaces?.setPorts(
      new Map(
        live.processes.nodes.map((n) => [
          n.id,
          { client: Number(new URL(n.clientUrl).port), peer: Number(new URL(n.peerUrl).port) },
        ]),
      ),
    );
    cluster.startAll();
    try {
      const leader = await live.processes.waitForLeader(STARTUP_TIMEOUT_MS);
      log(`cluster up: leader ${leader}`);
    } catch (error) {
      throw new SetupError(`the cluster elected no leader at startup: ${(error as Error).message}`);
    }

    observer = new LeaderObserver(live, urls, clock);
    observer.start();
    const slots = new MemberSlots(nodeIds);
    const changes = options.kinds.includes('membership')
      ? new MembershipNemesis({
          processes: live,
          admin: (node, method, path, body, timeoutMs, signal) =>
            adminRequest(live.processes.node(node).clientUrl, method, path, body, timeoutMs, signal),
          targets: clientTargets,
          slots,
          clock,
          log,
          firstIds: nodeIds,
        })
      : null;
    nemesis = new Nemesis(live, network, schedule, clock, log, { changes, resolve: (id) => slots.resolve(id) });
    const workload = new Workload(
      // `clientTargets.ids` is changed in place as members come and go: each operation picks from it.
      {
        seed: options.seed,
        clients: options.clients,
        keys,
        nodeIds: clientTargets.ids,
        workload: options.workload,
        mix: options.mix,
        // Clients skip a node that did not answer for a while, as a real client's balancer does.
        unresponsive: new UnresponsiveNodes(() => clock.now()),
      },
      () => new KvClient({ urls, timeoutMs: options.requestTimeoutMs }),
      recorder,
      clock,
    );
    workloadFrom = clock.now();
    workload.start();
    nemesis.start(workloadFrom + options.durationMs);
    const watched = { observer, nemesis };
    progress.start({
      elapsedMs: () => clock.now() - workloadFrom,
      durationMs: options.durationMs,
      counts: () => recorder.counts,
      fault: () => watched.nemesis.current,
      leader: () => watched.observer.leader,
    });

    const stop = AbortSignal.any([crashed.signal, ...(hooks.signal === undefined ? [] : [hooks.signal])]);
    await Promise.race([sleep(options.durationMs, stop), workload.done]);
    await workload.stop();
    workloadTo = clock.now();
    if (!recorder.hasRoom)
      problems.push(`the history cap (--max-ops ${options.maxOps}) was reached; the clients stopped early`);
    await nemesis.stop();
    progress.stop();
    if (hooks.signal?.aborted === true) {
      problems.push('the run was interrupted');
    } else {
      log('healing everything, restarting dead nodes, reading every key...');
      const kv = new KvClient({ urls, timeoutMs: options.requestTimeoutMs });
      try {
        finalReads = await recoverAndReadAll({
          cluster: live,
          network,
          kv,
          recorder,
          clock,
          keys,
          timeoutMs: RECOVERY_TIMEOUT_MS,
        });
      } finally {
        await kv.close();
      }
      if (finalReads.recovered) log(`recovered: leader ${finalReads.leader}, ${finalReads.values.size} keys read`);
      else log(`did not recover: ${finalReads.problem}`);
      for (const stuck of finalReads.stuckNodes)
        log(`warning: ${stuck.node} served no linearizable read after recovery (${stuck.answers})`);
    }
  } catch (error) {
    problems.push(
      error instanceof SetupError ? error.message : `runner error: ${(error as Error).stack ?? String(error)}`,
    );
  } finally {
    progress.stop();
    await observer?.stop().catch(() => undefined);
    await cluster?.destroy().catch((error: unknown) => problems.push(`cleanup: ${String(error)}`));
    // After the nodes are gone: their namespaces, veth pairs, bridge and iptables rule.
    for (const problem of (await netns?.teardown()) ?? []) problems.push(`netns cleanup: ${problem}`);
    await recorder.close();
  }

  const endedAt = clock.now();
  const nodeLogs = cluster === null ? new Map<string, string>() : collectLogs(cluster, runDir);
  const crashes: CrashReport[] = (cluster?.crashes ?? []).map((crash) => ({
    ...crash,
    logTail: tailOfFile(join(runDir, 'nodes', `${crash.node}.log`), LOG_TAIL_LINES),
  }));
  if (cluster !== null) rmSync(cluster.processes.dir, { recursive: true, force: true });

  const fromLogs = leadershipsFromLogs([...nodeLogs.values()], (t) => clock.fromWall(t));
  const leaderships: Leadership[] = fromLogs.length > 0 ? fromLogs : (observer?.leaderships ?? []);

  log(`checking ${recorder.ops.length} operations for linearizability...`);
  const summary = analyzeRun({
    options,
    startedAt,
    // Every node that ever served clients, the ones that joined later included.
    nodeIds: targets === null ? nodeIds : [...targets.urls.keys()],
    schedule,
    ops: recorder.ops,
    unexpectedAnswers: recorder.unexpected,
    capReached: !recorder.hasRoom,
    workloadFrom,
    workloadTo,
    endedAt,
    faults: nemesis?.records ?? [],
    leaderships,
    snapshots: snapshotActivityFromLogs(nodeLogs, (t) => clock.fromWall(t)),
    finalReads,
    crashes,
    problems,
  });
  writeFileSync(join(runDir, 'summary.json'), `${JSON.stringify(summary, null, 1)}\n`);
  writeFileSync(join(runDir, 'report.html'), renderReport(summary));
  write(`${formatSummary(summary, runDir)}\n`);
  return { summary, runDir };
}

class SetupError extends Error {}

function faultSwitch(options: ChaosOptions, cluster: ChaosCluster): NetworkFaults {
  const needsSwitch = options.kinds.some(isPartition);
  return new FaultSwitchNetwork(
    // The members of the moment that can answer: a killed node's switch is empty when it restarts.
    () =>
      cluster.ids
        .filter((id) => cluster.state(id) !== 'killed')
        .map((id) => ({ id, peerUrl: cluster.processes.node(id).peerUrl })),
    { token: cluster.processes.token, clusterId: cluster.processes.clusterId },
    needsSwitch ? 5000 : 1000,
  );
}

/** Copies every node's log into the run directory and returns their contents by node id. */
function collectLogs(cluster: ChaosCluster, runDir: string): Map<string, string> {
  const texts = new Map<string, string>();
  for (const node of cluster.processes.nodes) {
    if (!existsSync(node.logFile)) continue;
    const target = join(runDir, 'nodes', `${node.id}.log`);
    copyFileSync(node.logFile, target);
    texts.set(node.id, readFileSync(target, 'utf8'));
  }
  return texts;
}

function timestamp(date: Date): string {
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${date.getFullYear()}${pad(date.getMonth() + 1)}${pad(date.getDate())}-${pad(date.getHours())}${pad(date.getMinutes())}${pad(date.getSeconds())}`;
}
