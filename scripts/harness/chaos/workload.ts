// The clients of a chaos run: `clients` concurrent loops, each doing one operation at a time on a
// small keyspace, against a random node (one that answers, when the run shares an
// UnresponsiveNodes), until stopped. Two workloads:
//  - versioned (the default): gets, puts and deletes, and conditional writes and one-key
//    transactions on what the worker saw last (versioned-ops.ts); every write carries an
//    Idempotency-Key and is retried as is while its outcome is unknown (retries.ts), and all its
//    attempts are one operation of the history;
//  - plain: get / put / delete in the proportions of `mix`, with no header beyond the content type
//    (the workload of before conditional writes; its runs replay as they did).
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
import type { KvClient, KvRequest } from './kv-client.js';
import type { Outcome } from './outcome.js';
import type { HistoryRecorder } from './recorder.js';
import { performWithRetries } from './retries.js';
import { chooseNode, type UnresponsiveNodes } from './unresponsive-nodes.js';
import { drawVersionedOp, seenAfter, type LastSeen, type PlannedOp } from './versioned-ops.js';

/** versioned: conditional writes, transactions, idempotency keys and retries; plain: get/put/delete only. */
export type WorkloadKind = 'versioned' | 'plain';

export interface WorkloadOptions {
  readonly seed: number;
  readonly clients: number;
  readonly keys: readonly string[];
  readonly nodeIds: readonly string[];
  /** What the workers do (default versioned). */
  readonly workload?: WorkloadKind;
  /** The plain workload's probabilities of get and put; the rest are deletes. */
  readonly mix?: { readonly get: number; readonly put: number };
  /** Back-off after a refused or unknown operation, ms (uniform in [min, max]). */
  readonly backoffMs?: { readonly min: number; readonly max: number };
  /**
   * The nodes that did not answer, shared by the workers: they choose around them
   * (unresponsive-nodes.ts). Without it every node is equally likely, answering or not.
   */
  readonly unresponsive?: UnresponsiveNodes;
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
    const versioned = (this.options.workload ?? 'versioned') === 'versioned';
    let client = worker;
    let lastSeen: LastSeen | null = null;
    for (let seq = 0; !signal.aborted; seq++) {
      const id = this.recorder.begin();
      if (id === null) return;
      const value = `w${worker}.${seq}`;
      const op: PlannedOp = versioned
        ? drawVersionedOp({
            random,
            keys: this.options.keys,
            value,
            idempotencyKey: `r${this.options.seed}.w${worker}.${seq}`,
            lastSeen,
          })
        : plainOp(random, mix, this.options.keys, value);
      const unresponsive = this.options.unresponsive;
      const randomInt = (n: number): number => random.int(n);
      const node = chooseNode(this.options.nodeIds, randomInt, unresponsive);
      const invoke = this.clock.now();
      const performed = await performWithRetries(kv, node, op.request, {
        nodeIds: this.options.nodeIds,
        randomInt,
        now: () => this.clock.now(),
        signal,
        ...(unresponsive === undefined ? {} : { unresponsive }),
      });
      const end = this.clock.now();
      const outcome = performed.outcome;
      this.recorder.record(
        {
          id,
          client,
          node: performed.node,
          kind: op.kind,
          key: op.key,
          value: op.value,
          invoke,
          ...(op.kind === 'cas' ? { expected: op.expected ?? null, viaTxn: op.viaTxn === true } : {}),
          attempts: performed.attempts,
        },
        outcome,
        end,
        false,
        performed.unexpected,
      );
      // What the worker's next cas expects: what this operation saw or left, else what it knew
      // before (unless this operation made that doubtful: it wrote the key and its outcome is unsure).
      if (versioned) lastSeen = nextSeen(lastSeen, op, outcome);
      if (outcome.status === 'unknown') client = this.nextClient++;
      if (outcome.status !== 'ok') await sleep(backoff.min + random.int(backoff.max - backoff.min + 1), signal);
    }
  }
}

/** An operation of the plain workload, drawn as the runner drew them before conditional writes. */
function plainOp(
  random: SeededRandom,
  mix: { readonly get: number; readonly put: number },
  keys: readonly string[],
  written: string,
): PlannedOp {
  const roll = random.float();
  const kind: OpKind = roll < mix.get ? 'get' : roll < mix.get + mix.put ? 'put' : 'delete';
  const key = random.pick(keys);
  const value = kind === 'put' ? written : null;
  const request: KvRequest =
    kind === 'get' ? { kind, key } : kind === 'put' ? { kind, key, value: written } : { kind: 'delete', key };
  return { kind, key, value, request };
}

function nextSeen(before: LastSeen | null, op: PlannedOp, outcome: Outcome): LastSeen | null {
  const seen = seenAfter(op, outcome);
  if (seen !== null) return seen;
  return before !== null && before.key === op.key && op.kind !== 'get' ? null : before;
}
