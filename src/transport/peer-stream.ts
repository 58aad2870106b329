// The sending side of a message stream (stream-server.ts): one upgraded connection per lane, one
// request frame in flight, its answer settled as the POST's would be (peer-post.ts PostResult), so
// the peer client handles both the same way.
//
// Invariants:
// - `exchange` settles exactly once and never rejects: with the answer, on the deadline, on a
//   connection error or close, or as `refused` when the peer answered the upgrade with anything but
//   101 (an older node, or a refusal: the caller posts instead and gets the real answer).
// - An answer is only ever taken for the request that is in flight on that connection. Each
//   request is its own Exchange; whatever an earlier one left running (an upgrade past its deadline,
//   a connection being torn down) checks that it is still the current one before it settles, sends
//   or attaches anything, and a connection that outlived its request's deadline is destroyed (a
//   late answer on it must never be read as the next request's).
// - At most one request is in flight (the caller's rule, checked here); an answer with none in
//   flight, or over its limit, is a broken peer: the request fails (not as a stale socket: it is
//   not retried) and the connection is destroyed.
// - An idle connection is closed by us after CLIENT_IDLE_MS, before the server's idle close.

import type { Socket } from 'node:net';
import type { Pool } from 'undici';
import { answerContentType, FrameReader, FrameTooLargeError, parseAnswer, framePrefix } from './frames.js';
import { ERROR_START_BYTES, type PostResult } from './peer-post.js';
import { MAX_REPLY_BYTES, STREAM_PATH, STREAM_PROTOCOL } from './protocol.js';

export type StreamResult = PostResult | { readonly kind: 'refused'; readonly error: Error };

/** Idle streams are closed by us before the server's 60 s idle close (stream-server.ts). */
const CLIENT_IDLE_MS = 30_000;
/** An answer frame: status and the acknowledgements (MAX_REPLY_BYTES), or an error's JSON. */
const MAX_ANSWER_FRAME_BYTES = 2 + MAX_REPLY_BYTES;

/** A connection lost while a request waited: the code a stale socket gives a POST (retried once). */
class StreamClosedError extends Error {
  readonly code = 'UND_ERR_SOCKET';
}

class StreamTimeoutError extends Error {
  readonly code = 'UND_ERR_STREAM_TIMEOUT';
}

/** The peer broke the framing: not a stale socket, so not retried. */
class StreamProtocolError extends Error {
  readonly code = 'RAFTKV_STREAM_PROTOCOL';
}

/** One request: its body, its deadline and how it settles. */
interface Exchange {
  readonly body: Uint8Array;
  /** Only while it opens a connection: an AbortController per request cost measurable CPU (step 12). */
  abort: AbortController | null;
  readonly timer: NodeJS.Timeout;
  readonly resolve: (result: StreamResult) => void;
}

export class PeerStream {
  private socket: Socket | null = null;
  private current: Exchange | null = null;
  private closed = false;

  constructor(
    private readonly pool: Pool,
    private readonly headers: Record<string, string>,
  ) {}

  /** Sends `body` as one request frame and waits for its answer, at most `timeoutMs` in all. */
  exchange(body: Uint8Array, timeoutMs: number): Promise<StreamResult> {
    if (this.current !== null) throw new Error('a stream exchange is already in flight');
    if (this.closed) return Promise.resolve({ kind: 'failed', error: new StreamClosedError('the stream was closed') });
    return new Promise<StreamResult>((resolve) => {
      const timer = setTimeout(() => {
        if (this.current !== exchange) return;
        this.settle(exchange, { kind: 'failed', error: new StreamTimeoutError(`no answer within ${timeoutMs} ms`) });
        // A late answer on this connection would be read as the next request's.
        this.destroySocket();
      }, timeoutMs);
      const exchange: Exchange = { body, abort: null, timer, resolve };
      this.current = exchange;
      if (this.socket !== null) this.send(this.socket, body);
      else void this.open(exchange);
    });
  }

  /** Destroys the connection; an exchange in flight fails. */
  close(): void {
    this.closed = true;
    this.destroySocket();
    if (this.current !== null) {
      this.settle(this.current, { kind: 'failed', error: new StreamClosedError('the stream was closed') });
    }
  }

  // ---------------------------------------------------------------------------------------------

  /** Upgrades a connection for `exchange` and sends its body, if it is still the one in flight. */
  private async open(exchange: Exchange): Promise<void> {
    let socket: Socket;
    const abort = (exchange.abort = new AbortController());
    try {
      const upgraded = await this.pool.upgrade({
        path: STREAM_PATH,
        protocol: STREAM_PROTOCOL,
        headers: this.headers,
        signal: abort.signal,
      });
      socket = upgraded.socket as Socket;
    } catch (error) {
      if (this.current !== exchange) return; // settled already (its deadline, or close())
      const err = error instanceof Error ? error : new Error(String(error));
      // undici says 'bad upgrade' when the peer answered with a status other than 101.
      this.settle(
        exchange,
        err.message === 'bad upgrade' ? { kind: 'refused', error: err } : { kind: 'failed', error: err },
      );
      return;
    }
    if (this.current !== exchange || this.closed) {
      socket.destroy(); // its request is gone: never send an old body on it
      return;
    }
    this.attach(socket);
    this.send(socket, exchange.body);
  }

  private attach(socket: Socket): void {
    this.socket = socket;
    const reader = new FrameReader(MAX_ANSWER_FRAME_BYTES);
    socket.setNoDelay(true);
    socket.setTimeout(CLIENT_IDLE_MS, () => {
      if (this.socket === socket && this.current === null) this.destroySocket();
    });
    socket.on('data', (chunk: Buffer) => {
      if (this.socket !== socket) return;
      let frames: Buffer[];
      try {
        frames = reader.push(chunk);
      } catch (error) {
        if (!(error instanceof FrameTooLargeError)) throw error;
        this.broken(`an answer frame of ${error.bytes} bytes`);
        return;
      }
      for (const frame of frames) {
        const answer = parseAnswer(frame);
        const exchange = this.current;
        if (answer === undefined || exchange === null) {
          this.broken(answer === undefined ? 'a truncated answer frame' : 'an answer to no request');
          return;
        }
        const { status, payload } = answer;
        // What a POST keeps (peer-client.ts keep): the messages of a 200, an error's start, nothing else.
        const body =
          status === 200 ? payload : status >= 300 ? payload.subarray(0, ERROR_START_BYTES) : Buffer.alloc(0);
        const contentType = answerContentType(status);
        this.settle(exchange, { kind: 'answered', statusCode: status, contentType, body, incomplete: undefined });
      }
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      // A connection we dropped already (a deadline) says nothing about the request now in flight.
      if (this.socket !== socket) return;
      this.socket = null;
      if (this.current !== null) {
        this.settle(this.current, { kind: 'failed', error: new StreamClosedError('the peer closed the stream') });
      }
    });
  }

  private send(socket: Socket, body: Uint8Array): void {
    socket.cork();
    socket.write(framePrefix(body.byteLength));
    socket.write(body);
    socket.uncork();
  }

  /** The peer broke the framing: the request in flight fails and the connection goes. */
  private broken(what: string): void {
    const exchange = this.current;
    this.destroySocket();
    if (exchange !== null)
      this.settle(exchange, { kind: 'failed', error: new StreamProtocolError(`the peer sent ${what}`) });
  }

  private settle(exchange: Exchange, result: StreamResult): void {
    if (this.current !== exchange) return;
    this.current = null;
    clearTimeout(exchange.timer);
    // An upgrade still running for it is abandoned (open() sees it is no longer current).
    exchange.abort?.abort();
    exchange.resolve(result);
  }

  private destroySocket(): void {
    const socket = this.socket;
    this.socket = null;
    socket?.destroy();
  }
}
