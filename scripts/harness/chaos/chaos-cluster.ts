// The cluster as the nemesis sees it: ProcessCluster's real node processes, plus what a chaos run
// needs on top: the environment every incarnation is started with (a test-only unsafe mode), which
// nodes are killed or paused, and, above all, telling the nemesis's own kills apart from a node
// that exits on its own (a crash: the run fails with the node's log tail). With membership changes
// it also holds the nodes that join later (prepared, then started with --join) and retires the
// removed ones: a retired node is stopped for good and is no member of the run any more.
import type { ChildProcess } from 'node:child_process';
import { closeSync, openSync, readSync, fstatSync } from 'node:fs';
import { ProcessCluster, waitFor, type NodeStatus, type ProcessClusterOptions } from '../cluster/process-cluster.js';
import type { RunClock } from './clock.js';

/**
 * `pending`: a joiner prepared (ports, data dir) but not started; `retired`: removed from the
 * cluster (or never added) and stopped for good. Neither is restarted by a heal or in recovery.
 */
export type NodeState = 'running' | 'paused' | 'killed' | 'pending' | 'retired';

export interface NodeCrash {
  readonly node: string;
  /** Run-clock time of the exit. */
  readonly at: number;
  readonly code: number | null;
  readonly signal: string | null;
}

export interface ChaosClusterOptions extends ProcessClusterOptions {
  /** Extra environment of every node process (e.g. RAFTKV_UNSAFE_TEST_MODE). */
  readonly env?: Record<string, string>;
}

export class ChaosCluster {
  readonly crashes: NodeCrash[] = [];
  private readonly states = new Map<string, NodeState>();
  /** Processes the nemesis (or the final cleanup) is about to signal to death: their exit is no crash. */
  private readonly expectedExits = new WeakSet<ChildProcess>();
  private crashListener: ((crash: NodeCrash) => void) | null = null;
  /** Set when the run is interrupted: Ctrl-C in a terminal also reaches the nodes, which then stop. */
  private expectingAllExits = false;

  private constructor(
    readonly processes: ProcessCluster,
    private readonly env: Record<string, string>,
    private readonly clock: RunClock,
  ) {
    for (const node of processes.nodes) this.states.set(node.id, 'killed');
  }

  static async create(options: ChaosClusterOptions, clock: RunClock): Promise<ChaosCluster> {
    const processes = await ProcessCluster.create(options);
    return new ChaosCluster(processes, options.env ?? {}, clock);
  }

  /** The run's members: every node but joiners not started yet and retired nodes. */
  get ids(): string[] {
    return this.processes.nodes.map((n) => n.id).filter((id) => this.isMember(this.state(id)));
  }

  /** The members and the joiners not started yet: what a membership turn must account for. */
  memberIds(): string[] {
    return this.processes.nodes.map((n) => n.id).filter((id) => this.state(id) !== 'retired');
  }

  private isMember(state: NodeState): boolean {
    return state !== 'pending' && state !== 'retired';
  }

  /** A new node that will join through `via` (ProcessCluster.addJoiner): pending until started. */
  async addJoiner(id: string, via: string): Promise<{ clientUrl: string; peerUrl: string }> {
    const node = await this.processes.addJoiner(id, via);
    this.states.set(id, 'pending');
    return { clientUrl: node.clientUrl, peerUrl: node.peerUrl };
  }

  /**
   * The joiner was promoted, so its data dir holds the membership: from now on it restarts from its
   * data dir alone. With --join, a restart would wait for the member it joined through, which may
   * have been removed since.
   */
  joined(id: string): void {
    const node = this.processes.node(id);
    node.extraArgs = ['--data-dir', node.dataDir];
  }

  /** Stops a removed node (or a joiner never added) for good: SIGTERM, its exit expected; never restarted. */
  async retire(id: string): Promise<void> {
    const paused = this.state(id) === 'paused';
    this.states.set(id, 'retired');
    const child = this.processes.node(id).process;
    if (child === null) return;
    this.expectedExits.add(child);
    if (paused) child.kill('SIGCONT');
    await this.processes.kill(id, 'SIGTERM');
  }

  state(id: string): NodeState {
    return this.states.get(id) ?? 'killed';
  }

  onCrash(listener: (crash: NodeCrash) => void): void {
    this.crashListener = listener;
  }

  start(id: string): void {
    if (this.state(id) === 'retired') throw new Error(`${id} was retired: it never starts again`);
    const node = this.processes.start(id, this.env);
    const child = node.process;
    if (child === null) throw new Error(`${id} did not start`);
    this.states.set(id, 'running');
    child.once('exit', (code, signal) => {
      if (this.expectingAllExits || this.expectedExits.has(child)) return;
      this.states.set(id, 'killed');
      const crash: NodeCrash = { node: id, at: this.clock.now(), code, signal };
      this.crashes.push(crash);
      this.crashListener?.(crash);
    });
  }

  /** From now on no exit counts as a crash (the run was interrupted). */
  expectAllExits(): void {
    this.expectingAllExits = true;
  }

  startAll(): void {
    for (const id of this.ids) if (this.state(id) === 'killed') this.start(id);
  }

  /** kill -9, and wait for the process to be gone. */
  async kill(id: string): Promise<void> {
    const child = this.processes.node(id).process;
    if (child === null) return;
    this.expectedExits.add(child);
    this.states.set(id, 'killed');
    await this.processes.kill(id, 'SIGKILL');
  }

  pause(id: string): void {
    if (this.state(id) !== 'running') return;
    this.processes.node(id).process?.kill('SIGSTOP');
    this.states.set(id, 'paused');
  }

  resume(id: string): void {
    if (this.state(id) !== 'paused') return;
    this.processes.node(id).process?.kill('SIGCONT');
    this.states.set(id, 'running');
  }

  /** Restarts a killed node and waits (bounded) until it answers; a node that never does crashed or is stuck. */
  async restart(id: string, timeoutMs = 15_000): Promise<void> {
    if (this.state(id) !== 'killed') return;
    this.start(id);
    await this.waitUp(id, timeoutMs);
  }

  async waitUp(id: string, timeoutMs: number): Promise<void> {
    const url = this.processes.node(id).clientUrl;
    await waitFor(
      `${id} to answer /livez`,
      async () => {
        if (this.state(id) === 'killed') throw new Error(`${id} exited`);
        const res = await fetch(`${url}/livez`, { signal: AbortSignal.timeout(500) });
        await res.arrayBuffer();
        return res.status === 200 ? true : undefined;
      },
      timeoutMs,
    );
  }

  /** SIGCONT every paused node, restart every killed one. */
  async reviveAll(timeoutMs = 15_000): Promise<void> {
    for (const id of this.ids) this.resume(id);
    await Promise.all(this.ids.map((id) => this.restart(id, timeoutMs)));
  }

  status(id: string): Promise<NodeStatus | null> {
    return this.processes.status(id);
  }

  /** The leader with the highest term among the reachable running nodes, or null. */
  async currentLeader(): Promise<{ id: string; term: number } | null> {
    const running = this.ids.filter((id) => this.state(id) === 'running');
    const statuses = await Promise.all(running.map((id) => this.status(id)));
    let best: { id: string; term: number } | null = null;
    for (const s of statuses) {
      if (s?.role === 'leader' && (best === null || s.term > best.term)) best = { id: s.id, term: s.term };
    }
    return best;
  }

  /** Waits (bounded) for a leader; null if none shows up in time. */
  async findLeader(timeoutMs: number): Promise<string | null> {
    try {
      return await waitFor('a leader', async () => (await this.currentLeader())?.id, timeoutMs, 50);
    } catch {
      return null;
    }
  }

  /** Kills every process this run started (by PID) and closes the logs; the directory is kept. */
  async destroy(): Promise<void> {
    for (const node of this.processes.nodes) if (node.process !== null) this.expectedExits.add(node.process);
    await this.processes.destroy();
  }
}

/** The last `lines` lines of a file (reads at most 64 KiB from its end). */
export function tailOfFile(path: string, lines: number): string[] {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return [];
  }
  try {
    const size = fstatSync(fd).size;
    const length = Math.min(size, 64 * 1024);
    const buffer = Buffer.alloc(length);
    readSync(fd, buffer, 0, length, size - length);
    const all = buffer.toString('utf8').split('\n');
    if (all.at(-1) === '') all.pop();
    return all.slice(-lines);
  } finally {
    closeSync(fd);
  }
}
