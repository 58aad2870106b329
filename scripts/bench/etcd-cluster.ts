// A three-member etcd cluster on loopback for one benchmark: free ports, a data dir per member in a
// temp dir, started by PID and stopped by PID, the dir removed after. Flags are etcd's defaults
// except what running three members side by side on one machine needs (see BENCHMARKS.md).
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdtempSync, rmSync, type WriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePorts, waitFor } from '../harness/cluster/process-cluster.js';
import type { Processes } from './processes.js';

export interface EtcdMember {
  readonly name: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly dataDir: string;
  readonly logFile: string;
  process: ChildProcess | null;
}

/**
 * The flags every member gets besides its own name, URLs and data dir. Everything else is etcd's
 * default (heartbeat 100 ms, election timeout 1000 ms, snapshot every 100,000 entries, no
 * auto-compaction, fsync on): the fair comparison is etcd as shipped against raftkv as shipped.
 */
export const ETCD_COMMON_FLAGS: readonly string[] = [
  // The v2 API is off by default in 3.4; its keys endpoint is one of the paths compared.
  '--enable-v2=true',
  // Structured logs to stderr (captured to a file per member); capnslog is deprecated in 3.4.
  '--logger=zap',
  '--log-outputs=stderr',
];

export class EtcdCluster {
  readonly members: EtcdMember[] = [];
  private readonly logs: WriteStream[] = [];
  private stopped = false;

  private constructor(
    readonly dir: string,
    private readonly binary: string,
    private readonly processes: Processes,
  ) {}

  static async start(binary: string, processes: Processes, size = 3, startTimeoutMs = 30_000): Promise<EtcdCluster> {
    const dir = mkdtempSync(join(tmpdir(), 'raftkv-bench-etcd-'));
    const cluster = new EtcdCluster(dir, binary, processes);
    try {
      const ports = await freePorts(2 * size);
      for (let i = 1; i <= size; i++) {
        const name = `e${i}`;
        cluster.members.push({
          name,
          clientUrl: `http://127.0.0.1:${ports[2 * i - 2]}`,
          peerUrl: `http://127.0.0.1:${ports[2 * i - 1]}`,
          dataDir: join(dir, name),
          logFile: join(dir, `${name}.log`),
          process: null,
        });
      }
      const token = `bench-${randomBytes(6).toString('hex')}`;
      const initialCluster = cluster.members.map((m) => `${m.name}=${m.peerUrl}`).join(',');
      for (const m of cluster.members) cluster.spawnMember(m, token, initialCluster);
      await waitFor('every etcd member to report healthy', () => cluster.allHealthy(), startTimeoutMs, 100);
    } catch (error) {
      await cluster.stop();
      throw error;
    }
    return cluster;
  }

  private spawnMember(m: EtcdMember, token: string, initialCluster: string): void {
    const log = createWriteStream(m.logFile, { flags: 'a' });
    this.logs.push(log);
    const child = spawn(
      this.binary,
      [
        '--name',
        m.name,
        '--data-dir',
        m.dataDir,
        '--listen-client-urls',
        m.clientUrl,
        '--advertise-client-urls',
        m.clientUrl,
        '--listen-peer-urls',
        m.peerUrl,
        '--initial-advertise-peer-urls',
        m.peerUrl,
        '--initial-cluster',
        initialCluster,
        '--initial-cluster-state',
        'new',
        '--initial-cluster-token',
        token,
        ...ETCD_COMMON_FLAGS,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout?.pipe(log, { end: false });
    child.stderr?.pipe(log, { end: false });
    this.processes.track(child, `etcd ${m.name}`);
    m.process = child;
    child.once('exit', () => {
      if (m.process === child) m.process = null;
    });
  }

  private async allHealthy(): Promise<true | undefined> {
    const answers = await Promise.all(
      this.members.map(async (m) => {
        if (m.process === null) throw new Error(`etcd ${m.name} exited; see ${m.logFile}`);
        try {
          const res = await fetch(`${m.clientUrl}/health`, { signal: AbortSignal.timeout(1000) });
          const body = (await res.json()) as { health?: string };
          return body.health === 'true';
        } catch {
          return false;
        }
      }),
    );
    return answers.every(Boolean) ? true : undefined;
  }

  /** SIGTERM every member (SIGKILL after 10 s), then removes the data dirs and logs. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await Promise.all(
      this.members.map(async (m) => {
        const child = m.process;
        if (child === null || child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }),
    );
    await Promise.all(this.logs.map((log) => new Promise<void>((resolve) => log.end(() => resolve()))));
    rmSync(this.dir, { recursive: true, force: true });
  }
}
