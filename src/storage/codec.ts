// Encodings of everything NodeStorage keeps in LevelDB, and strict decoders:
// a stored value that does not have exactly the expected shape is corrupt, never "close enough".
//
// Values are msgpack records (`useRecords: true`). Without shared structures every packed value
// carries its own record definition, so any reader (a read-pool worker, a repair tool) decodes it with
// a fresh Packr and no state shared with the writer.

import { Packr } from 'msgpackr';
import { EntryType, type Entry, type HardState, type SnapshotMeta } from '../raft/types.js';
import { CorruptDataError, describeError } from './errors.js';

/**
 * The on-disk format this build writes and understands. Bump it on any incompatible change.
 *  1: the log from index 1, the state machine in sublevel `kv`.
 *  2: log compaction (meta `logstart`, `snapshot`) and state-machine generations (sm `generation`:
 *     an installed snapshot lives in a new sublevel). A format-1 dir reads as format 2 with nothing
 *     compacted and generation 0, and is marked format 2 on open, so older builds refuse it.
 *  3: versioned keys: every state-machine value starts with its key's metadata (key-meta.ts), and
 *     the state machine keeps its own records under internal keys (idempotency.ts). A format-1 or
 *     -2 dir is upgraded on open (upgrade-values.ts).
 */
export const STORAGE_FORMAT = 3;

/**
 * A data dir whose Raft log and term and vote live in segment files of their own (`raft-log/`,
 * docs/log-file-proposal.md) rather than in LevelDB. A new dir is made so when the node is asked
 * to (NodeStorageOptions.logInFiles); an existing dir keeps the format it has. Older builds refuse
 * it (they read format 3 at most). LevelDB then holds the state machine, the identity and the
 * snapshot point; the hard state and the `log` sublevel stay empty. Moving a format-3 dir to it,
 * or back, is not built.
 */
export const LOG_FILES_FORMAT = 4;

/** The directory of the segment files in a format-4 data dir. */
export const LOG_FILES_DIR = 'raft-log';

export interface Identity {
  readonly clusterId: string;
  readonly nodeId: string;
  readonly format: number;
}

export interface AppliedState {
  readonly index: number;
  readonly term: number;
}

// One instance packs, another unpacks: packing never depends on what was last unpacked.
const packer = new Packr({ useRecords: true });
const unpacker = new Packr({ useRecords: true });

const utf8 = new TextEncoder();

/** Keys of the `meta` and `sm` sublevels. */
export const META_HARDSTATE = utf8.encode('hardstate');
export const META_IDENTITY = utf8.encode('identity');
/** The entry the log starts after (index, term): everything up to it was compacted away. */
export const META_LOGSTART = utf8.encode('logstart');
/** The latest snapshot point (index, term, voters): where the state machine was when the log was last compacted. */
export const META_SNAPSHOT = utf8.encode('snapshot');
/**
 * Present once a peer told this node it was removed from the cluster (its own log may never say so:
 * the leader stops replicating to a removed node). The value is the telling peer's id, as UTF-8.
 */
export const META_REMOVED = utf8.encode('removed');
export const SM_APPLIED = utf8.encode('applied');
/** Which `kv` sublevel holds the state machine (each installed snapshot moves to a new one). */
export const SM_GENERATION = utf8.encode('generation');
/** The cluster's membership (storage/members.ts): part of the state machine, like the keys. */
export const SM_MEMBERS = utf8.encode('members');

/** A log position: an entry's index and term. */
export interface LogPosition {
  readonly index: number;
  readonly term: number;
}

// --- log keys: 8-byte big-endian index, so LevelDB's byte order is index order ---------------------

export const LOG_KEY_BYTES = 8;

export function logKey(index: number): Uint8Array {
  // Byte by byte, not through a DataView: asking a small array for its `.buffer` makes V8 move it
  // off its heap (an allocation per entry), and a log key is usually copied into a prefixed key anyway.
  const key = new Uint8Array(LOG_KEY_BYTES);
  const high = Math.floor(index / 2 ** 32);
  const low = index >>> 0;
  key[0] = high >>> 24;
  key[1] = high >>> 16;
  key[2] = high >>> 8;
  key[3] = high;
  key[4] = low >>> 24;
  key[5] = low >>> 16;
  key[6] = low >>> 8;
  key[7] = low;
  return key;
}

export function indexOfLogKey(key: Uint8Array): number {
  if (key.length !== LOG_KEY_BYTES)
    throw new CorruptDataError(`log key of ${key.length} bytes, expected ${LOG_KEY_BYTES}`);
  const view = new DataView(key.buffer, key.byteOffset, key.byteLength);
  const index = view.getUint32(0) * 2 ** 32 + view.getUint32(4);
  if (!Number.isSafeInteger(index) || index < 1) throw new CorruptDataError(`log key holds index ${index}`);
  return index;
}

// --- values -------------------------------------------------------------------------------------

export function encodeHardState(hs: HardState): Uint8Array {
  return pack({ term: hs.term, vote: hs.vote, commit: hs.commit });
}

export function decodeHardState(bytes: Uint8Array): HardState {
  const r = unpackRecord(bytes, 'hard state');
  return {
    term: field(r, 'term', isCount, 'hard state'),
    vote: field(r, 'vote', isString, 'hard state'),
    commit: field(r, 'commit', isCount, 'hard state'),
  };
}

export function encodeIdentity(identity: Identity): Uint8Array {
  return pack({ clusterId: identity.clusterId, nodeId: identity.nodeId, format: identity.format });
}

export function decodeIdentity(bytes: Uint8Array): Identity {
  const r = unpackRecord(bytes, 'identity');
  return {
    clusterId: field(r, 'clusterId', isNonEmptyString, 'identity'),
    nodeId: field(r, 'nodeId', isNonEmptyString, 'identity'),
    format: field(r, 'format', isPositive, 'identity'),
  };
}

export function encodeApplied(applied: AppliedState): Uint8Array {
  return pack({ index: applied.index, term: applied.term });
}

export function decodeApplied(bytes: Uint8Array): AppliedState {
  const r = unpackRecord(bytes, 'applied state');
  return { index: field(r, 'index', isCount, 'applied state'), term: field(r, 'term', isCount, 'applied state') };
}

export function encodeLogPosition(position: LogPosition): Uint8Array {
  return pack({ index: position.index, term: position.term });
}

export function decodeLogPosition(bytes: Uint8Array, what: string): LogPosition {
  const r = unpackRecord(bytes, what);
  return { index: field(r, 'index', isCount, what), term: field(r, 'term', isCount, what) };
}

export function encodeSnapshotMeta(meta: SnapshotMeta): Uint8Array {
  return pack({ index: meta.index, term: meta.term, voters: [...meta.voters], learners: [...(meta.learners ?? [])] });
}

export function decodeSnapshotMeta(bytes: Uint8Array): SnapshotMeta {
  const what = 'snapshot metadata';
  const r = unpackRecord(bytes, what);
  return {
    index: field(r, 'index', isCount, what),
    term: field(r, 'term', isCount, what),
    voters: field(r, 'voters', isStringArray, what),
    // Absent in records written before learners existed: none then.
    learners: r['learners'] === undefined ? [] : field(r, 'learners', isStringArray, what),
  };
}

export function encodeGeneration(generation: number): Uint8Array {
  return pack({ generation });
}

export function decodeGeneration(bytes: Uint8Array): number {
  return field(unpackRecord(bytes, 'state-machine generation'), 'generation', isCount, 'state-machine generation');
}

/** A log value: the entry without its index, which is the key. */
export function encodeLogValue(entry: Entry): Uint8Array {
  return pack({ term: entry.term, type: entry.type, data: entry.data });
}

export function decodeLogValue(index: number, bytes: Uint8Array): Entry {
  const what = `log entry ${index}`;
  const r = unpackRecord(bytes, what);
  const term = field(r, 'term', isPositive, what);
  const type = field(r, 'type', isEntryType, what);
  const data = field(r, 'data', isBytes, what);
  return { index, term, type, data: plainBytes(data) };
}

/**
 * A plain Uint8Array view of the same memory. LevelDB and msgpackr hand out Node Buffers; callers get
 * one type whatever produced the bytes (and deep equality with plain arrays holds in tests).
 */
export function plainBytes(bytes: Uint8Array): Uint8Array {
  return bytes.constructor === Uint8Array ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

// --- helpers --------------------------------------------------------------------------------------

function pack(value: Record<string, unknown>): Uint8Array {
  return packer.pack(value);
}

function unpackRecord(bytes: Uint8Array, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = unpacker.unpack(bytes);
  } catch (error) {
    throw new CorruptDataError(`${what} is not valid msgpack (${describeError(error)})`, { cause: error });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array) {
    throw new CorruptDataError(`${what} is not a record (decoded to ${describeValue(value)})`);
  }
  return value as Record<string, unknown>;
}

function field<T>(record: Record<string, unknown>, name: string, check: (v: unknown) => v is T, what: string): T {
  const value = record[name];
  if (!check(value)) throw new CorruptDataError(`${what} has an invalid "${name}" (${describeValue(value)})`);
  return value;
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function isPositive(v: unknown): v is number {
  return isCount(v) && v > 0;
}

function isString(v: unknown): v is string {
  return typeof v === 'string';
}

function isNonEmptyString(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0;
}

function isEntryType(v: unknown): v is EntryType {
  return v === EntryType.Normal || v === EntryType.ConfChange;
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string' && x.length > 0);
}

function isBytes(v: unknown): v is Uint8Array {
  return v instanceof Uint8Array;
}

function describeValue(v: unknown): string {
  if (v instanceof Uint8Array) return `${v.length} bytes`;
  if (v === undefined) return 'missing';
  try {
    return JSON.stringify(v)?.slice(0, 80) ?? String(v);
  } catch {
    return typeof v;
  }
}
