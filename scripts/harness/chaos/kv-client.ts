// One chaos client's connections: an undici Client per node, one request at a time (pipelining 1),
// so a request is never queued behind another and "was it sent?" has a clear answer:
//  - a connect that fails or times out means nothing was sent (fail);
//  - once connected, any error or our own deadline means it may have been sent (unknown).
//
// The requests (KvRequest), as the client API defines them:
//   get      GET /kv/<key>                       the value, and its modIndex from `etag: "<M>"`
//   put      PUT /kv/<key>, body the value       `If-Match: "<M>"` or `If-None-Match: *` when
//   delete   DELETE /kv/<key>                    conditional; `Idempotency-Key: <id>` when it has one
//   txn      POST /txn, JSON {"compare":[{"key","value"} | {"key","exists":false}],
//                             "success":[{"op":"put","key","value"},{"op":"get","key"}],
//                             "failure":[{"op":"get","key"}]}, with its Idempotency-Key
import { Client, errors } from 'undici';
import type { OpKind } from '../check/history.js';
import {
  classifyAnswer,
  classifyConditional,
  classifyError,
  classifyIdempotentWrite,
  classifyTxn,
  type HttpAnswer,
  type Outcome,
} from './outcome.js';

/** A conditional write's precondition: the key's modIndex is M (If-Match), or it is absent (If-None-Match: *). */
export type Precondition = { readonly modIndex: number } | { readonly absent: true };

export type KvRequest =
  | { readonly kind: 'get'; readonly key: string }
  | {
      readonly kind: 'put';
      readonly key: string;
      readonly value: string;
      readonly condition?: Precondition;
      readonly idempotencyKey?: string;
    }
  | {
      readonly kind: 'delete';
      readonly key: string;
      readonly condition?: Precondition;
      readonly idempotencyKey?: string;
    }
  /** compare value = expected (exists = false when null) -> put value + get; else get. */
  | {
      readonly kind: 'txn';
      readonly key: string;
      readonly expected: string | null;
      readonly value: string;
      readonly idempotencyKey: string;
    };

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

  /** Performs one plain get, put or delete on `node`; never throws. */
  async perform(node: string, kind: OpKind, key: string, value: string | null): Promise<Outcome> {
    if (kind === 'get') return this.send(node, { kind, key });
    if (kind === 'put') return this.send(node, { kind, key, value: value ?? '' });
    if (kind === 'delete') return this.send(node, { kind, key });
    throw new Error('a cas is sent as a conditional put or delete, or a transaction');
  }

  /** Sends one request to `node` and classifies the answer; never throws. */
  async send(node: string, request: KvRequest): Promise<Outcome> {
    const client = this.clients.get(node) ?? this.connect(node);
    if (client === undefined) throw new Error(`no client for node ${node}`);
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, this.timeoutMs);
    try {
      const response = await client.request({ ...httpRequest(request), signal: controller.signal });
      const status = response.statusCode;
      const etag = headerValue(response.headers['etag']);
      const replayed = headerValue(response.headers['idempotent-replayed']) === 'true';
      // A write's 200 is its outcome whatever happens to the body afterwards (a transaction's
      // answer is in its body, so it is read).
      if ((request.kind === 'put' || request.kind === 'delete') && status === 200) {
        await response.body.dump({ limit: MAX_BODY_BYTES }).catch(() => undefined);
        return classify(request, { status, errorCode: null, consistency: null, body: null, etag, replayed });
      }
      const text = await response.body.text();
      const consistency = headerValue(response.headers['x-raft-consistency']);
      const errorCode = status === 200 ? null : jsonErrorCode(text);
      return classify(request, { status, errorCode, consistency, body: text, etag, replayed });
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

function classify(request: KvRequest, answer: HttpAnswer): Outcome {
  switch (request.kind) {
    case 'get':
      return classifyAnswer('get', { ...answer, body: answer.status === 200 ? answer.body : null });
    case 'txn':
      return classifyTxn(answer);
    default:
      if (request.condition !== undefined) return classifyConditional(request.kind, answer);
      if (request.idempotencyKey !== undefined) return classifyIdempotentWrite(request.kind, answer);
      return classifyAnswer(request.kind, answer);
  }
}

function httpRequest(request: KvRequest): {
  method: 'GET' | 'PUT' | 'DELETE' | 'POST';
  path: string;
  body: string | null;
  headers: Record<string, string>;
} {
  const path = `/kv/${encodeURIComponent(request.key)}`;
  const headers: Record<string, string> = {};
  if (request.kind !== 'get' && request.idempotencyKey !== undefined)
    headers['idempotency-key'] = request.idempotencyKey;
  switch (request.kind) {
    case 'get':
      return { method: 'GET', path, body: null, headers };
    case 'txn': {
      const key = request.key;
      const compare = request.expected === null ? { key, exists: false } : { key, value: request.expected };
      const body = {
        compare: [compare],
        success: [
          { op: 'put', key, value: request.value },
          { op: 'get', key },
        ],
        failure: [{ op: 'get', key }],
      };
      headers['content-type'] = 'application/json';
      return { method: 'POST', path: '/txn', body: JSON.stringify(body), headers };
    }
    default: {
      const condition = request.condition;
      if (condition !== undefined) {
        if ('absent' in condition) headers['if-none-match'] = '*';
        else headers['if-match'] = `"${condition.modIndex}"`;
      }
      if (request.kind === 'delete') return { method: 'DELETE', path, body: null, headers };
      headers['content-type'] = 'application/octet-stream';
      return { method: 'PUT', path, body: request.value, headers };
    }
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
