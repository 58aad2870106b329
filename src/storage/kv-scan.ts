// Paged range reads of the key-value state machine. Pure functions of a `kv` sublevel handle, so the
// read pool's workers, which hold their own handle on the same database, page exactly as NodeStorage.
// Only user keys are read: the state machine's own records (kv-view.ts INTERNAL_PREFIX) sort before
// every user key, and every range starts after them.

import { plainBytes } from './codec.js';
import type { ByteSublevel } from './database.js';
import { decodeStored, type KeyMeta } from './key-meta.js';
import { FIRST_USER_KEY } from './kv-view.js';

/** A key, its value and its metadata. */
export type KvItem = [key: Uint8Array, value: Uint8Array, meta: KeyMeta];

export interface ScanOptions {
  /** Only keys starting with these bytes (none or empty: every key). */
  readonly prefix?: Uint8Array;
  /** Inclusive cursor: the first key to return, typically a previous page's `nextStart`. */
  readonly start?: Uint8Array;
  /** Most entries in the page; at least 1. */
  readonly limit: number;
}

export interface ScanPage {
  readonly entries: KvItem[];
  /** The key the next page starts at, or null when this page reached the end of the range. */
  readonly nextStart: Uint8Array | null;
}

/**
 * Entries fetched per iterator step, at most: each step runs on LevelDB's thread and yields to the
 * event loop. A step also stops once its entries pass the iterator's `highWaterMarkBytes` (16 KiB
 * by default), so a step over big values brings one of them, never hundreds of megabytes.
 */
const SCAN_CHUNK = 256;

/**
 * The key range [gte, lt) of a scan, or null when it is empty. `lt` undefined means "to the end".
 * It never starts before FIRST_USER_KEY.
 */
export function scanBounds(
  prefix: Uint8Array | undefined,
  start: Uint8Array | undefined,
): { gte: Uint8Array; lt: Uint8Array | undefined } | null {
  const from = prefix ?? new Uint8Array(0);
  let gte = start !== undefined && compareBytes(start, from) > 0 ? start : from;
  if (compareBytes(gte, FIRST_USER_KEY) < 0) gte = FIRST_USER_KEY;
  const lt = from.length > 0 ? prefixEnd(from) : undefined;
  if (lt !== undefined && compareBytes(gte, lt) >= 0) return null;
  return { gte, lt };
}

/** Entries of a scan one at a time, in key order; `close` must be called (in a finally). */
export interface KvScanReader {
  /** The next entry, or undefined at the end of the range or after `max` entries. */
  next(): Promise<KvItem | undefined>;
  close(): Promise<void>;
}

/**
 * Reads the range of `prefix`/`start` lazily, at most `max` entries: the reader holds at most one
 * iterator step of entries (a caller may keep more: the read pool's inline attempt keeps what its
 * budget allows).
 */
export function openKvScan(
  kv: ByteSublevel,
  options: {
    prefix?: Uint8Array;
    start?: Uint8Array;
    max: number;
    /**
     * Entries an iterator step brings at most (default and cap SCAN_CHUNK). A caller that may give
     * up after a few entries (the read pool's inline attempt) asks for no more than it can use:
     * every entry a step brings costs the main thread a key and a value buffer, used or not.
     */
    maxStep?: number;
  },
): KvScanReader {
  const bounds = scanBounds(options.prefix, options.start);
  if (bounds === null) return { next: async () => undefined, close: async () => {} };
  const range = bounds.lt === undefined ? { gte: bounds.gte } : { gte: bounds.gte, lt: bounds.lt };
  const iterator = kv.iterator({ ...range, limit: options.max });
  let chunk: [Uint8Array, Uint8Array][] = [];
  let at = 0;
  let read = 0;
  let ended = false;
  const step = Math.max(1, Math.min(SCAN_CHUNK, options.maxStep ?? SCAN_CHUNK));
  return {
    async next() {
      if (at === chunk.length) {
        if (ended || read >= options.max) return undefined;
        chunk = await iterator.nextv(Math.min(step, options.max - read));
        at = 0;
        read += chunk.length;
        if (chunk.length === 0) {
          ended = true;
          return undefined;
        }
      }
      const [key, stored] = chunk[at++]!;
      const { meta, value } = decodeStored(plainBytes(stored));
      return [plainBytes(key), value, meta];
    },
    close: () => iterator.close(),
  };
}

export async function scanKv(kv: ByteSublevel, options: ScanOptions): Promise<ScanPage> {
  const { limit } = options;
  if (!Number.isSafeInteger(limit) || limit < 1)
    throw new RangeError(`scan limit must be a positive integer, not ${limit}`);
  // One entry beyond the page tells whether there is a next page, and is its cursor.
  const reader = openKvScan(kv, { ...options, max: limit + 1 });
  const entries: KvItem[] = [];
  try {
    for (let entry = await reader.next(); entry !== undefined; entry = await reader.next()) entries.push(entry);
  } finally {
    await reader.close();
  }
  const next = entries.length > limit ? entries[limit] : undefined;
  if (next !== undefined) entries.length = limit;
  return { entries, nextStart: next === undefined ? null : next[0] };
}

/** The smallest key greater than every key with `prefix`, or undefined when there is none (all 0xff). */
export function prefixEnd(prefix: Uint8Array): Uint8Array | undefined {
  for (let i = prefix.length - 1; i >= 0; i--) {
    const byte = prefix[i] ?? 0xff;
    if (byte < 0xff) {
      // A copy, never a view: on a Buffer `slice` is a view, and the increment below would change
      // the caller's prefix (the range's start then equalled its end: an empty scan).
      const end = Uint8Array.from(prefix.subarray(0, i + 1));
      end[i] = byte + 1;
      return end;
    }
  }
  return undefined;
}

export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}
