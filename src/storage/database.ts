// Opening a node's LevelDB and its sublevels. Shared by NodeStorage and by any
// other handle on the same database (the read pool's workers), so that every handle uses the same
// options: `multithreading: true` is what lets several handles in one process share one LevelDB,
// and LevelDB only shares it between handles opened with the identical location string.

import { ClassicLevel, type BatchOperation } from 'classic-level';

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

function byteSublevel(db: ByteLevel, name: string) {
  return db.sublevel<Uint8Array, Uint8Array>(name, { keyEncoding: 'view', valueEncoding: 'view' });
}

export type ByteBatchOperation = BatchOperation<ByteLevel, Uint8Array, Uint8Array>;

/** A put into `sublevel`, for a root batch that spans sublevels atomically. */
export function putOp(sublevel: ByteSublevel, key: Uint8Array, value: Uint8Array): ByteBatchOperation {
  return { type: 'put', sublevel, key, value };
}

export function delOp(sublevel: ByteSublevel, key: Uint8Array): ByteBatchOperation {
  return { type: 'del', sublevel, key };
}
