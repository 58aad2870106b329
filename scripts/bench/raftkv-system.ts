// A fresh three-node raftkv cluster for one benchmark: ProcessCluster's real processes (dist/main.js)
// on free loopback ports in a temp dir, production timing, a random peer token, and the counters
// the report needs from /status and /metrics.
import { processCpuSeconds } from './host.js';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MAIN_JS, ProcessCluster, REPO_ROOT, waitFor, type NodeStatus } from '../harness/cluster/process-cluster.js';
import { getJson, getText, sendAll } from './http.js';
import { peakRssBytes } from './host.js';
import type { KeySpace } from './keys.js';
import { metricSum } from './prometheus.js';
import type { BenchSystem } from './system.js';
import type { Processes } from './processes.js';
import type { NodeMemory, SystemSnapshot } from './types.js';

export interface RaftkvStartOptions {
  /** Extra environment of every node (e.g. RAFTKV_READ_POOL_THREADS=0). */
  readonly env?: Record<string, string>;
  /** Flags for every node's `node` (RAFTKV_NODE_ARGS, e.g. --cpu-prof --cpu-prof-dir=DIR). */
  readonly nodeArgs?: readonly string[];
  /** More of cluster.config.json's raft section (bench --raft). */
  readonly raft?: Readonly<Record<string, number>>;
  readonly startTimeoutMs?: number;
  /** Tracks the node processes too, so they die with the benchmark whatever happens. */
  readonly processes?: Processes;
}

/** raftkv's production timing (cluster.config.json): a 50 ms tick, elections after 10-20 ticks. */
export const PRODUCTION_RAFT = { tickMs: 50, electionTicks: 10 } as const;

/** The package version and the git HEAD, flagged when src/ has uncommitted changes (dist/ is built from the tree). */
export function raftkvVersion(): string {
  const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
  const rev = spawnSync('git', ['rev-parse', '--short', 'HEAD'], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    timeout: 5000,
  }).stdout?.trim();
  const dirty = spawnSync('git', ['status', '--porcelain', '--', 'src'], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    timeout: 5000,
  }).stdout?.trim();
  return `raftkv ${pkg.version} (git ${rev || 'unknown'}${dirty ? ', src/ modified' : ''})`;
}

export class RaftkvSystem implements BenchSystem {
  readonly name = 'raftkv' as const;
  readonly version = raftkvVersion();
  private stopped = false;

  private constructor(private readonly cluster: ProcessCluster) {}

  static async start(options: RaftkvStartOptions = {}): Promise<RaftkvSystem> {
    if (!existsSync(MAIN_JS)) throw new Error(`${MAIN_JS} is missing: run npm run build first`);
    const cluster = await ProcessCluster.create({
      ...PRODUCTION_RAFT,
      // The production defaults (the test harness shortens them).
      limits: { writeTimeoutMs: 5000, readTimeoutMs: 5000 },
      ...(options.env === undefined ? {} : { nodeEnv: options.env }),
      ...(options.nodeArgs === undefined ? {} : { nodeArgs: options.nodeArgs }),
      ...(options.raft === undefined ? {} : { raft: { ...options.raft } }),
    });
    const system = new RaftkvSystem(cluster);
    try {
      cluster.startAll();
      for (const n of cluster.nodes) if (n.process !== null) options.processes?.track(n.process, `raftkv ${n.id}`);
      await cluster.waitForLeader(options.startTimeoutMs ?? 30_000);
    } catch (error) {
      await system.stop();
      throw new Error(
        `the raftkv cluster did not elect a leader (logs were in ${cluster.dir}): ${(error as Error).message}`,
        { cause: error },
      );
    }
    return system;
  }

  get nodeIds(): string[] {
    return this.cluster.nodes.map((n) => n.id);
  }

  get dir(): string {
    return this.cluster.dir;
  }

  clientUrl(id: string): string {
    return this.cluster.node(id).clientUrl;
  }

  leader(): Promise<string> {
    return this.cluster.waitForLeader(15_000);
  }

  async snapshot(): Promise<SystemSnapshot> {
    const leaderChanges: Record<string, number> = {};
    const terms: Record<string, number | null> = {};
    let fsyncs = 0;
    let acks = 0;
    let peerRequests = 0;
    let leader: string | null = null;
    await Promise.all(
      this.cluster.nodes.map(async (n) => {
        const [metrics, status] = await Promise.all([
          getText(`${n.clientUrl}/metrics`).catch(() => ''),
          getJson<NodeStatus>(`${n.clientUrl}/status`).catch(() => null),
        ]);
        leaderChanges[n.id] = metricSum(metrics, 'raftkv_leader_changes_total');
        fsyncs += metricSum(metrics, 'raftkv_fsyncs_total');
        acks += metricSum(metrics, 'raftkv_writes_acknowledged_total');
        peerRequests += metricSum(metrics, 'raftkv_peer_requests_total');
        terms[n.id] = status?.term ?? null;
        if (leader === null && status?.leader) leader = status.leader;
      }),
    );
    const cpuSeconds = Object.fromEntries(
      this.cluster.nodes.map((n) => [n.id, n.process?.pid === undefined ? null : processCpuSeconds(n.process.pid)]),
    );
    return { leaderChanges, terms, leader, fsyncs, writesAcknowledged: acks, peerRequests, cpuSeconds };
  }

  memory(): NodeMemory[] {
    return this.cluster.nodes.map((n) => {
      const pid = n.process?.pid ?? 0;
      const bytes = pid === 0 ? null : peakRssBytes(pid);
      return { system: 'raftkv', node: n.id, pid, peakRssMB: bytes === null ? null : bytes / 1e6 };
    });
  }

  async preload(keys: KeySpace, valueOf: (i: number) => string): Promise<void> {
    const leader = await this.leader();
    await sendAll(this.clientUrl(leader), keys.count, (i) => ({
      method: 'PUT',
      path: `/kv/${keys.key(i)}`,
      body: valueOf(i),
    }));
    // Every node must have applied the preload before reads are measured on it.
    const target = (await getJson<NodeStatus>(`${this.clientUrl(leader)}/status`)).commit;
    await waitFor(
      'every node to apply the preload',
      async () => {
        const statuses = await Promise.all(this.nodeIds.map((id) => this.cluster.status(id)));
        return statuses.every((s) => s !== null && s.applied >= target) ? true : undefined;
      },
      30_000,
    );
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    // SIGTERM first: a node run with --cpu-prof writes its profile only when it exits normally.
    await this.cluster.killAll('SIGTERM');
    await this.cluster.destroy();
  }
}
