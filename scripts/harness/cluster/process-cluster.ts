// Real raftkv processes on free loopback ports, for end-to-end tests and chaos runs.
// Every process it starts is tracked by PID and killed in `destroy()`; nothing else is touched.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdtempSync, rmSync, writeFileSync, type WriteStream } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { NODE_HEAP_FLAGS } from '../../../src/node-flags.js';

export const REPO_ROOT = resolve(import.meta.dirname, '../../..');
export const MAIN_JS = join(REPO_ROOT, 'dist/main.js');

export interface ProcessNode {
  readonly id: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly dataDir: string;
  readonly logFile: string;
  /** Flags every start of this node passes (a node that joined later: its --join and addresses). */
  extraArgs?: readonly string[];
  process: ChildProcess | null;
  /** How the last incarnation ended (null while running or never started). */
  exit: { code: number | null; signal: NodeJS.Signals | null } | null;
}

export interface ProcessClusterOptions {
  readonly nodes?: number;
  readonly tickMs?: number;
  readonly electionTicks?: number;
  readonly faultInjection?: boolean;
  readonly clusterId?: string;
  /** Keep the temp dir (logs, data) after destroy, e.g. for a chaos run's report. */
  readonly keepDir?: boolean;
  readonly dir?: string;
  readonly limits?: Record<string, number>;
  /** More of cluster.config.json's `raft` section (maxInflightBytes, logCacheBytes...). */
  readonly raft?: Record<string, number>;
  /** Extra environment of every node process (e.g. RAFTKV_READ_POOL_THREADS=0 for a benchmark). */
  readonly nodeEnv?: Record<string, string>;
  /** Flags for each node's `node` before the script (e.g. --cpu-prof), like RAFTKV_NODE_ARGS. */
  readonly nodeArgs?: readonly string[];
  /** The address each node listens on (default 127.0.0.1), e.g. one in the node's own network namespace. */
  readonly hostOf?: (id: string) => string;
  /** A command each node is started under, e.g. ['ip', 'netns', 'exec', 'ns1']: it must exec node, not fork it. */
  readonly spawnPrefix?: (id: string) => readonly string[];
  /** The node script to run (default: this checkout's dist/main.js), e.g. a production install's. */
  readonly mainJs?: string;
}

/**
 * `count` distinct free TCP ports on 127.0.0.1 (bound and released; the caller binds them right after). All are held open together before any is released:
 * asked one after another, the kernel can hand out a port it has just released again (a chaos test
 * once got the same port for two nodes, and every node refused the config).
 */
export async function freePorts(count: number): Promise<number[]> {
  const servers = Array.from({ length: count }, () => createServer());
  try {
    return await Promise.all(
      servers.map(
        (server) =>
          new Promise<number>((resolvePort, reject) => {
            server.unref();
            server.on('error', reject);
            server.listen(0, '127.0.0.1', () => {
              const address = server.address();
              resolvePort(typeof address === 'object' && address !== null ? address.port : 0);
            });
          }),
      ),
    );
  } finally {
    await Promise.all(
      servers.map(
        (server) =>
          new Promise<void>((resolveClose) => (server.listening ? server.close(() => resolveClose()) : resolveClose())),
      ),
    );
  }
}

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs: number,
  intervalMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${lastError === undefined ? '' : ` (last error: ${String(lastError)})`}`,
      );
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export interface NodeStatus {
  readonly id: string;
  readonly role: string;
  readonly term: number;
  readonly leader: string | null;
  readonly commit: number;
  readonly applied: number;
  readonly lastIndex: number;
}

export class ProcessCluster {
  readonly dir: string;
  readonly configPath: string;
  readonly clusterId: string;
  readonly token = randomBytes(24).toString('hex');
  readonly nodes: ProcessNode[] = [];
  private readonly logs = new Map<string, WriteStream>();
  private readonly options: ProcessClusterOptions;

  private constructor(options: ProcessClusterOptions, dir: string) {
    this.options = options;
    this.dir = dir;
    this.configPath = join(dir, 'cluster.config.json');
    this.clusterId = options.clusterId ?? `test-${randomBytes(4).toString('hex')}`;
  }

  static async create(options: ProcessClusterOptions = {}): Promise<ProcessCluster> {
    const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'raftkv-e2e-'));
    const cluster = new ProcessCluster(options, dir);
    const count = options.nodes ?? 3;
    const ports = await freePorts(2 * count);
    for (let i = 1; i <= count; i++) {
      const id = `n${i}`;
      const host = options.hostOf?.(id) ?? '127.0.0.1';
      cluster.nodes.push({
        id,
        clientUrl: `http://${host}:${ports[2 * i - 2]}`,
        peerUrl: `http://${host}:${ports[2 * i - 1]}`,
        dataDir: join(dir, 'data', id),
        logFile: join(dir, `${id}.log`),
        process: null,
        exit: null,
      });
    }
    cluster.writeConfig();
    return cluster;
  }

  writeConfig(clusterId = this.clusterId): void {
    const config = {
      clusterId,
      nodes: this.nodes.map((n) => ({ id: n.id, clientUrl: n.clientUrl, peerUrl: n.peerUrl, dataDir: n.dataDir })),
      raft: {
        tickMs: this.options.tickMs ?? 20,
        electionTicks: this.options.electionTicks ?? 10,
        heartbeatTicks: 1,
        ...this.options.raft,
      },
      limits: { writeTimeoutMs: 3000, readTimeoutMs: 3000, ...this.options.limits },
    };
    writeFileSync(this.configPath, JSON.stringify(config, null, 2));
  }

  node(id: string): ProcessNode {
    const node = this.nodes.find((n) => n.id === id);
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  }

  /** Starts the node's process (it must not be running). */
  start(id: string, env: Record<string, string> = {}, extraArgs: readonly string[] = []): ProcessNode {
    const node = this.node(id);
    if (node.process !== null) throw new Error(`${id} is already running`);
    let log = this.logs.get(id);
    if (log === undefined) {
      log = createWriteStream(node.logFile, { flags: 'a' });
      this.logs.set(id, log);
    }
    const args = [
      ...NODE_HEAP_FLAGS,
      ...(this.options.nodeArgs ?? []),
      this.options.mainJs ?? MAIN_JS,
      '--id',
      id,
      '--config',
      this.configPath,
      ...(this.options.faultInjection === true ? ['--fault-injection'] : []),
      ...(node.extraArgs ?? []),
      ...extraArgs,
    ];
    const [command, ...commandArgs] = [...(this.options.spawnPrefix?.(id) ?? []), process.execPath, ...args];
    const child = spawn(command!, commandArgs, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, RAFTKV_PEER_TOKEN: this.token, RAFTKV_LOG_LEVEL: 'info', ...this.options.nodeEnv, ...env },
    });
    child.stdout?.pipe(log, { end: false });
    child.stderr?.pipe(log, { end: false });
    node.process = child;
    node.exit = null;
    child.on('exit', (code, signal) => {
      node.exit = { code, signal };
      if (node.process === child) node.process = null;
    });
    return node;
  }

  /**
   * A new node that joins the running cluster through `via`'s client URL (`--join`): free ports, an
   * empty data dir, not in the cluster file. Every start (and restart) of it passes the same flags.
   * An operator still has to add it (POST /members) before it starts serving.
   */
  async addJoiner(id: string, via: string): Promise<ProcessNode> {
    if (this.nodes.some((n) => n.id === id)) throw new Error(`${id} is already a node of this cluster`);
    const [clientPort, peerPort] = await freePorts(2);
    const host = this.options.hostOf?.(id) ?? '127.0.0.1';
    const clientUrl = `http://${host}:${clientPort}`;
    const peerUrl = `http://${host}:${peerPort}`;
    const dataDir = join(this.dir, 'data', id);
    const node: ProcessNode = {
      id,
      clientUrl,
      peerUrl,
      dataDir,
      logFile: join(this.dir, `${id}.log`),
      extraArgs: [
        '--join',
        this.node(via).clientUrl,
        '--client-url',
        clientUrl,
        '--peer-url',
        peerUrl,
        '--data-dir',
        dataDir,
      ],
      process: null,
      exit: null,
    };
    this.nodes.push(node);
    return node;
  }

  startAll(): void {
    for (const n of this.nodes) if (n.process === null) this.start(n.id);
  }

  /** Sends `signal` to the node's process and, for SIGKILL/SIGTERM, waits for it to exit. */
  async kill(id: string, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const node = this.node(id);
    const child = node.process;
    if (child === null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill(signal);
    if (signal === 'SIGKILL' || signal === 'SIGTERM' || signal === 'SIGINT') {
      // A cleared timer: a pending 15 s one would keep the caller's process alive after the work.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 15_000)))]);
      clearTimeout(timer);
      if (node.process === child) {
        child.kill('SIGKILL');
        await exited;
      }
    }
  }

  async killAll(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    await Promise.all(this.nodes.map((n) => this.kill(n.id, signal)));
  }

  async restart(id: string): Promise<void> {
    await this.kill(id, 'SIGKILL');
    this.start(id);
  }

  async status(id: string): Promise<NodeStatus | null> {
    try {
      const res = await fetch(`${this.node(id).clientUrl}/status`, { signal: AbortSignal.timeout(1000) });
      return res.ok ? ((await res.json()) as NodeStatus) : null;
    } catch {
      return null;
    }
  }

  /** Waits until the running nodes agree on one leader; returns its id. */
  async waitForLeader(timeoutMs = 15_000, among: readonly string[] = this.runningIds()): Promise<string> {
    return waitFor(
      'a leader that every running node follows',
      async () => {
        const statuses = await Promise.all(among.map((id) => this.status(id)));
        const leader = statuses.find((s): s is NodeStatus => s?.role === 'leader');
        if (leader === undefined) return undefined;
        const agreed = statuses.every((s) => s !== null && s.leader === leader.id && s.term === leader.term);
        return agreed ? leader.id : undefined;
      },
      timeoutMs,
    );
  }

  runningIds(): string[] {
    return this.nodes.filter((n) => n.process !== null).map((n) => n.id);
  }

  async put(id: string, key: string, value: string, init: RequestInit = {}): Promise<Response> {
    return fetch(`${this.node(id).clientUrl}/kv/${encodeURIComponent(key)}`, {
      method: 'PUT',
      body: value,
      signal: AbortSignal.timeout(10_000),
      ...init,
    });
  }

  async get(id: string, key: string, query = ''): Promise<Response> {
    return fetch(`${this.node(id).clientUrl}/kv/${encodeURIComponent(key)}${query}`, {
      signal: AbortSignal.timeout(10_000),
    });
  }

  /** Kills every process this cluster started and removes its directory (unless kept). */
  async destroy(): Promise<void> {
    await this.killAll('SIGKILL');
    await Promise.all([...this.logs.values()].map((log) => new Promise<void>((r) => log.end(() => r()))));
    this.logs.clear();
    if (this.options.keepDir !== true) rmSync(this.dir, { recursive: true, force: true });
  }
}
