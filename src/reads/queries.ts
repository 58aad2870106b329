// Read queries that can run on the main thread or in a pool worker: the same code either way.
//
// Two bounds, both in bytes:
// - `maxResponseBytes` caps the JSON answer (limits.maxResponseBytes). A scan page stops before the
//   item that would pass it, with that item's key as `next`; a multi-key read that would pass it is
//   refused (`tooLarge`). Neither ever refuses its first item: a scan over one big value still makes
//   progress, and a value that was accepted can always be read on its own.
// - `inlineBudget` bounds the work a query may do on the main thread: the bytes it reads, plus a
//   charge per item for the per-item cost. The query reads what it needs within it before it
//   formats anything; past it the query gives up (`overBudget`) having formatted nothing, and the
//   caller runs it again in the pool. In a worker it is Infinity.
import { plainBytes } from '../storage/codec.js';
import type { ByteSublevel } from '../storage/database.js';
import { decodeStored } from '../storage/key-meta.js';
import { openKvScan, type KvItem, type KvScanReader } from '../storage/kv-scan.js';
import { AnswerBuilder, cursorJson, itemJson } from './format.js';

export interface ScanQuery {
  readonly prefix?: Uint8Array;
  readonly start?: Uint8Array;
  readonly limit: number;
}

/** A query for a pool worker, with the state-machine generation it must read. */
export interface WorkerTask<Q> {
  readonly generation: number;
  readonly query: Q;
}

export interface QueryBounds {
  /** The most bytes of JSON in one answer (a scan page's first item may pass it alone). */
  readonly maxResponseBytes: number;
  /** Bytes read (plus `INLINE_ITEM_CHARGE` per item) before giving up; Infinity: no budget. */
  readonly inlineBudget: number;
}

/**
 * What an item costs the main thread beyond its bytes (a lookup or an iterator step, the UTF-8
 * check, an object and a JSON.stringify call), in bytes of formatting that take as long: an item
 * costs ~5.5 µs, formatting ~4-7 ns a byte (measured on the 2-core dev machine under load).
 */
export const INLINE_ITEM_CHARGE = 1024;

/** An answer, or why there is none: the query is over its inline budget, or its answer is over the cap. */
export type QueryOutcome =
  | { readonly json: Uint8Array }
  | { readonly overBudget: true }
  | { readonly tooLarge: { readonly keys: number; readonly fit: number } };

const OVER_BUDGET = { overBudget: true } as const;

/** Entries a query under `budget` can read before it gives up, the one that passes it included. */
function entriesWithin(budget: number): number {
  return Math.floor(budget / INLINE_ITEM_CHARGE) + 1;
}

export async function scanQuery(kv: ByteSublevel, query: ScanQuery, bounds: QueryBounds): Promise<QueryOutcome> {
  const { limit } = query;
  if (!Number.isSafeInteger(limit) || limit < 1)
    throw new RangeError(`scan limit must be a positive integer, not ${limit}`);
  // One entry beyond the page tells whether there is a next page, and is its cursor. Under a
  // budget, the entry that passes it is the last one read: each costs at least INLINE_ITEM_CHARGE.
  const reader = openKvScan(kv, { ...query, max: limit + 1, maxStep: entriesWithin(bounds.inlineBudget) });
  try {
    const read = await readWithin(reader, limit, bounds);
    if ('overBudget' in read) return read;
    let at = 0;
    const next = async (): Promise<KvItem | undefined> => (at < read.length ? read[at++] : reader.next());
    const page = new AnswerBuilder();
    let entry = await next();
    while (entry !== undefined && page.count < limit) {
      const [key, value, meta] = entry;
      // Adding this item means the page may end right after it, with the following key as `next`:
      // the answer must fit with that cursor. The first item is added whatever its size.
      const following = await next();
      const item = itemJson(key, value, meta);
      if (page.count > 0 && page.sizeWith(item, cursorJson(following?.[0] ?? null)) > bounds.maxResponseBytes) break;
      page.add(item);
      entry = following;
    }
    return { json: page.finish(cursorJson(entry?.[0] ?? null)) };
  } finally {
    await reader.close();
  }
}

/**
 * Under a finite budget, the page's entries (and its cursor entry), read before any is formatted:
 * a query that passes the budget then costs the main thread its reads only, not formatting that the
 * pool does again. Entries are charged their bytes plus INLINE_ITEM_CHARGE, the cursor nothing.
 * Reading stops early, uncharged further, once the entries' raw bytes pass the answer cap: an item's
 * JSON is never shorter than its key and value, so the page ends by the cap at or before that entry
 * (the formatting reads at most one more, its cursor). Without a budget nothing is read ahead (the
 * caller streams from `reader`).
 */
async function readWithin(
  reader: KvScanReader,
  limit: number,
  bounds: QueryBounds,
): Promise<readonly KvItem[] | typeof OVER_BUDGET> {
  const read: KvItem[] = [];
  if (!Number.isFinite(bounds.inlineBudget)) return read;
  const account = readAheadAccount(bounds);
  for (let entry = await reader.next(); entry !== undefined; entry = await reader.next()) {
    read.push(entry);
    if (read.length > limit) break;
    const charged = account(entry[0].byteLength + entry[1].byteLength);
    if (charged === 'over') return OVER_BUDGET;
    if (charged === 'capped') break;
  }
  return read;
}

/**
 * The inline read-ahead's account (readWithin, readMany): charges each item its raw bytes plus
 * INLINE_ITEM_CHARGE and says whether the query is now over its budget (hand it to the pool),
 * capped (its raw bytes passed the answer cap, which decides the answer by then: read no further)
 * or may read on.
 */
function readAheadAccount(bounds: QueryBounds): (itemBytes: number) => 'over' | 'capped' | 'more' {
  let raw = 0;
  let items = 0;
  return (itemBytes) => {
    raw += itemBytes;
    items++;
    if (raw + items * INLINE_ITEM_CHARGE > bounds.inlineBudget) return 'over';
    return raw > bounds.maxResponseBytes ? 'capped' : 'more';
  };
}

/**
 * Values of `keys`, in the order asked (null for an absent key). Reads one key at a time, so a
 * hand-off comes after reading at most one value past the budget, and (in the pool, where there is
 * no budget) a refusal at most one value past the cap; inline, a refusal comes once the values
 * within the budget are read (readMany). Every key
 * is read from one LevelDB snapshot: a Ready's batch lands on another thread, and between two keys'
 * reads it would show half of its writes (half of a transaction; test/reads/get-many-atomic.test.ts).
 */
export function getManyQuery(kv: ByteSublevel, keys: readonly Uint8Array[], bounds: QueryBounds): QueryOutcome {
  // One key needs none (a snapshot and its release cost ~5-10 us here).
  if (keys.length <= 1) return readMany(kv, keys, bounds, undefined);
  const snapshot = kv.snapshot();
  try {
    // The encodings spelled out as the sublevel's own: abstract-level otherwise copies the options
    // on every getSync (measured: 6 us a key against 2).
    return readMany(kv, keys, bounds, { snapshot, keyEncoding: 'view', valueEncoding: 'view' });
  } finally {
    // Closing only releases it; nothing waits for that.
    snapshot.close().catch(() => undefined);
  }
}

/** getSync's options for a read from `snapshot`. */
interface SnapshotRead {
  readonly snapshot: ReturnType<ByteSublevel['snapshot']>;
  readonly keyEncoding: 'view';
  readonly valueEncoding: 'view';
}

function readMany(
  kv: ByteSublevel,
  keys: readonly Uint8Array[],
  bounds: QueryBounds,
  options: SnapshotRead | undefined,
): QueryOutcome {
  const read = (key: Uint8Array): Uint8Array | undefined =>
    options === undefined ? kv.getSync(key) : kv.getSync(key, options);
  // Under a budget, every value is read (at most the budget's worth) before any is formatted, as a
  // scan's page is: a read that passes the budget costs the main thread no formatting. As there,
  // reading ahead stops once the raw bytes pass the answer cap (the answer is refused by then).
  const ahead: (Uint8Array | undefined)[] = [];
  if (Number.isFinite(bounds.inlineBudget)) {
    const account = readAheadAccount(bounds);
    for (const key of keys) {
      const stored = read(key);
      const charged = account(key.byteLength + (stored?.byteLength ?? 0));
      if (charged === 'over') return OVER_BUDGET;
      ahead.push(stored);
      if (charged === 'capped') break;
    }
  }
  const answer = new AnswerBuilder();
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    const stored = i < ahead.length ? ahead[i] : read(key);
    const found = stored === undefined ? undefined : decodeStored(plainBytes(stored));
    const item = itemJson(key, found?.value, found?.meta);
    if (keys.length > 1 && answer.sizeWith(item, null) > bounds.maxResponseBytes) {
      return { tooLarge: { keys: keys.length, fit: answer.count } };
    }
    answer.add(item);
  }
  return { json: answer.finish(null) };
}
