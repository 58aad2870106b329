// A read-pool worker: its own handle on the node's LevelDB (same resolved location,
// `multithreading: true`), so heavy reads run on another core and never delay the Raft loop.
// No top-level await: under tsx the worker is loaded as CommonJS (see read-pool.ts).
// piscina's workerData is ours; node:worker_threads' is piscina's own bookkeeping.
import { move, workerData } from 'piscina';
import { openDatabase, type Database } from '../storage/database.js';
import { getManyQuery, scanQuery, type QueryOutcome, type ScanQuery } from './queries.js';

const { location, maxResponseBytes } = workerData as { location: string; maxResponseBytes: number };
// The node created the database before starting the pool: never create one here.
const ready: Promise<Database> = openDatabase(location, { createIfMissing: false });
ready.catch(() => undefined); // surfaced by the first task

/** A worker has no inline budget: it may take as long as the answer needs, up to the cap. */
const bounds = { maxResponseBytes, inlineBudget: Infinity };

/** What a task returns: the JSON answer as one transferred buffer, or how far a refused one got. */
export type WorkerAnswer = ArrayBuffer | { readonly keys: number; readonly fit: number };

/** The JSON answer travels back as one transferred buffer: no per-item structured clone. */
function transfer(outcome: QueryOutcome): WorkerAnswer {
  if ('tooLarge' in outcome) return outcome.tooLarge;
  if (!('json' in outcome)) throw new Error('a worker query has no inline budget to exceed');
  const bytes = outcome.json;
  const buffer = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes.buffer : bytes.slice().buffer;
  return move(buffer as ArrayBuffer) as ArrayBuffer;
}

export async function scan(query: ScanQuery): Promise<WorkerAnswer> {
  const db = await ready;
  return transfer(await scanQuery(db.kv, query, bounds));
}

export async function getMany(keys: Uint8Array[]): Promise<WorkerAnswer> {
  const db = await ready;
  return transfer(getManyQuery(db.kv, keys, bounds));
}

export async function ping(): Promise<string> {
  await ready;
  return 'pong';
}

/**
 * piscina resolves the default export when a worker starts; without one it falls back to import(),
 * which cannot load TypeScript under tsx's CommonJS hook. Tasks are called by name.
 */
export default ping;
