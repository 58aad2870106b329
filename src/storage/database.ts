// Opening a node's LevelDB and its sublevels (design.md section 3). Shared by NodeStorage and by any
// other handle on the same database (the read pool's workers), so that every handle uses the same
// options: `multithreading: true` is what lets several handles in one process share one LevelDB,
// and LevelDB only shares it between handles opened with the identical location string.

import { ClassicLevel, type BatchOperation } from 'classic-level';

/** Sublevel names: `meta` (hard state, identity), `log` (Raft log), `kv` (state machine), `sm` (applied). */
export const SUBLEVEL_NAMES = { meta: 'meta', log: 'log', kv: 'kv', sm: 'sm' } as const;

export const DATABASE_OPTIONS = { keyEncoding: 'view', valueEncoding: 'view', multithreading: true } as const;

export type ByteLevel = ClassicLevel<Uint8Array, Uint8Array>;
export type ByteSublevel = ReturnType<typeof byteSublevel>;

export interface Database {
  readonly db: ByteLevel;
  readonly meta: ByteSublevel;
  readonly log: ByteSublevel;
  readonly kv: ByteSublevel;
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
      kv: byteSublevel(db, SUBLEVEL_NAMES.kv),
      sm: byteSublevel(db, SUBLEVEL_NAMES.sm),
    };
    await Promise.all([handles.meta.open(), handles.log.open(), handles.kv.open(), handles.sm.open()]);
    return handles;
  } catch (error) {
    await db.close().catch(() => undefined);
    throw error;
  }
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
