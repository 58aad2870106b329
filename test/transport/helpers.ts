// Shared helpers for the transport tests: condition waits, captured logs, a stub peer that can
// stall its answers, and free ports.

import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import {
  connect as netConnect,
  createServer as createNetServer,
  type AddressInfo,
  type Server as NetServer,
  type Socket,
} from 'node:net';
import { pino, type Logger } from 'pino';
import { afterEach } from 'vitest';
import { decodeMessages } from '../../src/transport/codec.js';
import type { HeartbeatMessage, Message, NodeId } from '../../src/raft/types.js';

/**
 * What a test file starts, closed after each test whatever happened, the last started first: push a
 * close function for every server, transport or socket as it is made.
 */
export function useClosers(): Array<() => Promise<void>> {
  const closers: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });
  return closers;
}

/** Polls `condition` until it holds; fails with `what` after `timeoutMs`. */
export async function waitFor(condition: () => boolean, timeoutMs = 2_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Lets pending I/O callbacks and microtasks run (not a sleep: one turn of the event loop). */
export function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export interface CapturedLog {
  readonly logger: Logger;
  readonly lines: Array<Record<string, unknown>>;
  /** Lines whose `msg` contains `text`. */
  matching(text: string): Array<Record<string, unknown>>;
}

export function captureLog(): CapturedLog {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino(
    { level: 'debug' },
    {
      write(chunk: string) {
        lines.push(JSON.parse(chunk) as Record<string, unknown>);
      },
    },
  );
  return {
    logger,
    lines,
    matching: (text) => lines.filter((line) => typeof line['msg'] === 'string' && line['msg'].includes(text)),
  };
}

export function heartbeat(from: NodeId, to: NodeId, round: number, term = 1): HeartbeatMessage {
  return { type: 'heartbeat', from, to, term, commit: 0, round };
}

/** A port nothing listens on (bound, then released). */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

/**
 * A minimal peer for client tests: records each request's decoded messages, and answers 204 at once
 * or, while `stall()` is in effect, only after `release()`.
 */
export class StubPeer {
  readonly requests: Message[][] = [];
  /** Each request's x-raftkv-replies header (undefined when absent). */
  readonly repliesHeaders: Array<string | undefined> = [];
  /** When set, each request is answered with this body and content type (status 200 unless given) instead of 204. */
  answerWith: { readonly body: Uint8Array; readonly type: string; readonly status?: number } | null = null;
  /** Stream upgrades (GET /raft/stream) answered 404, as a node without streams answers them. */
  upgradesRefused = 0;
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private gate: Promise<void> | null = null;
  private openGate: () => void = () => {};
  port = 0;

  constructor() {
    this.server = createServer((request, response) => void this.handle(request, response));
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get messages(): Message[] {
    return this.requests.flat();
  }

  async listen(port = 0): Promise<void> {
    this.server.listen(port, '127.0.0.1');
    await once(this.server, 'listening');
    this.port = (this.server.address() as AddressInfo).port;
  }

  /** Holds every answer (the request is recorded on arrival) until release(). */
  stall(): void {
    this.gate ??= new Promise((resolve) => (this.openGate = resolve));
  }

  release(): void {
    this.openGate();
    this.gate = null;
  }

  /** Destroys every connection at once, as a peer process that died (or restarted) does. */
  destroySockets(): void {
    for (const socket of this.sockets) socket.destroy();
  }

  async close(): Promise<void> {
    this.release();
    this.server.closeAllConnections();
    if (this.server.listening) {
      this.server.close();
      await once(this.server, 'close');
    }
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    if (request.method !== 'POST') {
      // A peer of an older version: no message streams (GET /raft/stream), so the client posts.
      this.upgradesRefused++;
      response
        .writeHead(404, { 'content-type': 'application/json' })
        .end('{"error":"not-found","message":"no stream"}');
      return;
    }
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    this.requests.push(decodeMessages(Buffer.concat(chunks)));
    const header = request.headers['x-raftkv-replies'];
    this.repliesHeaders.push(typeof header === 'string' ? header : undefined);
    if (this.gate !== null) await this.gate;
    if (this.answerWith === null) response.writeHead(204).end();
    else
      response
        .writeHead(this.answerWith.status ?? 200, { 'content-type': this.answerWith.type })
        .end(this.answerWith.body);
  }
}

/**
 * A TCP proxy in front of a peer that can make the kept-alive connections it holds go stale the way
 * they do when the peer's host restarts without closing them (crash, reboot, a NAT forgetting the
 * flow): nothing happens until the client writes, and then the write is answered with a reset.
 */
export class StaleConnectionProxy {
  private readonly server: NetServer;
  private readonly pairs = new Set<{ client: Socket; backend: Socket; stale: boolean }>();
  port = 0;

  constructor(private readonly backendPort: number) {
    this.server = createNetServer((client) => {
      const backend = netConnect(this.backendPort, '127.0.0.1');
      const pair = { client, backend, stale: false };
      this.pairs.add(pair);
      client.on('data', (chunk: Buffer) => {
        if (pair.stale) {
          client.resetAndDestroy();
          backend.destroy();
        } else {
          backend.write(chunk);
        }
      });
      backend.on('data', (chunk: Buffer) => client.write(chunk));
      const drop = (): void => {
        this.pairs.delete(pair);
        client.destroy();
        backend.destroy();
      };
      client.on('close', drop);
      backend.on('close', drop);
      client.on('error', () => {});
      backend.on('error', () => {});
    });
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async listen(): Promise<void> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.port = (this.server.address() as AddressInfo).port;
  }

  /** Every connection open now resets on the next byte the client sends; new ones work. */
  makeConnectionsStale(): number {
    for (const pair of this.pairs) pair.stale = true;
    return this.pairs.size;
  }

  async close(): Promise<void> {
    for (const { client, backend } of this.pairs) {
      client.destroy();
      backend.destroy();
    }
    if (this.server.listening) {
      this.server.close();
      await once(this.server, 'close');
    }
  }
}
