// A follower forwards client writes to the leader, at most one hop: a forwarded request that lands
// on a non-leader (the leader changed meanwhile) is answered 503 there, never forwarded again.
import { Pool } from 'undici';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { sendError } from './errors.js';

export const FORWARDED_HEADER = 'x-raftkv-forwarded-by';

/** Headers that describe one hop, not the request: never copied. */
const HOP_HEADERS = new Set(['connection', 'keep-alive', 'transfer-encoding', 'host', 'content-length', 'upgrade']);

export class Forwarder {
  private readonly pools = new Map<string, Pool>();

  constructor(
    private readonly selfId: string,
    private readonly timeoutMs: number,
  ) {}

  /**
   * Relays `request` to `leaderUrl` and its answer back to the client. `body`: the bytes the client
   * sent, where the route parsed them into something else (POST /txn's JSON): the leader parses the
   * very same bytes, and the Idempotency-Key and precondition headers travel with them.
   */
  async forward(
    request: FastifyRequest,
    reply: FastifyReply,
    leaderUrl: string,
    body: Uint8Array | undefined = request.body instanceof Uint8Array ? request.body : undefined,
  ): Promise<FastifyReply> {
    const headers: Record<string, string> = { [FORWARDED_HEADER]: this.selfId };
    for (const [name, value] of Object.entries(request.headers)) {
      if (typeof value === 'string' && !HOP_HEADERS.has(name)) headers[name] = value;
    }
    try {
      const answer = await this.pool(leaderUrl).request({
        method: request.method as 'PUT' | 'DELETE' | 'GET' | 'POST',
        path: request.url,
        headers,
        body: body === undefined ? null : body,
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
      });
      const payload = Buffer.from(await answer.body.arrayBuffer());
      for (const [name, value] of Object.entries(answer.headers)) {
        if (value !== undefined && !HOP_HEADERS.has(name)) reply.header(name, value);
      }
      return reply.code(answer.statusCode).send(payload);
    } catch (error) {
      // If the connection was never made, nothing reached the leader; otherwise a write may or
      // may not have been applied there.
      const code = (error as { code?: string }).code ?? '';
      const neverSent = code === 'ECONNREFUSED' || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'ENOTFOUND';
      // Only a read through the log (GET ?consistency=log) changes nothing: every other forwarded
      // request (PUT, DELETE, POST /txn) is a write.
      const unknown = !neverSent && request.method !== 'GET';
      return sendError(
        reply,
        unknown ? 504 : 503,
        unknown ? 'outcome_unknown' : 'leader_unreachable',
        `forwarding to the leader at ${leaderUrl} failed (${(error as Error).message})` +
          (unknown ? ': the write may or may not have been applied' : ''),
        { 'retry-after': '1' },
      );
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
