// One chaos client's connections: an undici Client per node, one request at a time (pipelining 1),
// so a request is never queued behind another and "was it sent?" has a clear answer:
//  - a connect that fails or times out means nothing was sent (fail);
//  - once connected, any error or our own deadline means it may have been sent (unknown).
import { Client, errors } from 'undici';
import type { OpKind } from '../check/history.js';
import { classifyAnswer, classifyError, type Outcome } from './outcome.js';

export interface KvClientOptions {
  /** Client URL of every node, by node id; a node added later is connected to on first use. */
  readonly urls: ReadonlyMap<string, string>;
  /** Whole-request deadline; a request without an answer by then is 'unknown' (or 'fail' if never connected). */
  readonly timeoutMs: number;
}

/** Bodies larger than this are never produced by the runner's workload; a bound for safety. */
const MAX_BODY_BYTES = 64 * 1024;

export class KvClient {
  private readonly clients = new Map<string, Client>();
  private readonly timeoutMs: number;

  constructor(private readonly options: KvClientOptions) {
    this.timeoutMs = options.timeoutMs;
    for (const id of options.urls.keys()) this.connect(id);
  }

  /** The connection to `node`, made on first use for a node that joined after this client was made. */
  private connect(node: string): Client | undefined {
    const url = this.options.urls.get(node);
    if (url === undefined) return undefined;
    const client = new Client(url, {
      pipelining: 1,
      // Shorter than the request deadline, so a connect that hangs is told apart ("never sent").
      connect: { timeout: Math.max(100, Math.floor(this.timeoutMs / 2)) },
      headersTimeout: this.timeoutMs,
      bodyTimeout: this.timeoutMs,
      keepAliveTimeout: 4000,
    });
    this.clients.set(node, client);
    return client;
  }

  /** Performs one operation on `node`; never throws. */
  async perform(node: string, kind: OpKind, key: string, value: string | null): Promise<Outcome> {
    const client = this.clients.get(node) ?? this.connect(node);
    if (client === undefined) throw new Error(`no client for node ${node}`);
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, this.timeoutMs);
    try {
      const method = kind === 'get' ? 'GET' : kind === 'put' ? 'PUT' : 'DELETE';
      const response = await client.request({
        method,
        path: `/kv/${encodeURIComponent(key)}`,
        body: kind === 'put' ? (value ?? '') : null,
        headers: kind === 'put' ? { 'content-type': 'application/octet-stream' } : {},
        signal: controller.signal,
      });
      const status = response.statusCode;
      // A write's 200 is its outcome whatever happens to the body afterwards.
      if (kind !== 'get' && status === 200) {
        await response.body.dump({ limit: MAX_BODY_BYTES }).catch(() => undefined);
        return classifyAnswer(kind, { status, errorCode: null, consistency: null, body: null });
      }
      const text = await response.body.text();
      const consistency = headerValue(response.headers['x-raft-consistency']);
      const errorCode = status === 200 ? null : jsonErrorCode(text);
      return classifyAnswer(kind, { status, errorCode, consistency, body: status === 200 ? text : null });
    } catch (error) {
      return classifyError(timedOut ? 'timeout' : errorCode(error));
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.clients.values()].map((c) => c.destroy().catch(() => undefined)));
  }
}

function headerValue(value: string | string[] | undefined): string | null {
  if (value === undefined) return null;
  return Array.isArray(value) ? (value[0] ?? null) : value;
}

function jsonErrorCode(text: string): string | null {
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === 'object' && parsed !== null && typeof (parsed as { error?: unknown }).error === 'string') {
      return (parsed as { error: string }).error;
    }
  } catch {
    // Not JSON: no code.
  }
  return null;
}

/** The most specific code of an error: Node's errno code, undici's code, or its cause's. */
export function errorCode(error: unknown): string {
  if (error instanceof errors.ConnectTimeoutError) return 'UND_ERR_CONNECT_TIMEOUT';
  const direct = (error as { code?: unknown }).code;
  if (typeof direct === 'string') {
    // undici wraps the socket's own error; the errno of the cause says more (ECONNREFUSED...).
    const cause = (error as { cause?: { code?: unknown } }).cause?.code;
    return direct === 'UND_ERR_SOCKET' && typeof cause === 'string' ? cause : direct;
  }
  const cause = (error as { cause?: { code?: unknown } }).cause?.code;
  return typeof cause === 'string' ? cause : ((error as Error).name ?? 'error');
}
