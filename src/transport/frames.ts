// The frames of a message stream (GET /raft/stream upgraded to STREAM_PROTOCOL, protocol.ts):
// the same batches and answers as POST /raft/messages, without an HTTP request around each.
//
//   request (sender -> receiver):  u32 length | body (what a POST /raft/messages body holds)
//   answer  (receiver -> sender):  u32 length | u16 status | payload
//
// Lengths are big-endian and count what follows them. An answer's status means what the POST's
// HTTP status means: 200 with msgpack messages (the acknowledgements), 204 with nothing, anything
// else with a JSON ErrorBody. One request is answered before the sender sends the next: the
// answers need no ids.
//
// Invariant: a FrameReader never holds more than one frame of at most `maxFrameBytes` plus the
// chunk that completed it; a length prefix over the limit is refused before its bytes are read.

import { MSGPACK_CONTENT_TYPE } from './protocol.js';

/** Bytes of a frame's length prefix (the backup file's frames have the same one, backup-file.ts). */
export const FRAME_PREFIX_BYTES = 4;
/** Bytes of an answer's status, after its length. */
const STATUS_BYTES = 2;

/**
 * The u32 big-endian length that precedes a frame body of `length` bytes (a request frame's header).
 * From Buffer's pool, not `new Uint8Array` + DataView: asking a small array for its `.buffer` moves
 * it off V8's heap, an allocation per request frame (about 1 us against 0.05).
 */
export function framePrefix(length: number): Buffer {
  const prefix = Buffer.allocUnsafe(FRAME_PREFIX_BYTES);
  prefix.writeUInt32BE(length, 0);
  return prefix;
}

/** An answer frame: `status` and its payload (empty for 204). */
export function answerFrame(status: number, payload: Uint8Array | undefined): Buffer {
  const payloadBytes = payload?.byteLength ?? 0;
  const frame = Buffer.allocUnsafe(FRAME_PREFIX_BYTES + STATUS_BYTES + payloadBytes);
  frame.writeUInt32BE(STATUS_BYTES + payloadBytes, 0);
  frame.writeUInt16BE(status, FRAME_PREFIX_BYTES);
  if (payload !== undefined) frame.set(payload, FRAME_PREFIX_BYTES + STATUS_BYTES);
  return frame;
}

export interface Answer {
  readonly status: number;
  readonly payload: Buffer;
}

/** Splits an answer frame's content (what follows its length) into status and payload. */
export function parseAnswer(frame: Buffer): Answer | undefined {
  if (frame.length < STATUS_BYTES) return undefined;
  return { status: frame.readUInt16BE(0), payload: frame.subarray(STATUS_BYTES) };
}

/** The content type of an answer frame's payload, as the POST's answer would carry it. */
export function answerContentType(status: number): string | undefined {
  if (status === 200) return MSGPACK_CONTENT_TYPE;
  return status === 204 ? undefined : 'application/json';
}

export class FrameTooLargeError extends Error {
  constructor(
    readonly bytes: number,
    readonly limit: number,
  ) {
    super(`a frame of ${bytes} bytes exceeds the limit of ${limit}`);
  }
}

/**
 * Reassembles length-prefixed frames from a socket's chunks. `push` returns the frames the chunk
 * completed (their content, without the length), in order; it throws FrameTooLargeError on a
 * length over the limit (the stream is unusable after that: close it).
 */
export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;

  constructor(private readonly maxFrameBytes: number) {}

  /** Bytes held for a frame not yet complete. */
  get pending(): number {
    return this.buffered;
  }

  push(chunk: Buffer): Buffer[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const frames: Buffer[] = [];
    for (;;) {
      if (this.buffered < FRAME_PREFIX_BYTES) break;
      const head = this.contiguous(FRAME_PREFIX_BYTES);
      const length = head.readUInt32BE(0);
      if (length > this.maxFrameBytes) throw new FrameTooLargeError(length, this.maxFrameBytes);
      if (this.buffered < FRAME_PREFIX_BYTES + length) break;
      const whole = this.contiguous(FRAME_PREFIX_BYTES + length);
      frames.push(whole.subarray(FRAME_PREFIX_BYTES, FRAME_PREFIX_BYTES + length));
      this.consume(FRAME_PREFIX_BYTES + length);
    }
    return frames;
  }

  /** The first `bytes` held bytes as one buffer (joining chunks only when a frame spans several). */
  private contiguous(bytes: number): Buffer {
    const first = this.chunks[0]!;
    if (first.length >= bytes) return first;
    const joined = Buffer.concat(this.chunks);
    this.chunks = [joined];
    return joined;
  }

  private consume(bytes: number): void {
    const first = this.contiguous(bytes);
    const rest = first.subarray(bytes);
    this.chunks.shift();
    if (rest.length > 0) this.chunks.unshift(rest);
    this.buffered -= bytes;
  }
}
