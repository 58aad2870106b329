// Opening a node's LevelDB and its sublevels. Shared by NodeStorage and by any
// other handle on the same database (the read pool's workers), so that every handle uses the same
// options: `multithreading: true` is what lets several handles in one process share one LevelDB,
// and LevelDB only shares it between handles opened with the identical location string.

import { ClassicLevel } from 'classic-level';
import { prefixedBytes } from './batch-bytes.js';

/**
 * Sublevel names: `meta` (hard state, identity, log start, snapshot point), `log` (Raft log), `sm`
 * (applied index, generation) and the state machine's `kv` sublevel of each generation (kvName).
 */
export const SUBLEVEL_NAMES = { meta: 'meta', log: 'log', sm: 'sm' } as const;

/**
 * The sublevel holding the state machine of `generation`: `kv` for 0 (format 1 dirs), `kv1`,
 * `kv2`... after snapshot installs. Each install writes the new state into the next generation and
 * switches to it in one batch, so a crash leaves the old state or the whole new one.
 */
export function kvName(generation: number): string {
  return generation === 0 ? 'kv' : `kv${generation}`;
}

export const DATABASE_OPTIONS = { keyEncoding: 'view', valueEncoding: 'view', multithreading: true } as const;

export type ByteLevel = ClassicLevel<Uint8Array, Uint8Array>;
export type ByteSublevel = ReturnType<typeof byteSublevel>;

export interface Database {
  readonly db: ByteLevel;
  readonly meta: ByteSublevel;
  readonly log: ByteSublevel;
  readonly sm: ByteSublevel;
}

/**
 * Opens the database at `location` (an absolute path, passed through unchanged) and every sublevel.
 * Each sublevel is opened explicitly: until it is, `getSync` and chained batches on it throw
 * "Database is not open". Errors are LevelDB's own; callers decide what they mean.
 */
export async function openDatabase(location: string, options: { createIfMissing?: boolean } = {}): Promise<Database> {
  const db = new ClassicLevel<Uint8Array, Uint8Array>(location, DATABASE_OPTIONS);
  await db.open({ createIfMissing: options.createIfMissing ?? true });
  try {
    const handles: Database = {
      db,
      meta: byteSublevel(db, SUBLEVEL_NAMES.meta),
      log: byteSublevel(db, SUBLEVEL_NAMES.log),
      sm: byteSublevel(db, SUBLEVEL_NAMES.sm),
    };
    await Promise.all([handles.meta.open(), handles.log.open(), handles.sm.open()]);
    return handles;
  } catch (error) {
    await db.close().catch(() => undefined);
    throw error;
  }
}

/** The (opened) state-machine sublevel of `generation`. */
export async function openKv(db: ByteLevel, generation: number): Promise<ByteSublevel> {
  const kv = byteSublevel(db, kvName(generation));
  await kv.open();
  return kv;
}

/**
 * Every generation whose state-machine sublevel holds at least one key, in key order of their
 * names. Reads one key per such sublevel: after each, it seeks past the whole sublevel, so the cost
 * is one seek per non-empty generation however many keys they hold.
 */
export async function storedGenerations(db: ByteLevel): Promise<number[]> {
  // The root-level prefix of generation 0 ('kv' between two separators) shows how abstract-level
  // frames every name: each generation's keys start with the separator, 'kv', digits or nothing,
  // and the separator again. All of them, and nothing else, lie between the separator + 'kv' and
  // that prefix's successor (no other sublevel's name starts with 'kv': SUBLEVEL_NAMES).
  const framed = prefixOf(byteSublevel(db, kvName(0)));
  const separator = framed[0];
  if (separator === undefined || framed[framed.length - 1] !== separator)
    throw new Error('unexpected sublevel prefix: not framed by one separator byte');
  const [gte, lt] = successorRange(framed.subarray(0, framed.length - 1));
  const found: number[] = [];
  const keys = db.keys({ gte, lt, keyEncoding: 'view' });
  try {
    for (let key = await keys.next(); key !== undefined; key = await keys.next()) {
      const end = key.indexOf(separator, 1);
      if (end < 0) continue; // not a sublevel's key (no name ends here): none of ours
      const generation = generationOfName(nameDecoder.decode(key.subarray(1, end)));
      if (generation !== undefined) found.push(generation);
      keys.seek(successorRange(key.subarray(0, end + 1))[1]);
    }
  } finally {
    await keys.close();
  }
  return found;
}

const nameDecoder = new TextDecoder();

/** The generation kvName gives `name`, or undefined for any other name. */
function generationOfName(name: string): number | undefined {
  if (name === kvName(0)) return 0;
  const match = /^kv([1-9][0-9]*)$/.exec(name);
  return match?.[1] === undefined ? undefined : Number(match[1]);
}

function byteSublevel(db: ByteLevel, name: string) {
  return db.sublevel<Uint8Array, Uint8Array>(name, { keyEncoding: 'view', valueEncoding: 'view' });
}

/**
 * One write of a root batch, its key already carrying its sublevel's prefix: every batch here spans
 * sublevels atomically, and prefixing once, when the operation is made, spares abstract-level's
 * per-operation sublevel handling (see writeBatch).
 */
export type ByteBatchOperation =
  | {
      readonly type: 'put';
      readonly key: Uint8Array;
      readonly value: Uint8Array;
      readonly keyEncoding: 'view';
      readonly valueEncoding: 'view';
    }
  | { readonly type: 'del'; readonly key: Uint8Array; readonly keyEncoding: 'view' };

/** A put into `sublevel`, for a root batch that spans sublevels atomically. */
export function putOp(sublevel: ByteSublevel, key: Uint8Array, value: Uint8Array): ByteBatchOperation {
  return { type: 'put', key: prefixedKey(sublevel, key), value, keyEncoding: 'view', valueEncoding: 'view' };
}

export function delOp(sublevel: ByteSublevel, key: Uint8Array): ByteBatchOperation {
  return { type: 'del', key: prefixedKey(sublevel, key), keyEncoding: 'view' };
}

const prefixes = new WeakMap<ByteSublevel, Uint8Array>();

/**
 * `key` with `sublevel`'s prefix: the bytes abstract-level's `prefixKey(key, 'view', false)` makes,
 * in batch bytes (batch-bytes.ts says why), from the prefix asked once per sublevel.
 */
function prefixedKey(sublevel: ByteSublevel, key: Uint8Array): Uint8Array {
  return prefixedBytes(prefixOf(sublevel), key);
}

/** `sublevel`'s prefix at the root, asked of abstract-level once per sublevel. Never written to. */
function prefixOf(sublevel: ByteSublevel): Uint8Array {
  let prefix = prefixes.get(sublevel);
  if (prefix === undefined) {
    // An empty key gives the prefix itself (abstract-level's own, shared): keep a copy.
    prefix = sublevel.prefixKey(new Uint8Array(0), 'view', false).slice();
    prefixes.set(sublevel, prefix);
  }
  return prefix;
}

/**
 * The root-level key range that holds every key of `sublevel`: from its prefix to the prefix's
 * successor (the same bytes with the last one raised; a prefix ends in abstract-level's separator,
 * never in 0xff).
 */
export function prefixRange(sublevel: ByteSublevel): [Uint8Array, Uint8Array] {
  return successorRange(prefixOf(sublevel));
}

/** Every key that starts with `prefix`: from it to the same bytes with the last one raised. */
function successorRange(prefix: Uint8Array): [Uint8Array, Uint8Array] {
  const last = prefix[prefix.length - 1];
  if (last === undefined || last === 0xff) throw new Error('a prefix that ends in 0xff has no simple successor');
  const end = prefix.slice();
  end[end.length - 1] = last + 1;
  return [prefix.slice(), end];
}

/** abstract-level's private write (its contract with implementations such as classic-level). */
interface PrivateBatch {
  _batch(operations: readonly ByteBatchOperation[], options: { readonly sync: boolean }): Promise<void>;
}

/**
 * Writes `operations` in one atomic LevelDB batch, `sync` as the caller says. The hot path of every
 * Ready: it goes straight to the implementation's `_batch` when there is one, because the public
 * `batch()` re-validates, re-encodes and copies each operation (measured: 11 us of JavaScript per
 * operation on the benchmark machine, more than LevelDB's own work, for nothing these operations
 * need: they are pre-encoded bytes with prefixed keys, and no hook or 'write' listener is ever
 * installed on these handles). Falls back to `batch()` where the private method is missing.
 */
export async function writeBatch(
  db: ByteLevel,
  operations: readonly ByteBatchOperation[],
  options: { readonly sync: boolean },
): Promise<void> {
  if (operations.length === 0) return;
  // What the public batch() asserts first: classic-level's native side must never see a closed handle.
  if (db.status !== 'open')
    throw new Error(`Database is not ${db.status === 'opening' ? 'open yet' : 'open'}: cannot write a batch`);
  const direct = (db as unknown as Partial<PrivateBatch>)._batch;
  if (typeof direct === 'function') return direct.call(db, operations, options);
  return db.batch(operations.slice(), options);
}
