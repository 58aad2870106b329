// Shared fixtures of the storage tests: temp data dirs that are always removed (storages opened on
// them are closed first, so LevelDB lets go of its files), entry builders, and a raw LevelDB handle
// for planting damage the storage must detect.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ClassicLevel } from 'classic-level';
import { afterEach } from 'vitest';
import { EntryType, type Entry } from '../../src/raft/types.js';
import { NodeStorage, type NodeStorageOptions, type SnapshotSource } from '../../src/storage/node-storage.js';
import type { ByteLevel, ByteSublevel } from '../../src/storage/database.js';
import { decodeStored } from '../../src/storage/key-meta.js';

export const CLUSTER = 'test-cluster';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function bytes(text: string): Uint8Array {
  return encoder.encode(text);
}

export function text(data: Uint8Array | undefined): string | undefined {
  return data === undefined ? undefined : decoder.decode(data);
}

export function entry(index: number, term: number, data: Uint8Array | string = ''): Entry {
  return { index, term, type: EntryType.Normal, data: typeof data === 'string' ? bytes(data) : data };
}

/** Entries from `first` on, one per term in `terms`, with payloads that tell them apart. */
export function entriesFrom(
  first: number,
  terms: readonly number[],
  payload = (i: number, t: number) => `e${i}t${t}`,
): Entry[] {
  return terms.map((term, k) => entry(first + k, term, payload(first + k, term)));
}

export interface StorageFixture {
  /** A fresh temp dir, removed after the test. */
  tempDir(): Promise<string>;
  /** NodeStorage.open with test defaults; the storage is closed after the test if still open. */
  open(dataDir: string, overrides?: Partial<NodeStorageOptions>): Promise<NodeStorage>;
  /** Closes `storage` and opens its data dir again with the same overrides. */
  reopen(storage: NodeStorage, overrides?: Partial<NodeStorageOptions>): Promise<NodeStorage>;
}

/** Registers an afterEach that closes every storage and removes every temp dir, pass or fail. */
export function useStorageFixture(): StorageFixture {
  const dirs: string[] = [];
  const opened: NodeStorage[] = [];
  const optionsOf = new Map<NodeStorage, Partial<NodeStorageOptions>>();

  afterEach(async () => {
    for (const storage of opened.splice(0)) await storage.close().catch(() => undefined);
    optionsOf.clear();
    for (const dir of dirs.splice(0)) await fs.rm(dir, { recursive: true, force: true });
  });

  const open = async (dataDir: string, overrides: Partial<NodeStorageOptions> = {}): Promise<NodeStorage> => {
    const storage = await NodeStorage.open({
      dataDir,
      clusterId: CLUSTER,
      nodeId: 'n1',
      voters: ['n1', 'n2', 'n3'],
      ...overrides,
    });
    opened.push(storage);
    optionsOf.set(storage, overrides);
    return storage;
  };

  return {
    async tempDir() {
      const dir = await makeTempDir();
      dirs.push(dir);
      return dir;
    },
    open,
    async reopen(storage, overrides) {
      await storage.close();
      return open(storage.location, overrides ?? optionsOf.get(storage) ?? {});
    },
  };
}

export function makeTempDir(): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), 'raftkv-storage-'));
}

/**
 * Runs `fn` with a raw LevelDB handle on `location` and its sublevel `name` (the storage must be
 * closed): how a test plants damage behind the storage's back.
 */
export async function withRawSublevel(
  location: string,
  name: string,
  fn: (sub: ByteSublevel, db: ByteLevel) => Promise<void>,
): Promise<void> {
  const db = new ClassicLevel<Uint8Array, Uint8Array>(location, { keyEncoding: 'view', valueEncoding: 'view' });
  await db.open();
  try {
    const sub = db.sublevel<Uint8Array, Uint8Array>(name, { keyEncoding: 'view', valueEncoding: 'view' });
    await sub.open();
    await fn(sub, db);
  } finally {
    await db.close();
  }
}

/** The 8-byte big-endian key of log entry `index` (as storage/codec.ts writes it). */
export function rawLogKey(index: number): Uint8Array {
  const key = new Uint8Array(8);
  new DataView(key.buffer).setBigUint64(0, BigInt(index));
  return key;
}

/** classic-level's private batch write, where every batch of a NodeStorage ends (database.ts writeBatch). */
export type BatchWrite = (
  ops: readonly { readonly key: Uint8Array }[],
  options: { readonly sync: boolean },
) => Promise<void>;

/** classic-level's compactRange over root-level keys (what NodeStorage calls on its database). */
export type CompactRange = (start: Uint8Array, end: Uint8Array) => Promise<void>;

/** The methods of `storage`'s database handle that a test may wrap (wrapDatabase). */
export interface WrappableDatabase {
  _batch: BatchWrite;
  compactRange: CompactRange;
  close: () => Promise<void>;
}

/**
 * Puts `wrap(original)` in place of the method `name` of `storage`'s database handle: how a test
 * watches, counts or delays what the storage asks of LevelDB.
 */
export function wrapDatabase<M extends keyof WrappableDatabase>(
  storage: NodeStorage,
  name: M,
  wrap: (original: WrappableDatabase[M]) => WrappableDatabase[M],
): void {
  const db = (storage as unknown as { handles: { db: WrappableDatabase } }).handles.db;
  db[name] = wrap(db[name].bind(db) as WrappableDatabase[M]);
}

/** wrapDatabase of the batch write. */
export function wrapBatches(storage: NodeStorage, wrap: (original: BatchWrite) => BatchWrite): void {
  wrapDatabase(storage, '_batch', wrap);
}

/** wrapDatabase of compactRange. */
export function wrapCompactRange(storage: NodeStorage, wrap: (original: CompactRange) => CompactRange): void {
  wrapDatabase(storage, 'compactRange', wrap);
}

/**
 * Reads `storage`'s snapshot source to its end, handing each chunk of about `pairBytes` to `onChunk`
 * (awaited), and closes it; returns the source, for its index, term and membership.
 */
export async function readSnapshot(
  storage: NodeStorage,
  pairBytes: number,
  onChunk: (pairs: (readonly [Uint8Array, Uint8Array])[]) => void | Promise<void>,
): Promise<SnapshotSource> {
  const source = await storage.openSnapshotSource();
  try {
    for (let pairs = await source.next(pairBytes); pairs !== null; pairs = await source.next(pairBytes))
      await onChunk(pairs);
  } finally {
    await source.close();
  }
  return source;
}

/** Every key-value pair of `storage`'s applied state, as text (the value without its key metadata). */
export async function allPairs(storage: NodeStorage): Promise<[string, string][]> {
  const out: [string, string][] = [];
  await readSnapshot(storage, 1000, (pairs) => {
    // The stored values: each starts with its key's metadata (key-meta.ts).
    for (const [k, v] of pairs) out.push([text(k)!, text(decodeStored(v).value)!]);
  });
  return out;
}
