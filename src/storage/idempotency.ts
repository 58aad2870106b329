// Exactly-once retries: the state machine remembers the answer to every write that carried an
// idempotency key, so a retry (after a 504, a lost connection, a crashed client) is applied at most
// once and gets the first answer.
//
// The records are part of the replicated state: they live in the state machine's key space (under
// INTERNAL_PREFIX 'i', so snapshots, backups and restores carry them like any key), they change only
// when an entry is applied, and eviction depends only on applied entries. So every node, and every
// node restarted or restored from a snapshot, keeps exactly the same records and gives a retry the
// same answer.
//
// Eviction, oldest record first (by the index it was applied at), whenever a new record is added:
//  - records more than RECORD_TTL_MS older than the new one's `at` (the proposing leader's clock);
//  - beyond MAX_RECORDS records, or MAX_RECORD_BYTES bytes of records in all.
// A record is therefore kept at least until a day's worth of newer idempotent writes arrive, unless
// the count or size bounds push it out first. A retry whose record was evicted is applied again: a
// client must not retry with the same key after a day (README).
//
// The in-memory index (apply order, sizes) mirrors the records exactly: it is rebuilt from them when
// the store opens or installs a snapshot, so it never holds anything the records do not say.

import { Packr } from 'msgpackr';
import { CorruptDataError } from './errors.js';
import { INTERNAL_PREFIX, type KvView } from './kv-view.js';
import type { KeyMeta } from './key-meta.js';

export const RECORD_TTL_MS = 24 * 60 * 60 * 1000;
export const MAX_RECORDS = 100_000;
export const MAX_RECORD_BYTES = 64 * 1024 * 1024;

/** The key prefix of idempotency records: INTERNAL_PREFIX, 'i'. */
export const IDEMPOTENCY_PREFIX = new Uint8Array([INTERNAL_PREFIX, 0x69]);
/** The end (exclusive) of the records' key range. */
export const IDEMPOTENCY_END = new Uint8Array([INTERNAL_PREFIX, 0x6a]);

/** One operation's result in a transaction's answer. */
export type TxnOpResult =
  | { readonly op: 'put'; readonly key: Uint8Array; readonly modIndex: number }
  | { readonly op: 'delete'; readonly key: Uint8Array; readonly deleted: boolean }
  | { readonly op: 'get'; readonly key: Uint8Array; readonly meta: KeyMeta | null; readonly value: Uint8Array | null };

/** What applying a request did (apply-request.ts). */
export type RequestResult =
  /** The write took effect (`deleted`: whether a delete found the key). */
  | { readonly kind: 'written'; readonly deleted?: boolean }
  /** The condition did not hold: nothing changed. `current`: the key's metadata, null when absent. */
  | { readonly kind: 'failed'; readonly current: KeyMeta | null }
  | { readonly kind: 'txn'; readonly succeeded: boolean; readonly results: readonly TxnOpResult[] }
  /** The transaction's get results would pass MAX_TXN_RESULT_BYTES: nothing changed. */
  | { readonly kind: 'too_large'; readonly bytes: number };

export interface IdempotencyRecord {
  readonly fingerprint: Uint8Array;
  readonly index: number;
  readonly term: number;
  readonly at: number;
  readonly result: RequestResult;
}

const packr = new Packr({ useRecords: false, mapsAsObjects: true });
const utf8 = new TextEncoder();

export function recordKey(id: string): Uint8Array {
  const idBytes = utf8.encode(id);
  const key = new Uint8Array(IDEMPOTENCY_PREFIX.length + idBytes.length);
  key.set(IDEMPOTENCY_PREFIX);
  key.set(idBytes, IDEMPOTENCY_PREFIX.length);
  return key;
}

export function idOfRecordKey(key: Uint8Array): string {
  return Buffer.from(
    key.buffer,
    key.byteOffset + IDEMPOTENCY_PREFIX.length,
    key.length - IDEMPOTENCY_PREFIX.length,
  ).toString('utf8');
}

export function encodeRecord(record: IdempotencyRecord): Uint8Array {
  return packr.pack(record);
}

export function decodeRecord(bytes: Uint8Array, where: string): IdempotencyRecord {
  let record: unknown;
  try {
    record = packr.unpack(bytes);
  } catch (error) {
    throw new CorruptDataError(`${where}: not msgpack (${(error as Error).message})`);
  }
  const r = record as Partial<IdempotencyRecord> | null;
  if (
    r === null ||
    typeof r !== 'object' ||
    !(r.fingerprint instanceof Uint8Array) ||
    !Number.isSafeInteger(r.index) ||
    !Number.isSafeInteger(r.term) ||
    !Number.isSafeInteger(r.at) ||
    typeof r.result !== 'object' ||
    r.result === null
  ) {
    throw new CorruptDataError(`${where}: not an idempotency record`);
  }
  return r as IdempotencyRecord;
}

interface IndexEntry {
  readonly id: string;
  readonly index: number;
  readonly at: number;
  readonly bytes: number;
}

/**
 * The eviction bounds. Every node must use the same ones (eviction is part of the replicated state):
 * production uses the constants above; only tests pass smaller ones.
 */
export interface EvictionBounds {
  readonly ttlMs: number;
  readonly maxRecords: number;
  readonly maxBytes: number;
}

export const EVICTION_BOUNDS: EvictionBounds = Object.freeze({
  ttlMs: RECORD_TTL_MS,
  maxRecords: MAX_RECORDS,
  maxBytes: MAX_RECORD_BYTES,
});

/** The records in apply order, with their total size: what eviction needs, without reading them. */
export class IdempotencyIndex {
  /** Oldest first; `head` skips evicted entries without shifting the array on every eviction. */
  private order: IndexEntry[] = [];
  private head = 0;
  private totalBytes = 0;

  constructor(private readonly bounds: EvictionBounds = EVICTION_BOUNDS) {}

  /** Rebuilds from every record in the state (a store opening, a snapshot installed). */
  static fromRecords(
    records: Iterable<readonly [Uint8Array, Uint8Array]>,
    bounds: EvictionBounds = EVICTION_BOUNDS,
  ): IdempotencyIndex {
    const index = new IdempotencyIndex(bounds);
    const entries: IndexEntry[] = [];
    for (const [key, value] of records) {
      const id = idOfRecordKey(key);
      const record = decodeRecord(value, `idempotency record ${JSON.stringify(id)}`);
      entries.push({ id, index: record.index, at: record.at, bytes: key.length + value.length });
    }
    entries.sort((a, b) => a.index - b.index);
    for (const entry of entries) index.push(entry);
    return index;
  }

  /** The ids held, oldest first (for tests and the simulation's checks). */
  ids(): string[] {
    return this.order.slice(this.head).map((e) => e.id);
  }

  get size(): number {
    return this.order.length - this.head;
  }

  get bytes(): number {
    return this.totalBytes;
  }

  /**
   * Records the answer to a request applied at `record.index` and evicts what the rule says, all
   * through `view` (the batch being prepared). The caller checked that `id` has no record.
   */
  add(view: KvView, id: string, record: IdempotencyRecord): void {
    const key = recordKey(id);
    const value = encodeRecord(record);
    view.put(key, value);
    this.push({ id, index: record.index, at: record.at, bytes: key.length + value.length });
    const { ttlMs, maxRecords, maxBytes } = this.bounds;
    const cutoff = record.at - ttlMs;
    for (;;) {
      const oldest = this.order[this.head];
      if (oldest === undefined || this.size === 1) break;
      const expired = oldest.at < cutoff;
      if (!expired && this.size <= maxRecords && this.totalBytes <= maxBytes) break;
      view.delete(recordKey(oldest.id));
      this.totalBytes -= oldest.bytes;
      this.head++;
    }
    if (this.head > 1024 && this.head * 2 > this.order.length) {
      this.order = this.order.slice(this.head);
      this.head = 0;
    }
  }

  private push(entry: IndexEntry): void {
    this.order.push(entry);
    this.totalBytes += entry.bytes;
  }
}

/** Looks up the record of `id` through `view` (it sees records added earlier in the same batch). */
export function findRecord(view: KvView, id: string): IdempotencyRecord | undefined {
  const bytes = view.get(recordKey(id));
  return bytes === undefined ? undefined : decodeRecord(bytes, `idempotency record ${JSON.stringify(id)}`);
}
