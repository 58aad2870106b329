// A read-pool worker: its own handle on the node's LevelDB (same resolved location,
// `multithreading: true`), so heavy reads run on another core and never delay the Raft loop.
// No top-level await: under tsx the worker is loaded as CommonJS (see read-pool.ts).
// piscina's workerData is ours; node:worker_threads' is piscina's own bookkeeping.
import { move, workerData } from 'piscina';
import { openDatabase, openKv, type ByteSublevel, type Database } from '../storage/database.js';
import { getManyQuery, scanQuery, type QueryOutcome, type ScanQuery, type WorkerTask } from './queries.js';

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
  const buffer =
    bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes.buffer : bytes.slice().buffer;
  return move(buffer as ArrayBuffer) as ArrayBuffer;
}

/** The state machine's sublevel of each generation read so far (a snapshot install moves to a new one). */
const generations = new Map<number, Promise<ByteSublevel>>();

async function kvOf(generation: number): Promise<ByteSublevel> {
  let kv = generations.get(generation);
  if (kv === undefined) {
    kv = ready.then((db: Database) => openKv(db.db, generation));
    generations.set(generation, kv);
    // Only the newest few are ever read again.
    for (const old of generations.keys()) if (old < generation - 2) generations.delete(old);
  }
  return kv;
}

export async function scan(task: WorkerTask<ScanQuery>): Promise<WorkerAnswer> {
  return transfer(await scanQuery(await kvOf(task.generation), task.query, bounds));
}

export async function getMany(task: WorkerTask<Uint8Array[]>): Promise<WorkerAnswer> {
  return transfer(getManyQuery(await kvOf(task.generation), task.query, bounds));
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
