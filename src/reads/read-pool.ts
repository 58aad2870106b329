// Where read queries run. Point reads are not here: an inline `getSync` takes ~3-5 µs, a pool round
// trip ~50 µs (measured, see ARCHITECTURE.md), so the API serves them on the main thread. Scans and
// multi-key reads above a small size go to a pool of worker threads, each with its own handle on
// the node's database; they build the JSON answer there and hand back one transferred buffer, so
// neither LevelDB iteration nor formatting thousands of items ever blocks the Raft loop.
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import type { Logger } from 'pino';
import type { ByteSublevel } from '../storage/database.js';
import { getManyToJson, scanToJson, type ScanQuery } from './queries.js';

/** Below these sizes a query runs inline: the pool's round trip would cost more than the work. */
export const INLINE_SCAN_MAX = 100;
export const INLINE_GET_MANY_MAX = 16;

export interface ReadQueries {
  scanJson(query: ScanQuery): Promise<Uint8Array>;
  getManyJson(keys: readonly Uint8Array[]): Promise<Uint8Array>;
  close(): Promise<void>;
  /** Worker threads serving queries (0: everything runs inline). */
  readonly threads: number;
}

/** The default pool size: every core but the one the Raft loop runs on, and at least one. */
export function defaultPoolSize(): number {
  return Math.max(1, availableParallelism() - 1);
}

export interface ReadPoolOptions {
  /** The node database's resolved location: workers must open exactly this string. */
  readonly location: string;
  /** The main thread's handle, for queries small enough to run inline. */
  readonly kv: ByteSublevel;
  /** 0 runs every query inline (for comparison; not recommended). */
  readonly threads: number;
  readonly logger: Logger;
  /** Queries queued beyond the busy workers, at most (beyond: the caller gets an error). */
  readonly maxQueue?: number;
}

export async function createReadQueries(options: ReadPoolOptions): Promise<ReadQueries> {
  if (options.threads === 0) return new InlineQueries(options.kv);
  const pool = new ReadPool(options);
  await pool.warmUp();
  return pool;
}

class InlineQueries implements ReadQueries {
  readonly threads = 0;
  constructor(private readonly kv: ByteSublevel) {}
  scanJson(query: ScanQuery): Promise<Uint8Array> {
    return scanToJson(this.kv, query);
  }
  getManyJson(keys: readonly Uint8Array[]): Promise<Uint8Array> {
    return getManyToJson(this.kv, keys);
  }
  async close(): Promise<void> {}
}

class ReadPool implements ReadQueries {
  readonly threads: number;
  private readonly pool: Piscina;
  private readonly kv: ByteSublevel;

  constructor(options: ReadPoolOptions) {
    this.threads = options.threads;
    this.kv = options.kv;
    // Compiled JS in production; under tsx or vitest the TypeScript worker is loaded through tsx's
    // CommonJS hook (its ESM hooks do not reach worker threads on Node 20).
    const isTs = import.meta.url.endsWith('.ts');
    const filename = new URL(isTs ? './worker.ts' : './worker.js', import.meta.url).href;
    this.pool = new Piscina({
      filename,
      ...(isTs ? { execArgv: ['--require', fileURLToPath(import.meta.resolve('tsx/cjs'))] } : {}),
      minThreads: options.threads,
      maxThreads: options.threads,
      // Workers hold database handles: keep them, or every burst after a pause pays a reopen.
      idleTimeout: Infinity,
      maxQueue: options.maxQueue ?? 4096,
      workerData: { location: options.location },
    });
    this.pool.on('error', (error: Error) => options.logger.error({ err: error }, 'read pool worker error'));
  }

  async warmUp(): Promise<void> {
    await Promise.all(Array.from({ length: this.threads }, () => this.pool.run(null, { name: 'ping' })));
  }

  async scanJson(query: ScanQuery): Promise<Uint8Array> {
    if (query.limit <= INLINE_SCAN_MAX) return scanToJson(this.kv, query);
    return new Uint8Array((await this.pool.run(query, { name: 'scan' })) as ArrayBuffer);
  }

  async getManyJson(keys: readonly Uint8Array[]): Promise<Uint8Array> {
    if (keys.length <= INLINE_GET_MANY_MAX) return getManyToJson(this.kv, keys);
    return new Uint8Array((await this.pool.run(keys, { name: 'getMany' })) as ArrayBuffer);
  }

  async close(): Promise<void> {
    // Workers close their handles as their threads end; the node closes its own afterwards.
    await this.pool.destroy();
  }
}
