// A backup file (GET /backup writes one, `npm run restore` reads one): BACKUP_MAGIC, then the
// frames of a snapshot stream (format.ts), each as a u32 big-endian length and the frame body. The
// stream is exactly what a follower receives, so the trailer's pair count and SHA-256 cover
// everything in the file: a file cut short or changed anywhere is refused.
//
// Bounds: a writer holds one chunk (about CHUNK_BYTES) at a time and a reader one frame (at most
// MAX_FRAME_BYTES, checked before it is allocated), whatever the size of the file.

import fs from 'node:fs/promises';
import type { SnapshotSource } from '../storage/node-storage.js';
// The frames' length prefix is the peer transport's (a message stream frames its batches alike).
import { FRAME_PREFIX_BYTES, framePrefix } from '../transport/frames.js';
import {
  BACKUP_MAGIC,
  CHUNK_BYTES,
  MAX_FRAME_BYTES,
  SNAPSHOT_FORMAT,
  SnapshotFormatError,
  StreamChecker,
  StreamWriter,
  type Pair,
  type SnapshotHeader,
} from './format.js';

/**
 * The pieces of a backup file of `source`, in order: the magic, then each frame's prefix and body.
 * The next chunk is read from `source` only when the consumer asks for the next piece, so a
 * consumer that waits for its output to drain bounds what is held in memory. The caller owns
 * `source` and closes it.
 */
export async function* backupFilePieces(
  source: SnapshotSource,
  cluster: { readonly clusterId: string },
): AsyncGenerator<Uint8Array, void, undefined> {
  const writer = new StreamWriter();
  yield BACKUP_MAGIC;
  yield* frame(
    writer.header({
      format: SNAPSHOT_FORMAT,
      clusterId: cluster.clusterId,
      index: source.index,
      term: source.term,
      membership: source.membership,
    }),
  );
  for (let pairs = await source.next(CHUNK_BYTES); pairs !== null; pairs = await source.next(CHUNK_BYTES)) {
    if (pairs.length > 0) yield* frame(writer.chunk(pairs));
  }
  yield* frame(writer.trailer());
}

function* frame(body: Uint8Array): Generator<Uint8Array, void, undefined> {
  yield framePrefix(body.byteLength);
  yield body;
}

/** What a complete, intact backup file holds. */
export interface BackupSummary {
  readonly header: SnapshotHeader;
  readonly pairs: number;
  readonly bytes: number;
}

/**
 * Reads the backup file at `path` from start to end through a StreamChecker, handing each chunk's
 * pairs to `onChunk` as it goes (the trailer, read last, is what proves them intact: a caller that
 * writes them somewhere must treat them as unconfirmed until this resolves). Throws
 * SnapshotFormatError when the file is not a complete, intact backup: wrong magic, a frame cut
 * short, a bad frame, no trailer, a count or checksum that does not match, bytes after the trailer.
 * Errors of the file system (ENOENT, EACCES...) are thrown as they are.
 */
export async function readBackupFile(
  path: string,
  onChunk?: (pairs: readonly Pair[]) => Promise<void>,
): Promise<BackupSummary> {
  const file = await fs.open(path, 'r');
  try {
    const reader = new ExactReader(file);
    const magic = await reader.read(BACKUP_MAGIC.byteLength);
    if (magic === null || magic.byteLength < BACKUP_MAGIC.byteLength || !sameBytes(magic, BACKUP_MAGIC)) {
      throw new SnapshotFormatError(
        'the file does not start with the raftkv backup magic: it is not a raftkv backup (GET /backup writes one)',
      );
    }
    const checker = new StreamChecker();
    let pairs = 0;
    for (let frameNumber = 0; ; frameNumber++) {
      const prefix = await reader.read(FRAME_PREFIX_BYTES);
      if (prefix === null)
        throw new SnapshotFormatError(`the file ends after ${frameNumber} frames, before the trailer: it is truncated`);
      if (prefix.byteLength < FRAME_PREFIX_BYTES) throw truncated(frameNumber);
      const length = new DataView(prefix.buffer, prefix.byteOffset, prefix.byteLength).getUint32(0);
      if (length > MAX_FRAME_BYTES) {
        throw new SnapshotFormatError(
          `frame ${frameNumber} claims ${length} bytes, over the limit of ${MAX_FRAME_BYTES}: the file is corrupt`,
        );
      }
      const body = await reader.read(length);
      if ((body?.byteLength ?? 0) < length) throw truncated(frameNumber);
      const frame = checker.accept(body ?? new Uint8Array(0));
      if (frame.kind === 'chunk') {
        pairs += frame.pairs.length;
        await onChunk?.(frame.pairs);
      } else if (frame.kind === 'trailer') {
        if ((await reader.read(1)) !== null)
          throw new SnapshotFormatError('the file goes on after its trailer: it is corrupt, or two files were joined');
        return { header: checker.snapshotHeader!, pairs, bytes: reader.position };
      }
    }
  } finally {
    await file.close();
  }
}

function truncated(frameNumber: number): SnapshotFormatError {
  return new SnapshotFormatError(`the file ends inside frame ${frameNumber}: it is truncated`);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && a.every((byte, i) => byte === b[i]);
}

/** Reads exact byte counts from a file, in order. */
class ExactReader {
  position = 0;

  constructor(private readonly file: fs.FileHandle) {}

  /** The next `length` bytes; fewer at the end of the file; null when it ended before this call. */
  async read(length: number): Promise<Uint8Array | null> {
    const out = new Uint8Array(length);
    let filled = 0;
    while (filled < length) {
      const { bytesRead } = await this.file.read(out, filled, length - filled, this.position);
      if (bytesRead === 0) break;
      filled += bytesRead;
      this.position += bytesRead;
    }
    if (filled === 0 && length > 0) return null;
    return filled === length ? out : out.subarray(0, filled);
  }
}
