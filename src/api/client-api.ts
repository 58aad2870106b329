// The client API, on its own listener: clients never reach the peer routes.
//
//   PUT    /kv/<key>            raw body            200 {"index":N} once committed, applied, durable;
//                                                  etag: "<modIndex>"; If-Match / If-None-Match: * -> 412
//   GET    /kv/<key>            linearizable        200 raw value, etag and x-raft-mod-index... | 404
//   GET    /kv/<key>?consistency=stale[&max_lag_ms=M]   local state at once, says how stale
//   GET    /kv/<key>?consistency=log               through the Raft log (slow; for comparison)
//   DELETE /kv/<key>                                200 {"index":N}; If-Match / If-None-Match: * -> 412
//   POST   /txn   {"compare","success","failure"}  200 {"succeeded","results","index","term"} (txn-route.ts)
//   Idempotency-Key: <id> on any write: a retry gets the first answer (write-requests.ts, write-answers.ts)
//   GET    /kv?prefix=&start=&limit=               200 {"items":[...],"next":cursor|null}
//                                                  (a page also ends before limits.maxResponseBytes)
//   POST   /mget  {"keys":[...]}                    200 {"items":[{"key","value"|null}...]}
//                                                  | 413 beyond limits.maxResponseBytes
//   GET    /status  /livez  /readyz  /metrics       /status and /metrics include the membership
//
// Writes on a follower are forwarded to the leader (one hop), or answered 307 with ?redirect=true.
// main.ts adds the admin routes (admin.ts: /members, /leader/transfer; backup.ts: /backup) and
// GET /cluster/join-info (join-info.ts).
import { createServer } from 'node:http';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { LogController, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Limits } from '../config/cluster-config.js';
import type { RaftStatus } from '../raft/core.js';
import type { SoftState } from '../raft/types.js';
import type { WriteResult } from '../node/apply-waiters.js';
import { NotLeaderError } from '../node/errors.js';
import type { NodeMetrics } from '../node/metrics.js';
import type { ManyAnswer } from '../reads/read-pool.js';
import { formatSchemaErrors, SchemaValidationError, typeboxValidatorCompiler } from '../schema/fastify-validation.js';
import type { Membership } from '../storage/members.js';
import type { StoredValue } from '../storage/key-meta.js';
import { encodeCommand } from '../storage/state-machine.js';
import { KEY_NOT_FOUND, readFailureAnswer, sendError, sendErrorAnswer, writeFailureAnswer } from './errors.js';
import { fastGetHandler, keyMetaHeaders, readHeaders, type Consistency } from './fast-get.js';
import { fastPutHandler } from './fast-put.js';
import { Forwarder } from './forward.js';
import { parseKey, queryBytes, RAW_HASH_MESSAGE } from './keys.js';
import { MemberMetrics } from './member-metrics.js';
import { memberClientUrl, memberViews } from './members.js';
import { notLeaderAction } from './not-leader.js';
import { clientApiSchemas, type ReadQuery } from './schemas.js';
import { txnRoute } from './txn-route.js';
import { writeAnswer } from './write-answers.js';
import { keyWrite, type ProposedWrite } from './write-requests.js';

/** What the API needs from the node (RaftNode in production; fakes in tests). */
export interface ApiNode {
  write(command: Uint8Array): Promise<WriteResult>;
  readBarrier(): Promise<number>;
  status(): RaftStatus & { readonly snapshot?: { readonly index: number; readonly term: number } };
  readonly softState: SoftState;
  readonly appliedIndex: number;
  msSinceLeaderContact(now?: number): number;
  readonly pending: { writes: number; reads: number };
  /** The membership at the applied index. */
  readonly membership: Membership;
  /** Leader only: how many entries its log is ahead of member `id`; null on any other node. */
  lagOf(id: string): number | null;
}

/** Reads of the local state machine: point reads inline, heavier queries wherever they run best. */
export interface ApiKv {
  /** A key's value and metadata (its ETag is the modIndex), in one read. */
  getEntrySync(key: Uint8Array): StoredValue | undefined;
  /** A page of the scan as the JSON answer's bytes. */
  scanJson(query: { prefix?: Uint8Array; start?: Uint8Array; limit: number }): Promise<Uint8Array>;
  /** Values of `keys` as the JSON answer's bytes, or a refusal: the answer would pass maxResponseBytes. */
  getManyJson(keys: readonly Uint8Array[]): Promise<ManyAnswer>;
}

export interface ClientApiOptions {
  readonly nodeId: string;
  readonly clusterId: string;
  readonly node: ApiNode;
  readonly kv: ApiKv;
  readonly limits: Limits;
  readonly logger: Logger;
  /**
   * The client URL of a node, for forwarding and redirects, where the membership has none (a store
   * that keeps no membership): the cluster config's.
   */
  readonly clientUrlOf: (id: string) => string | undefined;
  readonly metrics?: NodeMetrics;
  /** False once the node hit a fatal error or is stopping. */
  readonly live: () => boolean;
}

const startedAt = Date.now();
const BARRIER = encodeCommand({ op: 'barrier' });

export function buildClientApi(options: ClientApiOptions) {
  const { node, kv, limits } = options;
  const clientUrlOf = (id: string): string | undefined => memberClientUrl(node.membership, id, options.clientUrlOf);
  const memberMetrics = options.metrics === undefined ? undefined : new MemberMetrics(options.metrics.registry);
  const fastGet = fastGetHandler({
    maxKeyBytes: limits.maxKeyBytes,
    appliedIndex: () => node.appliedIndex,
    readBarrier: () => node.readBarrier(),
    getEntrySync: (key) => kv.getEntrySync(key),
    live: options.live,
    logger: options.logger.child({ component: 'client-api' }),
  });
  const forwarder = new Forwarder(options.nodeId, limits.writeTimeoutMs + 1000);
  const fastPut = fastPutHandler({
    maxKeyBytes: limits.maxKeyBytes,
    maxValueBytes: limits.maxValueBytes,
    isLeader: () => node.softState.role === 'leader',
    write: (command) => node.write(command),
    acknowledged: () => options.metrics?.writesAcknowledged.inc(),
    clientUrlOf,
    forwarder,
    live: options.live,
    logger: options.logger.child({ component: 'client-api' }),
  });
  const app = Fastify({
    // Point reads and a leader's plain PUTs take the fast paths in front of Fastify (fast-get.ts,
    // fast-put.ts); everything else is Fastify's.
    serverFactory: (handler) =>
      createServer((request, response) => {
        if (!fastGet(request, response) && !fastPut(request, response)) handler(request, response);
      }),
    loggerInstance: options.logger.child({ component: 'client-api' }),
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: limits.maxValueBytes,
    // Our own key check gives the precise error; the router must not cut long keys first.
    routerOptions: { maxParamLength: limits.maxKeyBytes * 12 + 16 },
    return503OnClosing: true,
    // Query strings and bodies are checked by their schemas (schemas.ts); a refusal names the field.
    schemaErrorFormatter: formatSchemaErrors,
  }).withTypeProvider<TypeBoxTypeProvider>();
  app.setValidatorCompiler(typeboxValidatorCompiler);
  const schemas = clientApiSchemas(limits);
  app.addHook('onClose', async () => forwarder.close());

  // Values are raw bytes, whatever the content type says.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));

  app.setErrorHandler((error: Error & { statusCode?: number; code?: string }, _request, reply) => {
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return sendError(reply, 413, 'value_too_large', `the value exceeds the limit of ${limits.maxValueBytes} bytes`);
    }
    if (error instanceof SchemaValidationError) {
      return sendError(reply, 400, error.errorCode ?? 'bad_request', error.message);
    }
    const status = error.statusCode ?? 500;
    if (status >= 500) options.logger.error({ err: error }, 'client API error');
    return sendError(reply, status, status >= 500 ? 'internal' : 'bad_request', error.message);
  });
  // find-my-way ends the path at a raw '#' and takes the rest for a query: `PUT /kv/x#y` would
  // write key "x", while the fast path would read "x#y". A request target never holds a raw '#'
  // (RFC 9112 3.2; it starts a fragment, which clients cut off), so any URL with one is refused,
  // before a route can misread it; the fast path leaves such URLs to this hook.
  app.addHook('onRequest', (request, reply, done) => {
    const url = request.raw.url ?? '';
    if (!url.includes('#')) return done();
    const isKv = url === '/kv' || url.startsWith('/kv/') || url.startsWith('/kv?') || url.startsWith('/kv#');
    sendError(reply, 400, isKv ? 'bad_key' : 'bad_request', RAW_HASH_MESSAGE);
  });
  app.setNotFoundHandler((request, reply) =>
    sendError(
      reply,
      404,
      'not_found',
      `no route ${request.method} ${request.url.split('?')[0]}; see GET /status and the README`,
    ),
  );

  // --- writes ---------------------------------------------------------------------------------

  /**
   * Proposes `write` and answers with what applying it did (write-answers.ts). `redirect`: on a
   * follower, answer 307 to the leader instead of forwarding (`?redirect=true`); `body`: the bytes to
   * forward, where the route parsed the request's into something else.
   */
  const write = async (
    request: FastifyRequest,
    reply: FastifyReply,
    redirect: boolean,
    proposed: ProposedWrite,
    body?: Uint8Array,
  ): Promise<FastifyReply> => {
    try {
      const result = await node.write(proposed.command);
      options.metrics?.writesAcknowledged.inc();
      const answer = writeAnswer(proposed, result);
      return reply.code(answer.status).headers(answer.headers).send(answer.body);
    } catch (error) {
      if (error instanceof NotLeaderError) return notLeader(request, reply, redirect, error.leader, body);
      return writeFailure(reply, error as Error);
    }
  };

  const notLeader = (
    request: FastifyRequest,
    reply: FastifyReply,
    redirect: boolean,
    leader: string,
    body?: Uint8Array,
  ): Promise<FastifyReply> | FastifyReply => {
    const action = notLeaderAction(leader, leader === '' ? undefined : clientUrlOf(leader), {
      url: request.url,
      headers: request.headers,
      redirect,
    });
    if (action.kind === 'answer') return sendErrorAnswer(reply, action.answer);
    if (action.kind === 'redirect') return reply.code(307).header('location', action.location).send();
    return forwarder.forward(request, reply, action.leaderUrl, body === undefined ? {} : { body });
  };

  app.put('/kv/*', { schema: { querystring: schemas.writeQuery } }, async (request, reply) => {
    const key = parseKey((request.params as Record<string, string>)['*'], limits.maxKeyBytes);
    if (!key.ok) return sendError(reply, 400, 'bad_key', key.message);
    const body = request.body;
    const value = body instanceof Uint8Array ? body : new Uint8Array(0);
    const proposed = keyWrite({ kind: 'put', key: key.key, value }, request.headers);
    if (!proposed.ok) return sendErrorAnswer(reply, proposed.refusal);
    return write(request, reply, request.query.redirect === 'true', proposed.write);
  });

  app.delete('/kv/*', { schema: { querystring: schemas.writeQuery } }, async (request, reply) => {
    const key = parseKey((request.params as Record<string, string>)['*'], limits.maxKeyBytes);
    if (!key.ok) return sendError(reply, 400, 'bad_key', key.message);
    const proposed = keyWrite({ kind: 'delete', key: key.key }, request.headers);
    if (!proposed.ok) return sendErrorAnswer(reply, proposed.refusal);
    return write(request, reply, request.query.redirect === 'true', proposed.write);
  });

  void app.register(txnRoute({ limits, schemas, submit: write }));

  // --- reads ----------------------------------------------------------------------------------

  /**
   * Waits until local state may be read at the requested consistency; null when answered already.
   * `query` passed its schema: consistency is one of the three, max_lag_ms a non-negative number.
   */
  const readPoint = async (
    request: FastifyRequest,
    reply: FastifyReply,
    query: ReadQuery,
  ): Promise<{ consistency: Consistency; readIndex: number } | null> => {
    const consistency = query.consistency ?? 'linearizable';
    if (consistency === 'stale') {
      const limit = query.max_lag_ms;
      if (limit !== undefined) {
        const lag = node.msSinceLeaderContact();
        if (lag > limit) {
          sendError(
            reply,
            503,
            'too_stale',
            `this node last heard from a leader ${Number.isFinite(lag) ? `${Math.round(lag)} ms ago` : 'never'}, more than max_lag_ms=${limit}`,
            { 'retry-after': '1' },
          );
          return null;
        }
      }
      return { consistency: 'stale', readIndex: node.appliedIndex };
    }
    if (consistency === 'log') {
      // Commit and apply a barrier entry, then read: linearizable the slow way, one log entry
      // (and an fsync on a majority) per read. Kept for comparison with ReadIndex.
      try {
        const result = await node.write(BARRIER);
        return { consistency: 'log', readIndex: result.index };
      } catch (error) {
        if (error instanceof NotLeaderError) {
          await notLeader(request, reply, query.redirect === 'true', error.leader);
          return null;
        }
        writeFailure(reply, error as Error);
        return null;
      }
    }
    try {
      return { consistency: 'linearizable', readIndex: await node.readBarrier() };
    } catch (error) {
      readFailure(reply, error as Error);
      return null;
    }
  };

  app.get('/kv/*', { schema: { querystring: schemas.readQuery } }, async (request, reply) => {
    const key = parseKey((request.params as Record<string, string>)['*'], limits.maxKeyBytes);
    if (!key.ok) return sendError(reply, 400, 'bad_key', key.message);
    const point = await readPoint(request, reply, request.query);
    if (point === null) return reply;
    const entry = kv.getEntrySync(key.key);
    reply.headers(readHeaders(node.appliedIndex, point));
    if (entry === undefined) return sendErrorAnswer(reply, KEY_NOT_FOUND);
    return reply.headers(keyMetaHeaders(entry.meta)).type('application/octet-stream').send(asBuffer(entry.value));
  });

  app.get('/kv', { schema: { querystring: schemas.scanQuery } }, async (request, reply) => {
    const query = request.query;
    const limit = query.limit ?? Math.min(100, limits.maxPageSize);
    const prefix = queryBytes(query.prefix);
    const start = queryBytes(query.start);
    const point = await readPoint(request, reply, query);
    if (point === null) return reply;
    const body = await kv.scanJson({
      limit,
      ...(prefix === undefined ? {} : { prefix }),
      ...(start === undefined ? {} : { start }),
    });
    reply.headers(readHeaders(node.appliedIndex, point));
    return reply.type('application/json; charset=utf-8').send(asBuffer(body));
  });

  /** The values of `keys` (each checked by parseKey) at the consistency `query` asks for. */
  const mget = async (
    request: FastifyRequest,
    reply: FastifyReply,
    query: ReadQuery,
    keys: Uint8Array[],
  ): Promise<FastifyReply> => {
    const point = await readPoint(request, reply, query);
    if (point === null) return reply;
    const answer = await kv.getManyJson(keys);
    if ('tooLarge' in answer) {
      const { fit } = answer.tooLarge;
      return sendError(
        reply,
        413,
        'answer_too_large',
        `the values of these ${keys.length} keys come to more than limits.maxResponseBytes (${limits.maxResponseBytes} bytes of JSON; ` +
          `values that are not UTF-8 count 4/3 of their size, in base64): ask for fewer keys per request` +
          `${fit > 0 ? ` (the first ${fit} fit)` : ''}, or read big values one at a time with GET /kv/<key>`,
      );
    }
    reply.headers(readHeaders(node.appliedIndex, point));
    return reply.type('application/json; charset=utf-8').send(asBuffer(answer.json));
  };

  // The /mget body is JSON whatever its content type says (`curl -d` sends it as a form), so it has
  // a parser of its own, in a scope of its own: every other body is raw bytes.
  void app.register(async (plain) => {
    const scope = plain.withTypeProvider<TypeBoxTypeProvider>();
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => {
      try {
        done(null, JSON.parse(String(body)));
      } catch {
        done(Object.assign(new Error('the body must be JSON: {"keys":["a","b"]}'), { statusCode: 400 }), undefined);
      }
    });
    const schema = { querystring: schemas.readQuery, body: schemas.mgetBody };
    scope.post('/mget', { schema }, async (request, reply) => {
      const keys: Uint8Array[] = [];
      for (const k of request.body.keys) {
        const key = parseKey(k, limits.maxKeyBytes);
        if (!key.ok) return sendError(reply, 400, 'bad_key', `${JSON.stringify(k)}: ${key.message}`);
        keys.push(key.key);
      }
      return mget(request, reply, request.query, keys);
    });
  });

  // --- operations -----------------------------------------------------------------------------

  app.get('/status', async () => {
    const status = node.status();
    return {
      id: options.nodeId,
      clusterId: options.clusterId,
      role: status.role,
      term: status.term,
      leader: status.leader || null,
      leaderClientUrl: status.leader === '' ? null : (clientUrlOf(status.leader) ?? null),
      commit: status.commit,
      applied: status.applied,
      firstIndex: status.firstIndex,
      lastIndex: status.lastIndex,
      snapshot: status.snapshot ?? null,
      progress: status.progress,
      // The leader says how far behind every other member is (a learner is promoted once it is close).
      members: memberViews(node.membership).map((m) => {
        const lag = m.id === options.nodeId ? null : node.lagOf(m.id);
        return lag === null ? m : { ...m, lagEntries: lag };
      }),
      pending: node.pending,
      uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
    };
  });

  app.get('/livez', async (_request, reply) =>
    options.live()
      ? { live: true }
      : sendError(reply, 503, 'not_live', 'the node is stopping or stopped on a fatal error'),
  );

  app.get('/readyz', async (_request, reply) => {
    const soft = node.softState;
    if (!options.live()) return sendError(reply, 503, 'not_ready', 'the node is stopping or stopped on a fatal error');
    if (soft.leader === '')
      return sendError(reply, 503, 'not_ready', 'no leader is known: this node cannot serve linearizable requests yet');
    return { ready: true, role: soft.role, leader: soft.leader, term: soft.term };
  });

  app.get('/metrics', async (_request, reply) => {
    if (options.metrics === undefined) return sendError(reply, 404, 'not_found', 'metrics are disabled');
    options.metrics.observe(node.status());
    memberMetrics?.observe(node.membership, options.nodeId, (id) => node.lagOf(id));
    return reply.type(options.metrics.contentType).send(await options.metrics.text());
  });

  return app;
}

function writeFailure(reply: FastifyReply, error: Error): FastifyReply {
  const answer = writeFailureAnswer(error);
  if (answer === undefined) throw error;
  return sendErrorAnswer(reply, answer);
}

function readFailure(reply: FastifyReply, error: Error): FastifyReply {
  const answer = readFailureAnswer(error);
  if (answer === undefined) throw error;
  return sendErrorAnswer(reply, answer);
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export type ClientApi = ReturnType<typeof buildClientApi>;
