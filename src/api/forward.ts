// A follower forwards client writes, and admin requests, to the leader, at most one hop: a
// forwarded request that lands on a non-leader (the leader changed meanwhile) is answered 503
// there, never forwarded again.
import { Pool } from 'undici';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { IncomingHttpHeaders } from 'node:http';
import { sendErrorAnswer, type ErrorAnswer } from './errors.js';

export const FORWARDED_HEADER = 'x-raftkv-forwarded-by';
/**
 * The header a node that forwards an admin request vouches for it with: the cluster's peer token
 * (admin-auth.ts says what the leader makes of it). Only the forwarder writes it: a client's is dropped.
 */
export const ADMIN_VOUCH_HEADER = 'x-raftkv-admin-vouch';

/** Headers that describe one hop, not the request, or that only this node may write: never copied. */
const NOT_COPIED = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'host',
  'content-length',
  'upgrade',
  ADMIN_VOUCH_HEADER,
]);

/** What a forward sends besides the client's request (admin routes: their parsed JSON body, the vouching). */
export interface ForwardExtras {
  /** The body to send instead of the request's raw bytes (a route whose body was parsed). */
  readonly body?: Uint8Array;
  /** Headers set after the client's, so they win. */
  readonly headers?: Readonly<Record<string, string>>;
}

/** A client request as the forwarder needs it. */
export interface RelayedRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: Uint8Array | undefined;
}

/** The leader's answer, to pass on as it is. */
export interface RelayedAnswer {
  readonly status: number;
  readonly headers: Record<string, string | string[]>;
  readonly payload: Buffer;
}

export class Forwarder {
  private readonly pools = new Map<string, Pool>();

  constructor(
    private readonly selfId: string,
    private readonly timeoutMs: number,
  ) {}

  /**
   * Relays `request` to `leaderUrl` and its answer back to the client. `extras.body`: the bytes the
   * client sent, where the route parsed them into something else (POST /txn's JSON, admin bodies): the
   * leader parses the very same bytes, and the Idempotency-Key and precondition headers travel with them.
   */
  async forward(
    request: FastifyRequest,
    reply: FastifyReply,
    leaderUrl: string,
    extras: ForwardExtras = {},
  ): Promise<FastifyReply> {
    const body = extras.body ?? (request.body instanceof Uint8Array ? request.body : undefined);
    const answer = await this.relay(
      { method: request.method, url: request.url, headers: request.headers, body },
      leaderUrl,
      extras.headers,
    );
    if ('failure' in answer) return sendErrorAnswer(reply, answer.failure);
    for (const [name, value] of Object.entries(answer.headers)) reply.header(name, value);
    return reply.code(answer.status).send(answer.payload);
  }

  /**
   * Sends a client's request to `leaderUrl` and reads the leader's whole answer (the headers that
   * describe the request, not this hop); or what to answer when that failed. Either path of the
   * client port (Fastify's routes, the PUT fast path) relays through here.
   */
  async relay(
    request: RelayedRequest,
    leaderUrl: string,
    extraHeaders: Readonly<Record<string, string>> = {},
  ): Promise<RelayedAnswer | { readonly failure: ErrorAnswer }> {
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(request.headers)) {
      if (typeof value === 'string' && !NOT_COPIED.has(name)) headers[name] = value;
    }
    Object.assign(headers, extraHeaders, { [FORWARDED_HEADER]: this.selfId });
    try {
      const answer = await this.pool(leaderUrl).request({
        method: request.method as 'PUT' | 'DELETE' | 'GET' | 'POST',
        path: request.url,
        headers,
        body: request.body === undefined ? null : request.body,
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
      });
      const payload = Buffer.from(await answer.body.arrayBuffer());
      const copied: Record<string, string | string[]> = {};
      for (const [name, value] of Object.entries(answer.headers)) {
        if (value !== undefined && !NOT_COPIED.has(name)) copied[name] = value;
      }
      return { status: answer.statusCode, headers: copied, payload };
    } catch (error) {
      // If the connection was never made, nothing reached the leader; otherwise a write (or a
      // membership change, a leader transfer) may or may not have taken effect there.
      const code = (error as { code?: string }).code ?? '';
      const neverSent = code === 'ECONNREFUSED' || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'ENOTFOUND';
      // Only a read through the log (GET ?consistency=log) changes nothing: every other forwarded
      // request (PUT, DELETE, POST /txn) is a write.
      const unknown = !neverSent && request.method !== 'GET';
      return {
        failure: {
          status: unknown ? 504 : 503,
          error: unknown ? 'outcome_unknown' : 'leader_unreachable',
          message:
            `forwarding to the leader at ${leaderUrl} failed (${(error as Error).message})` +
            (unknown ? ': the request may or may not have taken effect' : ''),
          headers: { 'retry-after': '1' },
        },
      };
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map((p) => p.close()));
    this.pools.clear();
  }

  private pool(url: string): Pool {
    let pool = this.pools.get(url);
    if (pool === undefined) {
      pool = new Pool(url, { connections: 64, keepAliveTimeout: 10_000 });
      this.pools.set(url, pool);
    }
    return pool;
  }
}
