// The snapshot stream: how a state-machine snapshot travels, to a follower (one frame per peer
// request) or into a backup file (the frames length-prefixed after a magic). One format for both,
// so a backup is exactly what a follower would receive.
//
//   header   {format, clusterId, index, term, membership} the snapshot's point and membership
//   chunk    [key, value, key, value, ...]               pairs of the state machine, in key order
//   ...
//   trailer  {pairs, sha256}                             how many pairs, and the SHA-256 of every
//                                                        frame body before it (header and chunks)
//
// Every frame body is msgpack. Decoders are strict: a frame that is not exactly what is expected is
// a SnapshotFormatError, and the trailer's digest catches anything corrupted or cut short in between.

import { createHash, type Hash } from 'node:crypto';
import { Packr } from 'msgpackr';
import type { SnapshotMeta } from '../raft/types.js';
import { encodeStored, LEGACY_META } from '../storage/key-meta.js';
import { confStateOf, parseMembership, type Membership } from '../storage/members.js';
import { copyOut } from '../transport/copy-out.js';

/**
 * The stream format this build writes. 1: values as the client wrote them (builds before storage
 * format 3). 2: values as the state machine stores them, with their key metadata (key-meta.ts), and
 * the state machine's own records among the pairs. This build reads both: a format-1 stream's values
 * are given LEGACY_META as they are read (StreamChecker), exactly what a format-3 store's upgrade
 * gives the keys it finds, so a node that installs an old snapshot ends in the same state.
 */
export const SNAPSHOT_FORMAT = 2;
const READABLE_FORMATS: readonly number[] = [1, 2];
/** A backup file starts with this (then length-prefixed frames). */
export const BACKUP_MAGIC = new TextEncoder().encode('RAFTKVS\n');
/**
 * Bytes of pairs per chunk: big enough to amortize a request and its synced write, small enough that
 * neither loop stalls long on one. Each side's loop pays per pair (the sender encodes, the receiver
 * decodes and builds the LevelDB batch). With 100-byte values on the benchmark machine, a 1 MiB chunk
 * held the leader 80-120 ms to encode and the receiver 147-161 ms; a 256 KiB one holds the receiver
 * 56-75 ms, most of it GC (profiles under load, BENCHMARKS.md step 18). Readers take any chunk up
 * to MAX_FRAME_BYTES, so older streams and backup files still load.
 */
export const CHUNK_BYTES = 256 << 10;
/** The largest frame a decoder accepts: a chunk may overshoot CHUNK_BYTES by one pair (a 1 MiB value at most, limits allowing 16 MiB). */
export const MAX_FRAME_BYTES = 24 << 20;

export class SnapshotFormatError extends Error {
  override readonly name = 'SnapshotFormatError';
}

export interface SnapshotHeader {
  readonly format: number;
  readonly clusterId: string;
  readonly index: number;
  readonly term: number;
  /** The members (with their addresses and roles) and the removed ids at the snapshot's index. */
  readonly membership: Membership;
}

export interface SnapshotTrailer {
  readonly pairs: number;
  readonly sha256: string;
}

export type Pair = readonly [Uint8Array, Uint8Array];

const packr = new Packr({ useRecords: false, mapsAsObjects: true });
// Binary values decode as views into the frame; chunkPairs copies a chunk's pairs out in one piece.
const unpackr = new Packr({ useRecords: false, mapsAsObjects: true });

export function encodeHeader(header: SnapshotHeader): Uint8Array {
  return packr.pack({
    kind: 'header',
    ...header,
    membership: { members: header.membership.members.map((m) => ({ ...m })), removed: [...header.membership.removed] },
  });
}

export function encodeChunk(pairs: readonly Pair[]): Uint8Array {
  const flat: Uint8Array[] = [];
  for (const [key, value] of pairs) flat.push(key, value);
  return packr.pack(flat);
}

export function encodeTrailer(trailer: SnapshotTrailer): Uint8Array {
  return packr.pack({ kind: 'trailer', ...trailer });
}

export type Frame =
  | { readonly kind: 'header'; readonly header: SnapshotHeader }
  | { readonly kind: 'chunk'; readonly pairs: Pair[] }
  | { readonly kind: 'trailer'; readonly trailer: SnapshotTrailer };

/** Decodes one frame body; throws SnapshotFormatError when it is not a well-formed frame. */
export function decodeFrame(body: Uint8Array): Frame {
  if (body.byteLength > MAX_FRAME_BYTES)
    throw new SnapshotFormatError(`a frame of ${body.byteLength} bytes is over the limit of ${MAX_FRAME_BYTES}`);
  let value: unknown;
  try {
    value = unpackr.unpack(body);
  } catch (error) {
    throw new SnapshotFormatError(
      `a frame is not valid msgpack (${error instanceof Error ? error.message.slice(0, 80) : 'unknown'})`,
    );
  }
  if (Array.isArray(value)) return { kind: 'chunk', pairs: chunkPairs(value) };
  if (typeof value !== 'object' || value === null)
    throw new SnapshotFormatError('a frame is neither a chunk nor a header or trailer');
  const fields = value as Record<string, unknown>;
  if (fields['kind'] === 'header') return { kind: 'header', header: headerOf(fields) };
  if (fields['kind'] === 'trailer') return { kind: 'trailer', trailer: trailerOf(fields) };
  throw new SnapshotFormatError('a frame is neither a chunk nor a header or trailer');
}

/**
 * The pairs of a chunk, copied out of the frame into one new buffer (copy-out.ts), each key and
 * value a view of it: the pairs then hold exactly their own bytes and nothing of the frame. One
 * copy per chunk, not one allocation per key and per value (msgpackr's copyBuffers): a chunk of
 * 1 MiB in 100-byte values is ~9,700 pairs, which took the loop 24-79 ms to decode that way on the
 * benchmark machine (BENCHMARKS.md profiling step 17), and a node receiving a snapshot must keep
 * answering heartbeats.
 */
function chunkPairs(flat: unknown[]): Pair[] {
  if (flat.length % 2 !== 0) throw new SnapshotFormatError('a chunk holds an odd number of keys and values');
  for (let i = 0; i < flat.length; i += 2) {
    const key = flat[i];
    const value = flat[i + 1];
    if (!(key instanceof Uint8Array) || !(value instanceof Uint8Array) || key.byteLength === 0) {
      throw new SnapshotFormatError(`pair ${i / 2} of a chunk is not a non-empty binary key and a binary value`);
    }
  }
  const copies = copyOut(flat as Uint8Array[]);
  const pairs: Pair[] = [];
  for (let i = 0; i < copies.length; i += 2) pairs.push([copies[i]!, copies[i + 1]!]);
  return pairs;
}

function headerOf(f: Record<string, unknown>): SnapshotHeader {
  const format = f['format'];
  if (typeof format !== 'number' || !READABLE_FORMATS.includes(format)) {
    throw new SnapshotFormatError(
      `snapshot format ${String(format)}: this build reads formats ${READABLE_FORMATS.join(' and ')}` +
        (typeof format === 'number' && format > SNAPSHOT_FORMAT ? ' (the snapshot is from a newer raftkv)' : ''),
    );
  }
  let membership: Membership;
  try {
    membership = parseMembership(f['membership'], "the header's membership");
  } catch (error) {
    throw new SnapshotFormatError((error as Error).message);
  }
  if (!membership.members.some((m) => m.role === 'voter')) throw new SnapshotFormatError('the header names no voter');
  const clusterId = f['clusterId'];
  if (typeof clusterId !== 'string' || clusterId.length === 0)
    throw new SnapshotFormatError('the header has no cluster id');
  return { format, clusterId, index: count(f, 'index'), term: count(f, 'term'), membership };
}

function trailerOf(f: Record<string, unknown>): SnapshotTrailer {
  const sha256 = f['sha256'];
  if (typeof sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(sha256))
    throw new SnapshotFormatError('the trailer has no valid sha256');
  return { pairs: count(f, 'pairs'), sha256 };
}

function count(f: Record<string, unknown>, name: string): number {
  const v = f[name];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
    throw new SnapshotFormatError(`"${name}" must be a non-negative integer`);
  return v;
}

/**
 * Checks a stream frame by frame, in order: one header first, chunks, one trailer last whose count
 * and digest match what came before. `accept` returns what the frame was, or throws.
 */
export class StreamChecker {
  private readonly hash: Hash = createHash('sha256');
  private header: SnapshotHeader | null = null;
  private pairs = 0;
  private done = false;

  get snapshotHeader(): SnapshotHeader | null {
    return this.header;
  }

  accept(body: Uint8Array): Frame {
    if (this.done) throw new SnapshotFormatError('a frame after the trailer');
    const frame = decodeFrame(body);
    if (frame.kind === 'header') {
      if (this.header !== null) throw new SnapshotFormatError('a second header');
      this.header = frame.header;
      this.hash.update(body);
    } else if (this.header === null) {
      throw new SnapshotFormatError(`a ${frame.kind} before the header`);
    } else if (frame.kind === 'chunk') {
      this.pairs += frame.pairs.length;
      this.hash.update(body);
      if (this.header.format === 1) {
        return { kind: 'chunk', pairs: frame.pairs.map(([key, value]) => [key, encodeStored(LEGACY_META, value)]) };
      }
    } else {
      const digest = this.hash.digest('hex');
      if (frame.trailer.pairs !== this.pairs) {
        throw new SnapshotFormatError(
          `the trailer counts ${frame.trailer.pairs} pairs, ${this.pairs} arrived: the snapshot is incomplete`,
        );
      }
      if (frame.trailer.sha256 !== digest)
        throw new SnapshotFormatError('the checksum does not match: the snapshot is corrupt');
      this.done = true;
    }
    return frame;
  }
}

/** Builds a stream's frames: the header, chunks of pairs, and the trailer with their digest. */
export class StreamWriter {
  private readonly hash: Hash = createHash('sha256');
  private pairs = 0;

  header(header: SnapshotHeader): Uint8Array {
    const body = encodeHeader(header);
    this.hash.update(body);
    return body;
  }

  chunk(pairs: readonly Pair[]): Uint8Array {
    const body = encodeChunk(pairs);
    this.pairs += pairs.length;
    this.hash.update(body);
    return body;
  }

  trailer(): Uint8Array {
    return encodeTrailer({ pairs: this.pairs, sha256: this.hash.digest('hex') });
  }
}

/** The snapshot point and membership a header describes. */
export function metaOf(header: SnapshotHeader): SnapshotMeta {
  const conf = confStateOf(header.membership);
  return { index: header.index, term: header.term, voters: conf.voters, learners: conf.learners };
}
