// The clients of a chaos run: `clients` concurrent loops, each doing one random get / put / delete
// at a time on a small keyspace, against a random node, until stopped.
//
// - Every put writes a value never used before in the run ("w3.417": worker 3's 417th operation),
//   so a read names the one write it saw; a value whose write was unknown is never reused.
// - A worker whose operation ended 'unknown' continues under a fresh client number (as Jepsen
//   does with a crashed process): that operation may still take effect later, and the operations
//   of one client must never overlap in time.
// - After a refusal the worker backs off briefly: a dead node refuses in microseconds, and a
//   client spinning on refusals would flood the history without testing anything.
import { SeededRandom } from '../../../src/raft/prng.js';
import type { OpKind } from '../check/history.js';
import { sleep, type RunClock } from './clock.js';
import type { KvClient } from './kv-client.js';
import type { HistoryRecorder } from './recorder.js';

export interface WorkloadOptions {
  readonly seed: number;
  readonly clients: number;
  readonly keys: readonly string[];
  readonly nodeIds: readonly string[];
  /** Probabilities of get and put; the rest are deletes. */
  readonly mix?: { readonly get: number; readonly put: number };
  /** Back-off after a refused or unknown operation, ms (uniform in [min, max]). */
  readonly backoffMs?: { readonly min: number; readonly max: number };
}

export const DEFAULT_MIX = { get: 0.5, put: 0.4 } as const;
const DEFAULT_BACKOFF = { min: 10, max: 50 } as const;

export class Workload {
  private readonly stopController = new AbortController();
  private workers: Promise<void>[] = [];
  private nextClient: number;

  constructor(
    private readonly options: WorkloadOptions,
    /** A client per worker: its connections carry one request at a time (see kv-client.ts). */
    private readonly clientFor: (worker: number) => KvClient,
    private readonly recorder: HistoryRecorder,
    private readonly clock: RunClock,
  ) {
    this.nextClient = options.clients;
  }

  start(): void {
    this.workers = Array.from({ length: this.options.clients }, (_, worker) => this.runWorker(worker));
  }

  /** Stops starting operations and waits for those in flight (each is bounded by its timeout). */
  async stop(): Promise<void> {
    this.stopController.abort();
    await Promise.all(this.workers);
  }

  /** Resolves when every worker finished (stopped, or the history cap was reached). */
  get done(): Promise<void> {
    return Promise.all(this.workers).then(() => undefined);
  }

  private async runWorker(worker: number): Promise<void> {
    const random = new SeededRandom((this.options.seed * 7919 + worker * 104_729 + 1) >>> 0);
    const mix = this.options.mix ?? DEFAULT_MIX;
    const backoff = this.options.backoffMs ?? DEFAULT_BACKOFF;
    const signal = this.stopController.signal;
    const kv = this.clientFor(worker);
    try {
      await this.loop(worker, kv, random, mix, backoff, signal);
    } finally {
      await kv.close();
    }
  }

  private async loop(
    worker: number,
    kv: KvClient,
    random: SeededRandom,
    mix: { readonly get: number; readonly put: number },
    backoff: { readonly min: number; readonly max: number },
    signal: AbortSignal,
  ): Promise<void> {
    let client = worker;
    for (let seq = 0; !signal.aborted; seq++) {
      const id = this.recorder.begin();
      if (id === null) return;
      const roll = random.float();
      const kind: OpKind = roll < mix.get ? 'get' : roll < mix.get + mix.put ? 'put' : 'delete';
      const key = random.pick(this.options.keys);
      const node = random.pick(this.options.nodeIds);
      const value = kind === 'put' ? `w${worker}.${seq}` : null;
      const invoke = this.clock.now();
      const outcome = await kv.perform(node, kind, key, value);
      const end = this.clock.now();
      this.recorder.record({ id, client, node, kind, key, value, invoke }, outcome, end);
      if (outcome.status === 'unknown') client = this.nextClient++;
      if (outcome.status !== 'ok') await sleep(backoff.min + random.int(backoff.max - backoff.min + 1), signal);
    }
  }
}
