// Where read queries run. Point reads are not here: an inline `getSync` takes ~3-5 µs, a pool round
// trip ~50 µs (measured, see ARCHITECTURE.md), so the API serves them on the main thread. Scans and
// multi-key reads start on the main thread with a small budget of bytes (`INLINE_BUDGET_BYTES`); a
// query that passes it is handed to a pool of worker threads, each with its own handle on the
// node's database, which build the JSON answer there and hand back one transferred buffer. The
// decision is by bytes because bytes are what cost: 100 keys of 1 MiB took 2-3 s of the main
// thread to format and cost elections, 100 keys of 10 bytes take tens of microseconds.
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import type { Logger } from 'pino';
import type { ByteSublevel } from '../storage/database.js';
import type { StateRead } from '../storage/state-machine.js';
import { getManyQuery, scanQuery, type QueryBounds, type ScanQuery, type WorkerTask } from './queries.js';
import type { WorkerAnswer } from './worker.js';

/**
 * Bytes a query may read on the main thread (each item also charged `INLINE_ITEM_CHARGE`) before it
 * is handed to the pool. Measured on the 2-core dev machine under load: formatting costs the main
 * thread ~4-7 ns a byte and ~5.5 µs an item, a pool round trip ~120 µs of it (~360 µs of latency).
 * So 32 KiB (or 32 small items) costs the loop at most ~0.2-0.3 ms, about twice the pool's own cost
 * on it, and saves the round trip; anything bigger is cheaper off the loop. The query that passes
 * the budget has read at most one value more (at most `maxValueBytes`: no more than a point read of
 * it costs) and formatted nothing: queries.ts reads within the budget before it formats; the pool
 * then runs it from the start.
 */
export const INLINE_BUDGET_BYTES = 32 * 1024;

/** A multi-key read's answer, or its refusal: the answer would exceed the cap. */
export type ManyAnswer =
  { readonly json: Uint8Array } | { readonly tooLarge: { readonly keys: number; readonly fit: number } };

export interface ReadQueries {
  /** A scan page as the JSON answer's bytes (at most `maxResponseBytes`, but always one item). */
  scanJson(query: ScanQuery): Promise<Uint8Array>;
  getManyJson(keys: readonly Uint8Array[]): Promise<ManyAnswer>;
  close(): Promise<void>;
  /** Worker threads serving queries (0: everything runs inline). */
  readonly threads: number;
  /** Queries the pool answered so far (the rest ran on the main thread). */
  readonly pooled: number;
}

/** How long a pool's workers may take to start before the node gives up on them: generous, as
 * several nodes starting at once on two cores took 0.75 s. */
export const WORKER_START_TIMEOUT_MS = 60_000;

/** The default pool size: every core but the one the Raft loop runs on, and at least one. */
export function defaultPoolSize(): number {
  return Math.max(1, availableParallelism() - 1);
}

export interface ReadPoolOptions {
  /** The node database's resolved location: workers must open exactly this string. */
  readonly location: string;
  /**
   * Reads of the applied state: the main thread's handle for queries small enough to run inline, and
   * the generation a worker must read (a snapshot install moves the state to a new one; the old one
   * stays until every read that began on it has ended).
   */
  readonly state: { beginRead(): Promise<StateRead> };
  /** 0 runs every query inline (for comparison; not recommended). */
  readonly threads: number;
  readonly logger: Logger;
  /** Queries queued beyond the busy workers, at most (beyond: the caller gets an error). */
  readonly maxQueue?: number;
  /** The most bytes of JSON in one answer: `limits.maxResponseBytes`. */
  readonly maxResponseBytes: number;
  /** Overrides INLINE_BUDGET_BYTES (tests). */
  readonly inlineBudgetBytes?: number;
  /** How long the workers may take to start (default WORKER_START_TIMEOUT_MS). */
  readonly startTimeoutMs?: number;
  /**
   * The worker's module. By default the one beside this module; the node's entry names it, because
   * in the bundled dist/main.js (scripts/bundle.ts) this module's own URL is the bundle's.
   */
  readonly workerFile?: URL;
}

/**
 * The module at `path` (no extension) relative to the module at `base`: its .ts when `base` is
 * TypeScript (under tsx or vitest), else its compiled .js.
 */
export function moduleBeside(path: string, base: string): URL {
  return new URL(`${path}${base.endsWith('.ts') ? '.ts' : '.js'}`, base);
}

/** The queries, ready: every worker has started and opened its database handle. */
export async function createReadQueries(options: ReadPoolOptions): Promise<ReadQueries> {
  const { queries, ready } = startReadQueries(options);
  await ready;
  return queries;
}

/**
 * The queries at once, and a promise that settles when every worker has started (rejects if one
 * cannot). A node does not wait for it: a query that needs a worker before then waits in the pool's
 * queue, and the node takes part in Raft and serves everything else meanwhile (a worker's start,
 * 0.14 s alone here and several times that when several nodes start at once, no longer delays an
 * election after a restart).
 */
export function startReadQueries(options: ReadPoolOptions): { queries: ReadQueries; ready: Promise<void> } {
  if (options.threads === 0)
    return { queries: new InlineQueries(options.state, options.maxResponseBytes), ready: Promise.resolve() };
  const pool = new ReadPool(options);
  // Bounded: a worker that never became ready would leave pooled queries queued for ever behind a
  // node that looks up.
  const limitMs = options.startTimeoutMs ?? WORKER_START_TIMEOUT_MS;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the read pool's workers did not start within ${limitMs} ms`)), limitMs);
    timer.unref();
  });
  const ready = Promise.race([pool.warmUp(), deadline]).finally(() => clearTimeout(timer));
  return { queries: pool, ready };
}

/** Everything on the main thread, whatever its size: for comparison only (reads.poolThreads = 0). */
class InlineQueries implements ReadQueries {
  readonly threads = 0;
  readonly pooled = 0;
  private readonly bounds: QueryBounds;
  constructor(
    private readonly state: { beginRead(): Promise<StateRead> },
    maxResponseBytes: number,
  ) {
    this.bounds = { maxResponseBytes, inlineBudget: Infinity };
  }
  async scanJson(query: ScanQuery): Promise<Uint8Array> {
    const outcome = await withRead(this.state, (kv) => scanQuery(kv, query, this.bounds));
    if (!('json' in outcome)) throw new Error('a scan is never refused');
    return outcome.json;
  }
  async getManyJson(keys: readonly Uint8Array[]): Promise<ManyAnswer> {
    const outcome = await withRead(this.state, async (kv) => getManyQuery(kv, keys, this.bounds));
    if ('overBudget' in outcome) throw new Error('a query without an inline budget exceeded it');
    return outcome;
  }
  async close(): Promise<void> {}
}

class ReadPool implements ReadQueries {
  readonly threads: number;
  pooled = 0;
  private readonly pool: Piscina;
  private readonly state: { beginRead(): Promise<StateRead> };
  private readonly inline: QueryBounds;

  constructor(options: ReadPoolOptions) {
    this.threads = options.threads;
    this.state = options.state;
    this.inline = {
      maxResponseBytes: options.maxResponseBytes,
      inlineBudget: options.inlineBudgetBytes ?? INLINE_BUDGET_BYTES,
    };
    // Compiled JS in production; under tsx or vitest the TypeScript worker is loaded through tsx's
    // CommonJS hook (its ESM hooks do not reach worker threads on Node 20).
    const filename = (options.workerFile ?? moduleBeside('./worker', import.meta.url)).href;
    const isTs = filename.endsWith('.ts');
    this.pool = new Piscina({
      filename,
      ...(isTs ? { execArgv: ['--require', fileURLToPath(import.meta.resolve('tsx/cjs'))] } : {}),
      minThreads: options.threads,
      maxThreads: options.threads,
      // Workers hold database handles: keep them, or every burst after a pause pays a reopen.
      idleTimeout: Infinity,
      maxQueue: options.maxQueue ?? 4096,
      workerData: { location: options.location, maxResponseBytes: options.maxResponseBytes },
    });
    this.pool.on('error', (error: Error) => options.logger.error({ err: error }, 'read pool worker error'));
  }

  async warmUp(): Promise<void> {
    await Promise.all(Array.from({ length: this.threads }, () => this.pool.run(null, { name: 'ping' })));
  }

  async scanJson(query: ScanQuery): Promise<Uint8Array> {
    const read = await this.state.beginRead();
    try {
      const outcome = await scanQuery(read.kv, query, this.inline);
      if ('json' in outcome) return outcome.json;
      this.pooled++;
      const task: WorkerTask<ScanQuery> = { generation: read.generation, query };
      const answer = fromWorker((await this.pool.run(task, { name: 'scan' })) as WorkerAnswer);
      if (!(answer instanceof Uint8Array)) throw new Error('a scan is never refused');
      return answer;
    } finally {
      read.end();
    }
  }

  async getManyJson(keys: readonly Uint8Array[]): Promise<ManyAnswer> {
    const read = await this.state.beginRead();
    try {
      const outcome = getManyQuery(read.kv, keys, this.inline);
      if (!('overBudget' in outcome)) return outcome;
      this.pooled++;
      const task: WorkerTask<readonly Uint8Array[]> = { generation: read.generation, query: keys };
      const answer = fromWorker((await this.pool.run(task, { name: 'getMany' })) as WorkerAnswer);
      return answer instanceof Uint8Array ? { json: answer } : answer;
    } finally {
      read.end();
    }
  }

  async close(): Promise<void> {
    // Workers close their handles as their threads end; the node closes its own afterwards.
    await this.pool.destroy();
  }
}

async function withRead<T>(
  state: { beginRead(): Promise<StateRead> },
  run: (kv: ByteSublevel) => Promise<T>,
): Promise<T> {
  const read = await state.beginRead();
  try {
    return await run(read.kv);
  } finally {
    read.end();
  }
}

function fromWorker(answer: WorkerAnswer): Uint8Array | { tooLarge: { keys: number; fit: number } } {
  return answer instanceof ArrayBuffer ? new Uint8Array(answer) : { tooLarge: { keys: answer.keys, fit: answer.fit } };
}
