// The receiving side of message streams: GET /raft/stream upgraded to STREAM_PROTOCOL on the peer
// port (protocol.ts), then request and answer frames (frames.ts) instead of a POST per batch.
//
// Why: a peer request through HTTP costs the receiver's main thread the parser, an IncomingMessage,
// the headers and Fastify's routing and reply for every batch; a frame costs a length check and the
// decode. Measured with a bare server on the development VM (BENCHMARKS.md, step 16): 240-320 us of
// CPU per request over node:http against 85-100 us over framed TCP when each request finds the
// thread asleep, as a write at one connection does.
//
// The checks are the POST route's (peer-server.ts), in the same order and with the same answers:
// token and cluster id at the upgrade (refused with the HTTP answer a POST would get, and the
// socket closed), the sender's membership and the fault switch at the upgrade and again for every
// frame, then the body as a POST body. Frames are handled one at a time, in order; a sender that
// sends too many ahead of their answers, or does not read its answers, is cut off.

import type { IncomingHttpHeaders, IncomingMessage, Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { NodeId } from '../raft/types.js';
import { answerFrame, FrameReader, FrameTooLargeError } from './frames.js';
import {
  type BatchAnswer,
  FROM_HEADER,
  type Refusal,
  REPLIES_HEADER,
  replyModeOf,
  STREAM_PATH,
  STREAM_PROTOCOL,
  type ReplyMode,
} from './protocol.js';

/** What the peer server lends the streams: its checks and its batch handling. */
export interface StreamHost {
  authRefusal(headers: IncomingHttpHeaders): Refusal | undefined;
  /** At the upgrade only a removed node (or no sender) is refused; per message, every check. */
  senderRefusal(from: unknown, at: 'upgrade' | 'message'): Refusal | undefined;
  acceptBatch(from: NodeId, body: Buffer, mode: ReplyMode): BatchAnswer | Promise<BatchAnswer>;
  logRefusal(source: string | undefined, from: unknown, method: string, url: string, refusal: Refusal): void;
}

/** A stream with no frame for this long is closed (the sender's idle close comes first, peer-client.ts). */
const STREAM_IDLE_MS = 60_000;
/**
 * Frames received ahead of their answers. A raftkv sender has one in flight (peer-client.ts); a
 * sender past this is not one: it is cut off, so it cannot make us hold more than this many frames.
 */
const MAX_QUEUED_FRAMES = 16;
/** A refused upgrade's answer gets this long to be read before its socket is destroyed. */
const REFUSED_LINGER_MS = 1_000;
/** Answers a sender has not read beyond this: it is not a raftkv peer reading them; cut it off. */
const MAX_UNREAD_ANSWER_BYTES = 4 * 1024 * 1024;

export class MessageStreams {
  private readonly open = new Set<Socket>();
  private readonly log: Logger;

  constructor(
    private readonly host: StreamHost,
    private readonly maxFrameBytes: number,
    logger: Logger,
  ) {
    this.log = logger;
  }

  /** Takes the upgrades of `server` (the peer port's HTTP server). */
  attach(server: Server): void {
    server.on('upgrade', (request: IncomingMessage, socket: Socket, head: Buffer) =>
      this.onUpgrade(request, socket, head),
    );
  }

  /** Streams open now. */
  get size(): number {
    return this.open.size;
  }

  /** Destroys every stream (the server is closing: the HTTP server no longer tracks these sockets). */
  closeAll(): void {
    for (const socket of this.open) socket.destroy();
    this.open.clear();
  }

  private onUpgrade(request: IncomingMessage, socket: Socket, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    // Tracked from here on, refused or not: the HTTP server no longer closes this socket for us.
    this.open.add(socket);
    socket.once('close', () => this.open.delete(socket));
    const method = request.method ?? '';
    const url = request.url ?? '';
    const from = request.headers[FROM_HEADER];
    const refuse = (refusal: Refusal): void => {
      this.host.logRefusal(socket.remoteAddress, from, method, url, refusal);
      refuseUpgrade(socket, refusal);
    };
    if (method !== 'GET' || url !== STREAM_PATH || request.headers.upgrade?.toLowerCase() !== STREAM_PROTOCOL) {
      refuse({ status: 404, code: 'not-found', message: 'no such route on the peer port', close: true });
      return;
    }
    // The sender's membership and the fault switch are asked per frame, not here, but for a node
    // removed from the cluster (whose refusal tells it to stop): a lane refused at the upgrade would
    // post for 30 s (peer-client.ts STREAM_RETRY_MS) after a fault is lifted, or after a joining
    // node is added to the membership this node applied.
    const refusal = this.host.authRefusal(request.headers) ?? this.host.senderRefusal(from, 'upgrade');
    if (refusal !== undefined) {
      refuse(refusal);
      return;
    }
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${STREAM_PROTOCOL}\r\nConnection: Upgrade\r\n\r\n`);
    const stream = new ServerStream(
      this.host,
      socket,
      String(from),
      replyModeOf(request.headers[REPLIES_HEADER]),
      this.maxFrameBytes,
      this.log,
    );
    stream.start(head);
  }
}

/**
 * The HTTP answer of a refused upgrade, as the POST route would give it; the socket is destroyed
 * once it is written (or after REFUSED_LINGER_MS, if the caller does not read it), so a caller that
 * keeps its side open holds nothing.
 */
function refuseUpgrade(socket: Socket, refusal: Refusal): void {
  const body = jsonBody(refusal);
  socket.removeAllListeners('data');
  const timer = setTimeout(() => socket.destroy(), REFUSED_LINGER_MS);
  socket.once('close', () => clearTimeout(timer));
  socket.end(
    `HTTP/1.1 ${refusal.status} ${refusal.status === 404 ? 'Not Found' : 'Refused'}\r\n` +
      `Content-Type: application/json; charset=utf-8\r\nContent-Length: ${body.byteLength}\r\n` +
      `Connection: close\r\n\r\n${body.toString()}`,
    () => socket.destroy(),
  );
}

/** One upgraded connection: frames in, one at a time, answers out in the same order. */
class ServerStream {
  private readonly reader: FrameReader;
  private readonly frames: Buffer[] = [];
  private queuedBytes = 0;
  private busy = false;

  constructor(
    private readonly host: StreamHost,
    private readonly socket: Socket,
    private readonly from: NodeId,
    private readonly mode: ReplyMode,
    private readonly maxFrameBytes: number,
    private readonly log: Logger,
  ) {
    this.reader = new FrameReader(maxFrameBytes);
  }

  start(head: Buffer): void {
    this.socket.setNoDelay(true);
    this.socket.setTimeout(STREAM_IDLE_MS, () => this.socket.destroy());
    // The sender closed its side (gave up, or is shutting down): nothing more to answer.
    this.socket.on('end', () => this.socket.destroy());
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    if (head.length > 0) this.onData(head);
  }

  private onData(chunk: Buffer): void {
    let frames: Buffer[];
    try {
      frames = this.reader.push(chunk);
    } catch (error) {
      if (!(error instanceof FrameTooLargeError)) throw error;
      // The rest of the stream cannot be framed any more: answer what a POST would get, and close.
      this.refuseAndClose({ status: 413, code: 'body-too-large', message: error.message, close: true });
      return;
    }
    for (const frame of frames) {
      this.frames.push(frame);
      this.queuedBytes += frame.length;
    }
    if (this.frames.length > MAX_QUEUED_FRAMES || this.queuedBytes > this.maxFrameBytes) {
      const message = `${this.frames.length} frames (${this.queuedBytes} bytes) sent ahead of their answers`;
      this.refuseAndClose({ status: 400, code: 'too-many-frames', message, close: true });
      return;
    }
    this.next();
  }

  /**
   * Answers `refusal` and closes the stream. While an earlier frame's answer is held, the refusal
   * would overtake it (answers are matched by order): the connection is dropped instead.
   */
  private refuseAndClose(refusal: Refusal): void {
    if (this.socket.writableEnded || this.socket.destroyed) return; // closing already
    this.host.logRefusal(this.socket.remoteAddress, this.from, 'STREAM', STREAM_PATH, refusal);
    this.stopReading();
    if (this.busy) this.socket.destroy();
    else this.socket.end(answerFrame(refusal.status, jsonBody(refusal)), () => this.socket.destroy());
  }

  /** The stream is closing: nothing more is read or handled. */
  private stopReading(): void {
    this.socket.removeAllListeners('data');
    this.frames.length = 0;
    this.queuedBytes = 0;
  }

  /**
   * Handles the queued frames in order, one at a time: a frame whose answer waits (for an fsync)
   * holds the ones behind it. The socket keeps reading meanwhile, so a sender that gives up (its
   * deadline) is seen to close at once; what it may send ahead is bounded (MAX_QUEUED_FRAMES, and
   * one body limit of bytes).
   */
  private next(): void {
    while (!this.busy && this.frames.length > 0 && !this.socket.destroyed && !this.socket.writableEnded) {
      const frame = this.frames.shift()!;
      this.queuedBytes -= frame.length;
      const answer = this.handle(frame);
      if (answer instanceof Promise) {
        this.busy = true;
        answer
          .catch((error: unknown) => this.internalError(error))
          .then((settled) => {
            this.busy = false;
            this.write(settled);
            this.next();
          })
          .catch((error: unknown) => this.log.error({ err: error, from: this.from }, 'a message stream failed'));
      } else this.write(answer);
    }
  }

  /** The frame's answer; a throw (a bug: the POST route would answer 500) is answered 500 too. */
  private handle(frame: Buffer): BatchAnswer | Promise<BatchAnswer> {
    try {
      return this.host.senderRefusal(this.from, 'message') ?? this.host.acceptBatch(this.from, frame, this.mode);
    } catch (error) {
      return this.internalError(error);
    }
  }

  private internalError(error: unknown): Refusal {
    this.log.error({ err: error, from: this.from }, 'a stream frame failed; answering 500');
    return { status: 500, code: 'internal', message: 'the node failed to accept the messages', quiet: true };
  }

  private write(answer: BatchAnswer): void {
    if (this.socket.destroyed || this.socket.writableEnded) return;
    if ('code' in answer) {
      this.host.logRefusal(this.socket.remoteAddress, this.from, 'STREAM', STREAM_PATH, answer);
      this.socket.write(answerFrame(answer.status, jsonBody(answer)));
      // As the POST route: a caller refused as no (longer a) member gets no kept connection.
      if (answer.close === true) {
        this.stopReading();
        this.socket.end(() => this.socket.destroy());
      }
    } else this.socket.write(answerFrame(answer.status, answer.status === 200 ? answer.body : undefined));
    if (this.socket.writableLength > MAX_UNREAD_ANSWER_BYTES) {
      this.log.warn(
        { from: this.from, unread: this.socket.writableLength },
        'closed a message stream whose sender reads no answers',
      );
      this.socket.destroy();
    }
  }
}

function jsonBody(refusal: Refusal): Buffer {
  return Buffer.from(JSON.stringify({ error: refusal.code, message: refusal.message }));
}
