// Read queries that can run on the main thread or in a pool worker: the same code either way.
import type { ByteSublevel } from '../storage/database.js';
import { scanKv } from '../storage/kv-scan.js';
import { formatPage, formatValues } from './format.js';

export interface ScanQuery {
  readonly prefix?: Uint8Array;
  readonly start?: Uint8Array;
  readonly limit: number;
}

export async function scanToJson(kv: ByteSublevel, query: ScanQuery): Promise<Uint8Array> {
  const page = await scanKv(kv, query);
  return formatPage(page.entries, page.nextStart);
}

export async function getManyToJson(kv: ByteSublevel, keys: readonly Uint8Array[]): Promise<Uint8Array> {
  // One call into LevelDB for all keys, on its own thread.
  const values = await kv.getMany(keys.slice());
  return formatValues(keys, values);
}
