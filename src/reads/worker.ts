// A read-pool worker: its own handle on the node's LevelDB (same resolved location,
// `multithreading: true`), so heavy reads run on another core and never delay the Raft loop.
// No top-level await: under tsx the worker is loaded as CommonJS (see read-pool.ts).
// piscina's workerData is ours; node:worker_threads' is piscina's own bookkeeping.
import { move, workerData } from 'piscina';
import { openDatabase, type Database } from '../storage/database.js';
import { getManyToJson, scanToJson, type ScanQuery } from './queries.js';

const { location } = workerData as { location: string };
// The node created the database before starting the pool: never create one here.
const ready: Promise<Database> = openDatabase(location, { createIfMissing: false });
ready.catch(() => undefined); // surfaced by the first task

/** The JSON answer travels back as one transferred buffer: no per-item structured clone. */
function transfer(bytes: Uint8Array): ArrayBuffer {
  const buffer = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes.buffer : bytes.slice().buffer;
  return move(buffer as ArrayBuffer) as ArrayBuffer;
}

export async function scan(query: ScanQuery): Promise<ArrayBuffer> {
  const db = await ready;
  return transfer(await scanToJson(db.kv, query));
}

export async function getMany(keys: Uint8Array[]): Promise<ArrayBuffer> {
  const db = await ready;
  return transfer(await getManyToJson(db.kv, keys));
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
