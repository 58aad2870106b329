// The sending side of a message stream (stream-server.ts): one upgraded connection per lane, one
// request frame in flight, its answer settled as the POST's would be (peer-post.ts PostResult), so
// the peer client handles both the same way.
//
// Invariants:
// - `exchange` settles exactly once and never rejects: with the answer, on the deadline (the
//   connection is then destroyed: a late answer must not be taken for the next request's), on a
//   connection error or close, or as `refused` when the peer answered the upgrade with anything but
//   101 (an older node, or a refusal: the caller posts instead and gets the real answer).
// - At most one request is in flight (the caller's rule, checked here); an answer that arrives
//   with none in flight, or over its limit, is a broken peer: the connection is destroyed.
// - An idle connection is closed by us after CLIENT_IDLE_MS, before the server's idle close.

import type { Socket } from 'node:net';
import type { Pool } from 'undici';
import { answerContentType, FrameReader, FrameTooLargeError, parseAnswer, requestFrameHeader } from './frames.js';
import { ERROR_START_BYTES, type PostResult } from './peer-post.js';
import { MAX_REPLY_BYTES, STREAM_PATH, STREAM_PROTOCOL } from './protocol.js';

export type StreamResult = PostResult | { readonly kind: 'refused'; readonly error: Error };

/** Idle streams are closed by us before the server's 60 s idle close (stream-server.ts). */
const CLIENT_IDLE_MS = 30_000;
/** An answer frame: status and the acknowledgements (MAX_REPLY_BYTES), or an error's JSON. */
const MAX_ANSWER_FRAME_BYTES = 2 + MAX_REPLY_BYTES;

/** The error of a connection lost while a request waited: the code a stale socket gives a POST. */
class StreamClosedError extends Error {
  readonly code = 'UND_ERR_SOCKET';
}

class StreamTimeoutError extends Error {
  readonly code = 'UND_ERR_STREAM_TIMEOUT';
}

export class PeerStream {
  private socket: Socket | null = null;
  private pending: ((result: StreamResult) => void) | null = null;
  private closed = false;

  constructor(
    private readonly pool: Pool,
    private readonly headers: Record<string, string>,
  ) {}

  /** Whether a stream is open now (the next exchange needs no upgrade). */
  get connected(): boolean {
    return this.socket !== null;
  }

  /** Sends `body` as one request frame and waits for its answer, at most `timeoutMs` in all. */
  exchange(body: Uint8Array, timeoutMs: number): Promise<StreamResult> {
    if (this.pending !== null) throw new Error('a stream exchange is already in flight');
    if (this.closed) return Promise.resolve({ kind: 'failed', error: new StreamClosedError('the stream was closed') });
    return new Promise<StreamResult>((resolve) => {
      const abort = new AbortController();
      const timer = setTimeout(() => {
        const error = new StreamTimeoutError(`no answer within ${timeoutMs} ms`);
        abort.abort(error);
        this.settle({ kind: 'failed', error });
        this.destroySocket();
      }, timeoutMs);
      this.pending = (result) => {
        clearTimeout(timer);
        resolve(result);
      };
      if (this.socket !== null) this.send(this.socket, body);
      else
        void this.open(abort.signal).then((socket) => {
          if (socket !== null) this.send(socket, body);
        });
    });
  }

  /** Destroys the connection; an exchange in flight fails. */
  close(): void {
    this.closed = true;
    this.destroySocket();
    this.settle({ kind: 'failed', error: new StreamClosedError('the stream was closed') });
  }

  // ---------------------------------------------------------------------------------------------

  /** Upgrades a connection; null (the exchange settled) if that failed. */
  private async open(signal: AbortSignal): Promise<Socket | null> {
    let socket: Socket;
    try {
      const upgraded = await this.pool.upgrade({
        path: STREAM_PATH,
        protocol: STREAM_PROTOCOL,
        headers: this.headers,
        signal,
      });
      socket = upgraded.socket as Socket;
    } catch (error) {
      const err = error instanceof Error ? error : new Error(String(error));
      // undici says 'bad upgrade' when the peer answered with a status other than 101.
      this.settle(err.message === 'bad upgrade' ? { kind: 'refused', error: err } : { kind: 'failed', error: err });
      return null;
    }
    if (this.pending === null || this.closed) {
      // The deadline passed (or close() came) while upgrading.
      socket.destroy();
      return null;
    }
    this.attach(socket);
    return socket;
  }

  private attach(socket: Socket): void {
    this.socket = socket;
    const reader = new FrameReader(MAX_ANSWER_FRAME_BYTES);
    socket.setNoDelay(true);
    socket.setTimeout(CLIENT_IDLE_MS, () => {
      if (this.pending === null) this.destroySocket();
    });
    socket.on('data', (chunk: Buffer) => {
      let frames: Buffer[];
      try {
        frames = reader.push(chunk);
      } catch (error) {
        if (!(error instanceof FrameTooLargeError)) throw error;
        this.fail(socket, `an answer frame of ${error.bytes} bytes`);
        return;
      }
      for (const frame of frames) {
        const answer = parseAnswer(frame);
        if (answer === undefined || this.pending === null) {
          this.fail(socket, answer === undefined ? 'a truncated answer frame' : 'an answer to no request');
          return;
        }
        const { status, payload } = answer;
        // What a POST keeps (peer-client.ts keep): the messages of a 200, an error's start, nothing else.
        const body =
          status === 200 ? payload : status >= 300 ? payload.subarray(0, ERROR_START_BYTES) : Buffer.alloc(0);
        this.settle({
          kind: 'answered',
          statusCode: status,
          contentType: answerContentType(status),
          body,
          incomplete: undefined,
        });
      }
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      // A connection we dropped already (a deadline) says nothing about the request now in flight.
      if (this.socket !== socket) return;
      this.socket = null;
      this.settle({ kind: 'failed', error: new StreamClosedError('the peer closed the stream') });
    });
  }

  private send(socket: Socket, body: Uint8Array): void {
    socket.cork();
    socket.write(requestFrameHeader(body.byteLength));
    socket.write(body);
    socket.uncork();
  }

  /** A broken peer: the exchange in flight fails and the connection goes. */
  private fail(socket: Socket, what: string): void {
    this.settle({ kind: 'failed', error: new StreamClosedError(`the peer sent ${what}`) });
    socket.destroy();
  }

  private settle(result: StreamResult): void {
    const pending = this.pending;
    this.pending = null;
    pending?.(result);
  }

  private destroySocket(): void {
    const socket = this.socket;
    this.socket = null;
    socket?.destroy();
  }
}
