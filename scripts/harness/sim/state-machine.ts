// A simulated node's state machine: the real apply code (src/storage/apply-request.ts) over a Map of
// stored bytes, the user keys with their metadata and the idempotency records alike, exactly as the
// real state machine keeps them in LevelDB. Commands arrive encoded (src/storage/command.ts), and a
// snapshot carries every pair, records included; installing one, and restarting from "disk", rebuild
// the IdempotencyIndex from the records with IdempotencyIndex.fromRecords, as the real node does.
//
// The digest (what the safety checker compares between nodes at each index) shows the user keys
// as text and the records as a count and a 64-bit hash kept up to date on every change, so that a
// state with hundreds of records costs nothing more to digest than one without.
import { applyPlain, applyRequest, type RequestAnswer } from '../../../src/storage/apply-request.js';
import { decodeCommand, type Command } from '../../../src/storage/command.js';
import { IdempotencyIndex, idOfRecordKey, type EvictionBounds } from '../../../src/storage/idempotency.js';
import { decodeStored, type KeyMeta, type StoredValue } from '../../../src/storage/key-meta.js';
import { byteKey, INTERNAL_PREFIX, metaOfStored, type KvView } from '../../../src/storage/kv-view.js';
import { decodeLegacyCommand, isLegacyCommand } from './legacy-command.js';

/**
 * Decoded commands by entry data (the plain workload's legacy entries as the real commands they stand
 * for, legacy-command.ts). The simulated network hands every node the same entry objects, so
 * each entry is decoded once rather than once per node (decoding is a pure function of the bytes,
 * and neither the bytes nor the decoded command is ever mutated).
 */
const decodedCommands = new WeakMap<Uint8Array, Command>();

function decodeOnce(data: Uint8Array): Command {
  let command = decodedCommands.get(data);
  if (command === undefined) {
    command = isLegacyCommand(data) ? decodeLegacyCommand(data) : decodeCommand(data);
    decodedCommands.set(data, command);
  }
  return command;
}

/** One stored pair: the key and its stored bytes (key-meta.ts, or an idempotency record). Never mutated. */
interface Pair {
  readonly key: Uint8Array;
  readonly stored: Uint8Array;
}

/** A copy of a state machine's pairs, as a snapshot transfer carries it. */
export interface SimSnapshotState {
  readonly user: ReadonlyMap<string, Pair>;
  readonly internal: ReadonlyMap<string, Pair>;
}

/** What applying one entry did. */
export interface SimApplied {
  /** For a request command: its answer; null for a plain put or delete, a barrier. */
  readonly answer: RequestAnswer | null;
  /** A replay answered from a record that this node did not apply itself but received in a snapshot. */
  readonly replayedFromSnapshot: boolean;
}

export class SimStateMachine implements KvView {
  private user = new Map<string, Pair>();
  /** Keys under INTERNAL_PREFIX: the idempotency records. */
  private internal = new Map<string, Pair>();
  private records: IdempotencyIndex;
  private hashA = 0;
  private hashB = 0;
  /** The records that came with the last snapshot installed, for the statistics. */
  private fromSnapshot = new Set<string>();
  /** The digest, until the state changes. */
  private cachedDigest: string | null = null;
  /** Each user key's part of the digest, kept up to date as the key changes. */
  private userDigests = new Map<string, string>();

  constructor(private readonly bounds: EvictionBounds) {
    this.records = new IdempotencyIndex(bounds);
  }

  get(key: Uint8Array): Uint8Array | undefined {
    return this.mapOf(key).get(byteKey(key))?.stored;
  }

  getMeta(key: Uint8Array): KeyMeta | undefined {
    return metaOfStored(this.get(key));
  }

  put(key: Uint8Array, stored: Uint8Array): void {
    const id = byteKey(key);
    const map = this.mapOf(key);
    if (map === this.internal) {
      const before = map.get(id);
      if (before !== undefined) this.toggleHash(before);
      this.toggleHash({ key, stored });
    } else {
      this.cachedDigest = null;
      this.userDigests.set(id, describePair(id, stored));
    }
    map.set(id, { key, stored });
  }

  delete(key: Uint8Array): void {
    const id = byteKey(key);
    const map = this.mapOf(key);
    const before = map.get(id);
    if (before === undefined) return;
    if (map === this.internal) this.toggleHash(before);
    else {
      this.cachedDigest = null;
      this.userDigests.delete(id);
    }
    map.delete(id);
  }

  /** Applies a committed entry's command at (index, term), through the real apply code. */
  apply(data: Uint8Array, index: number, term: number): SimApplied {
    const command = decodeOnce(data);
    if (command.op === 'barrier') return { answer: null, replayedFromSnapshot: false };
    if (command.op !== 'request') {
      applyPlain(this, command, index);
      return { answer: null, replayedFromSnapshot: false };
    }
    const answer = applyRequest(this, this.records, command, index, term);
    const id = command.idempotency?.id;
    return {
      answer,
      replayedFromSnapshot: answer.kind === 'replayed' && id !== undefined && this.fromSnapshot.has(id),
    };
  }

  /** The value and metadata of a user key, or undefined. */
  read(key: Uint8Array): StoredValue | undefined {
    const stored = this.user.get(byteKey(key))?.stored;
    return stored === undefined ? undefined : decodeStored(stored);
  }

  /**
   * The state as a snapshot sends it: every pair (a copy of the maps; the pairs themselves are never
   * mutated). `withoutRecords` is a planted bug (planted-bugs.ts): a snapshot built from the user keys
   * alone, as a scan of them would give.
   */
  snapshot(withoutRecords = false): SimSnapshotState {
    return { user: new Map(this.user), internal: withoutRecords ? new Map() : new Map(this.internal) };
  }

  /** Replaces the state with a snapshot's, and rebuilds the index of records from the records it holds. */
  install(state: SimSnapshotState): void {
    this.user = new Map(state.user);
    this.internal = new Map(state.internal);
    this.cachedDigest = null;
    this.userDigests = new Map([...this.user].map(([id, { stored }]) => [id, describePair(id, stored)]));
    this.hashA = 0;
    this.hashB = 0;
    for (const pair of this.internal.values()) this.toggleHash(pair);
    this.reopen();
    this.fromSnapshot = new Set(this.records.ids());
  }

  /**
   * A restart: memory is gone, the pairs are what reached the disk. The index of records is rebuilt
   * from them, as NodeStorage does when it opens a data dir.
   */
  reopen(): void {
    const pairs = [...this.internal.values()].map(({ key, stored }) => [key, stored] as const);
    this.records = IdempotencyIndex.fromRecords(pairs, this.bounds);
    // The index lists the records in apply order; a record's id is in its key.
    if (this.records.size !== this.internal.size) {
      throw new Error(`rebuilt ${this.records.size} idempotency records from ${this.internal.size} internal keys`);
    }
  }

  /** The ids of the records held (for tests). */
  recordIds(): string[] {
    return [...this.internal.values()].map(({ key }) => idOfRecordKey(key)).sort();
  }

  /** The whole state in one string: two nodes with the same state have the same digest. */
  digest(): string {
    if (this.cachedDigest !== null) return this.cachedDigest;
    const users = [...this.userDigests.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, pair]) => pair)
      .join(';');
    const hash = `${this.hashA.toString(16).padStart(8, '0')}${this.hashB.toString(16).padStart(8, '0')}`;
    this.cachedDigest = `${users}|records=${this.internal.size}:${hash}`;
    return this.cachedDigest;
  }

  private mapOf(key: Uint8Array): Map<string, Pair> {
    return key[0] === INTERNAL_PREFIX ? this.internal : this.user;
  }

  /** Adds or removes a pair from the records' hash (XOR of per-pair hashes: order does not matter). */
  private toggleHash(pair: Pair): void {
    this.cachedDigest = null;
    this.hashA = (this.hashA ^ pairHash(pair, 0x811c9dc5)) >>> 0;
    this.hashB = (this.hashB ^ pairHash(pair, 0x5bd1e995)) >>> 0;
  }
}

/** A user key's part of the digest: `key=value@createIndex/modIndex/version`. */
function describePair(id: string, stored: Uint8Array): string {
  const { meta, value } = decodeStored(stored);
  return `${id}=${Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('latin1')}@${meta.createIndex}/${meta.modIndex}/${meta.version}`;
}

/** A 32-bit hash of a pair (FNV-1a over key, a separator and the stored bytes, then murmur3's finalizer). */
function pairHash(pair: Pair, seed: number): number {
  let h = seed >>> 0;
  for (const byte of pair.key) h = Math.imul(h ^ byte, 0x01000193);
  h = Math.imul(h ^ 0xff, 0x01000193);
  for (const byte of pair.stored) h = Math.imul(h ^ byte, 0x01000193);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}
