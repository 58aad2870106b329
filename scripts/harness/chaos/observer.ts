// Watches the cluster while it runs: every node's /status every 200 ms, for the live progress line
// ("leader n2, term 7") and as a fallback record of leader changes when node logs are unavailable.
// The report's leader changes come from the node logs (leaders.ts), which miss no election.
import type { ChaosCluster } from './chaos-cluster.js';
import { sleep, type RunClock } from './clock.js';
import type { Leadership } from './leaders.js';

const INTERVAL_MS = 200;
const STATUS_TIMEOUT_MS = 300;

export class LeaderObserver {
  /** The leader with the highest term seen in the last poll, or null. */
  leader: { id: string; term: number } | null = null;
  readonly leaderships: Leadership[] = [];
  private readonly stopController = new AbortController();
  private loop: Promise<void> = Promise.resolve();
  private readonly seen = new Set<string>();

  constructor(
    private readonly cluster: ChaosCluster,
    private readonly urls: ReadonlyMap<string, string>,
    private readonly clock: RunClock,
  ) {}

  start(): void {
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopController.abort();
    await this.loop;
  }

  private async run(): Promise<void> {
    const signal = this.stopController.signal;
    while (!signal.aborted) {
      const started = this.clock.now();
      await this.poll();
      await sleep(INTERVAL_MS - (this.clock.now() - started), signal);
    }
  }

  private async poll(): Promise<void> {
    const running = this.cluster.ids.filter((id) => this.cluster.state(id) === 'running');
    const statuses = await Promise.all(running.map((id) => this.status(id)));
    let best: { id: string; term: number } | null = null;
    for (const s of statuses) {
      if (s !== null && s.role === 'leader' && (best === null || s.term > best.term)) best = { id: s.id, term: s.term };
    }
    this.leader = best;
    if (best !== null && !this.seen.has(`${best.term}/${best.id}`)) {
      this.seen.add(`${best.term}/${best.id}`);
      this.leaderships.push({ at: this.clock.now(), term: best.term, leader: best.id });
    }
  }

  private async status(id: string): Promise<{ id: string; role: string; term: number } | null> {
    const url = this.urls.get(id);
    if (url === undefined) return null;
    try {
      const res = await fetch(`${url}/status`, { signal: AbortSignal.timeout(STATUS_TIMEOUT_MS) });
      if (res.status !== 200) {
        await res.arrayBuffer();
        return null;
      }
      return (await res.json()) as { id: string; role: string; term: number };
    } catch {
      return null;
    }
  }
}
