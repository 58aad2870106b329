// The hot path of a read-heavy store: `GET /kv/<key>` and `GET /kv/<key>?consistency=stale`,
// answered on Node's HTTP server directly, in front of Fastify. Fastify's per-request machinery
// (request and reply objects, a child logger, hooks, content-type handling) cost about a third of
// a point read's CPU, and a head written from a header object about as much again, so the head
// goes out as a flat list (BENCHMARKS.md, profiling steps 3 and 4). Anything this path does not
// recognise exactly (another method or query, a percent-encoded or invalid key, a stopping node) goes
// to Fastify untouched, so there is one definition of every other behaviour, and a test checks that
// both paths give the same answer, byte for byte, to the requests this one takes.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { KeyMeta, StoredValue } from '../storage/key-meta.js';
import { KEY_NOT_FOUND, readFailureAnswer } from './errors.js';
import { parseKey } from './keys.js';
import { etagOf } from './preconditions.js';
import { sendJsonError } from './raw-answers.js';

export type Consistency = 'linearizable' | 'stale' | 'log';

/**
 * Headers of every successful read, as a flat [name, value, ...] list (the cheapest form
 * `writeHead` takes): how far this node got, and what the answer is consistent with.
 */
export function readHeaderList(appliedIndex: number, point: { consistency: Consistency; readIndex: number }): string[] {
  const list = ['x-raft-applied-index', String(appliedIndex), 'x-raft-consistency', point.consistency];
  if (point.consistency !== 'stale') list.push('x-raft-read-index', String(point.readIndex));
  return list;
}

/** The same headers as an object, for Fastify's `reply.headers`. */
export function readHeaders(
  appliedIndex: number,
  point: { consistency: Consistency; readIndex: number },
): Record<string, string> {
  return headerObject(readHeaderList(appliedIndex, point));
}

/**
 * Appends the headers of a key that was found: its ETag (the modIndex, quoted: what If-Match takes)
 * and its metadata. Keys written before versioned keys read as modIndex 0, createIndex 0, version 1.
 */
export function pushKeyMetaHeaders(list: string[], meta: KeyMeta): string[] {
  list.push(
    'etag',
    etagOf(meta.modIndex),
    'x-raft-mod-index',
    String(meta.modIndex),
    'x-raft-create-index',
    String(meta.createIndex),
    'x-raft-version',
    String(meta.version),
  );
  return list;
}

/** The same headers as an object, for Fastify's `reply.headers`. */
export function keyMetaHeaders(meta: KeyMeta): Record<string, string> {
  return headerObject(pushKeyMetaHeaders([], meta));
}

function headerObject(list: readonly string[]): Record<string, string> {
  const headers: Record<string, string> = {};
  for (let i = 0; i < list.length; i += 2) headers[list[i]!] = list[i + 1]!;
  return headers;
}

export interface FastGetDeps {
  readonly maxKeyBytes: number;
  readonly appliedIndex: () => number;
  readonly readBarrier: () => Promise<number>;
  /** The key's value and metadata in one LevelDB read. */
  readonly getEntrySync: (key: Uint8Array) => StoredValue | undefined;
  /** False once the node is stopping: Fastify then answers (503 while closing). */
  readonly live: () => boolean;
  readonly logger: Logger;
}

const KV_PREFIX = '/kv/';

/** Returns a handler that answers the requests it recognises and returns false for the rest. */
export function fastGetHandler(deps: FastGetDeps): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    const url = req.url;
    if (req.method !== 'GET' || url === undefined || !url.startsWith(KV_PREFIX) || !deps.live()) return false;
    const q = url.indexOf('?');
    const rawKey = q < 0 ? url.slice(KV_PREFIX.length) : url.slice(KV_PREFIX.length, q);
    const query = q < 0 ? '' : url.slice(q + 1);
    if (query !== '' && query !== 'consistency=stale' && query !== 'consistency=linearizable') return false;
    // Percent-encoded keys (and '/' in keys) take Fastify's router, which decodes them; a raw '#'
    // is refused there (client-api.ts), never read as part of a key.
    if (rawKey.includes('%') || rawKey.includes('/') || rawKey.includes('#')) return false;
    const key = parseKey(rawKey, deps.maxKeyBytes);
    if (!key.ok) return false;
    if (query === 'consistency=stale') {
      answer(res, deps, key.key, { consistency: 'stale', readIndex: deps.appliedIndex() });
      return true;
    }
    deps.readBarrier().then(
      (readIndex) => answer(res, deps, key.key, { consistency: 'linearizable', readIndex }),
      (error: Error) => fail(res, deps, error),
    );
    return true;
  };
}

function answer(
  res: ServerResponse,
  deps: FastGetDeps,
  key: Uint8Array,
  point: { consistency: Consistency; readIndex: number },
): void {
  try {
    const entry = deps.getEntrySync(key);
    const applied = deps.appliedIndex();
    if (entry === undefined) {
      sendJsonError(res, KEY_NOT_FOUND, readHeaders(applied, point));
      return;
    }
    const value = entry.value;
    // A header object costs Node a validation and a store per header: about 30% of a point read.
    const headers = pushKeyMetaHeaders(readHeaderList(applied, point), entry.meta);
    headers.push('content-type', 'application/octet-stream', 'content-length', String(value.byteLength));
    res.writeHead(200, headers);
    res.end(value);
  } catch (error) {
    fail(res, deps, error as Error);
  }
}

function fail(res: ServerResponse, deps: FastGetDeps, error: Error): void {
  const known = readFailureAnswer(error);
  if (known === undefined) deps.logger.error({ err: error }, 'client API error');
  sendJsonError(res, known ?? { status: 500, error: 'internal', message: error.message });
}
