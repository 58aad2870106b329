// A fake raftkv cluster for the chaos client's tests: N HTTP servers on 127.0.0.1 sharing one store,
// answering the client API of versioned keys as README.md's "Conditional writes, transactions and
// retries" specifies it (only what the chaos workload sends): GET /kv/<key> with its ETag,
// PUT / DELETE with If-Match: "<modIndex>" or If-None-Match: *, POST /txn, Idempotency-Key with
// replays (idempotent-replayed: true) and 422 idempotency_key_reused. Every write takes an index,
// a failed condition included, as in the log. Faults are injected per write by a plan: refuse it
// (503), or apply it and then drop the connection or answer 504 (the client cannot tell that it
// was applied). A node can be silent: it answers nothing, as a paused process. A fake can also
// make one of the mistakes the workload exists to catch (`mistake`).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type WriteFault = 'none' | 'refuse' | 'drop-after-apply' | '504-after-apply';

/**
 * forgets-idempotency: every request is applied, a retry again (no records);
 * ignores-conditions: If-Match, If-None-Match and a transaction's compare always hold.
 */
export type FakeMistake = 'forgets-idempotency' | 'ignores-conditions';

export interface FakeOptions {
  /** The fault of the n-th write request received (0-based), whatever node it reached. */
  readonly faultOf?: (n: number) => WriteFault;
  readonly mistake?: FakeMistake;
  /** Nodes that take requests and never answer them (a paused process), until the cluster closes. */
  readonly silent?: ReadonlySet<string>;
}

export interface ReceivedRequest {
  readonly node: string;
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

interface Entry {
  value: string;
  createIndex: number;
  modIndex: number;
  version: number;
}

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

export class FakeKvCluster {
  readonly received: ReceivedRequest[] = [];
  readonly store = new Map<string, Entry>();
  /** Idempotency records: the fingerprint of the first request and its answer. */
  private readonly records = new Map<string, { fingerprint: string; answer: Answer }>();
  /** How many times each idempotency key was applied (a correct store: at most once). */
  readonly appliedPerKey = new Map<string, number>();
  private index = 0;
  private writes = 0;

  private constructor(
    private readonly servers: Map<string, Server>,
    readonly urls: ReadonlyMap<string, string>,
    private readonly faultOf: (n: number) => WriteFault,
    private readonly mistake: FakeMistake | undefined,
    private readonly silent: ReadonlySet<string>,
  ) {}

  static async start(nodes: number, options: FakeOptions = {}): Promise<FakeKvCluster> {
    const servers = new Map<string, Server>();
    const urls = new Map<string, string>();
    let cluster: FakeKvCluster | null = null;
    for (let i = 1; i <= nodes; i++) {
      const id = `n${i}`;
      const server = createServer((request, response) => cluster!.handle(id, request, response));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      servers.set(id, server);
      urls.set(id, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    }
    cluster = new FakeKvCluster(
      servers,
      urls,
      options.faultOf ?? (() => 'none'),
      options.mistake,
      options.silent ?? new Set(),
    );
    return cluster;
  }

  async close(): Promise<void> {
    await Promise.all(
      [...this.servers.values()].map(
        (server) =>
          new Promise<void>((resolve) => {
            server.closeAllConnections();
            server.close(() => resolve());
          }),
      ),
    );
  }

  private handle(node: string, request: IncomingMessage, response: ServerResponse): void {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      this.received.push({
        node,
        method: request.method ?? '',
        url: request.url ?? '',
        headers: request.headers,
        body,
      });
      if (!this.silent.has(node)) this.route(request, body, response);
    });
  }

  private route(request: IncomingMessage, body: string, response: ServerResponse): void {
    const url = request.url ?? '';
    if (request.method === 'GET' && url.startsWith('/kv/')) {
      send(response, this.read(decodeURIComponent(url.slice(4))));
      return;
    }
    const isKeyWrite = (request.method === 'PUT' || request.method === 'DELETE') && url.startsWith('/kv/');
    if (!isKeyWrite && !(request.method === 'POST' && url === '/txn')) {
      send(response, error(404, 'not_found', 'no such route'));
      return;
    }
    const fault = this.faultOf(this.writes++);
    if (fault === 'refuse') {
      send(response, error(503, 'no_leader', 'no leader'));
      return;
    }
    const answer = this.write(request, url, body);
    if (fault === 'drop-after-apply') response.socket?.destroy();
    else if (fault === '504-after-apply') send(response, error(504, 'outcome_unknown', 'not confirmed in time'));
    else send(response, answer);
  }

  private read(key: string): Answer {
    const entry = this.store.get(key);
    const headers = { 'x-raft-consistency': 'linearizable' };
    if (entry === undefined) return { ...error(404, 'not_found', 'no such key'), headers };
    return { status: 200, headers: { ...headers, etag: `"${entry.modIndex}"` }, body: entry.value };
  }

  private write(request: IncomingMessage, url: string, body: string): Answer {
    const idempotencyKey = header(request, 'idempotency-key');
    const fingerprint = JSON.stringify([
      request.method,
      url,
      body,
      header(request, 'if-match'),
      header(request, 'if-none-match'),
    ]);
    if (idempotencyKey !== undefined && this.mistake !== 'forgets-idempotency') {
      const record = this.records.get(idempotencyKey);
      if (record !== undefined) {
        if (record.fingerprint !== fingerprint) return error(422, 'idempotency_key_reused', 'another request');
        return { ...record.answer, headers: { ...record.answer.headers, 'idempotent-replayed': 'true' } };
      }
    }
    const index = ++this.index;
    const answer =
      request.method === 'POST'
        ? this.txn(JSON.parse(body) as TxnBody, index)
        : this.keyWrite(request, decodeURIComponent(url.slice(4)), body, index);
    if (idempotencyKey !== undefined) {
      this.records.set(idempotencyKey, { fingerprint, answer });
      this.appliedPerKey.set(idempotencyKey, (this.appliedPerKey.get(idempotencyKey) ?? 0) + 1);
    }
    return answer;
  }

  private keyWrite(request: IncomingMessage, key: string, body: string, index: number): Answer {
    const entry = this.store.get(key);
    const ifMatch = header(request, 'if-match');
    const ifNoneMatch = header(request, 'if-none-match');
    const held =
      this.mistake === 'ignores-conditions' ||
      (ifMatch !== undefined
        ? entry !== undefined && `"${entry.modIndex}"` === ifMatch
        : ifNoneMatch !== undefined
          ? ifNoneMatch === '*' && entry === undefined
          : true);
    const headers = { 'x-raft-index': String(index) };
    if (!held) {
      const current =
        entry === undefined
          ? null
          : { createIndex: entry.createIndex, modIndex: entry.modIndex, version: entry.version };
      return { status: 412, headers, body: JSON.stringify({ error: 'precondition_failed', message: '...', current }) };
    }
    if (request.method === 'DELETE') this.store.delete(key);
    else this.put(key, body, index);
    return {
      status: 200,
      headers: request.method === 'PUT' ? { ...headers, etag: `"${index}"` } : headers,
      body: JSON.stringify({ index, term: 1 }),
    };
  }

  private txn(txn: TxnBody, index: number): Answer {
    const succeeded = txn.compare.every((c) => {
      if (this.mistake === 'ignores-conditions') return true;
      const entry = this.store.get(c.key);
      return c.exists === false ? entry === undefined : entry !== undefined && entry.value === c.value;
    });
    const results = (succeeded ? txn.success : txn.failure).map((op) => {
      if (op.op === 'put') {
        this.put(op.key, op.value!, index);
        return { op: 'put', key: op.key, modIndex: index };
      }
      const entry = this.store.get(op.key);
      return entry === undefined
        ? { op: 'get', key: op.key, value: null }
        : {
            op: 'get',
            key: op.key,
            value: entry.value,
            createIndex: entry.createIndex,
            modIndex: entry.modIndex,
            version: entry.version,
          };
    });
    return { status: 200, headers: {}, body: JSON.stringify({ succeeded, results, index, term: 1 }) };
  }

  private put(key: string, value: string, index: number): void {
    const entry = this.store.get(key);
    this.store.set(key, {
      value,
      createIndex: entry?.createIndex ?? index,
      modIndex: index,
      version: (entry?.version ?? 0) + 1,
    });
  }
}

interface TxnBody {
  readonly compare: readonly { readonly key: string; readonly value?: string; readonly exists?: boolean }[];
  readonly success: readonly { readonly op: string; readonly key: string; readonly value?: string }[];
  readonly failure: readonly { readonly op: string; readonly key: string; readonly value?: string }[];
}

function header(request: IncomingMessage, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

function error(status: number, code: string, message: string): Answer {
  return { status, headers: {}, body: JSON.stringify({ error: code, message }) };
}

function send(response: ServerResponse, answer: Answer): void {
  response.writeHead(answer.status, answer.headers);
  response.end(answer.body);
}
