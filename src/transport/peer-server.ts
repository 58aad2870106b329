// The peer listener: POST /raft/messages, its stream form GET /raft/stream (stream-server.ts: the
// same checks and answers, per frame), and, on nodes started with fault injection, the fault
// switch routes. Clients never reach this port; every route demands the cluster's peer token and
// cluster id.
//
// Checks on POST /raft/messages, in order, each answered with a JSON error and a rate-limited log
// line: bearer token (401), cluster id (403), sender is a cluster member (403), [fault switch:
// dropFrom (503)], body size (413), decodable and well-formed (400 bad-message; codec.ts bounds what
// a body may decode into before decoding it), entries of types this build can apply (400
// unsupported-entry-type), every message from the sender and to us (400). The first three run in onRequest, before a byte of the body is read, so an
// unauthenticated peer cannot make us buffer or decode anything.
//
// Replies: a sender that says so (REPLIES_HEADER) gets the acknowledgements its batch produced in
// the answer (200, msgpack) instead of in a request of ours: one peer request per round instead of
// two. Heartbeat acknowledgements are answered at once; with `heartbeat,append` the answer to a
// batch carrying appends waits until the node has them on disk and carries their
// acknowledgements too (onMessages then returns a promise). Not while the fault switch cuts our
// link to the sender (dropTo), when asked or when answered: the acknowledgements then take the
// normal path, or are dropped, as the switch would drop them.
//
// Invariant: nothing a peer sends can crash the process. Fastify/Node turn malformed HTTP into
// `clientError` (handled here: log, destroy the socket), the codec turns malformed bodies into
// BadMessageError, and a throwing onMessages callback is caught and answered 500.

import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import type { Logger } from 'pino';
import Type from 'typebox';
import type { Message, NodeId } from '../raft/types.js';
import { formatSchemaErrors, SchemaValidationError, typeboxValidatorCompiler } from '../schema/fastify-validation.js';
import { BearerVerifier } from './auth.js';
import { BadMessageError, decodeMessages, encodeMessages } from './codec.js';
import type { FaultSwitch } from './faults.js';
import { LogLimiter } from './log-limiter.js';
import { MessageStreams } from './stream-server.js';
import {
  CLUSTER_HEADER,
  DEFAULT_BODY_LIMIT,
  FAULTS_PATH,
  FROM_HEADER,
  MESSAGES_PATH,
  MSGPACK_CONTENT_TYPE,
  REPLIES_HEADER,
  replyModeOf,
  type ReplyMode,
  SEQ_HEADER,
  SNAPSHOT_BODY_LIMIT,
  SNAPSHOT_PATH,
  TERM_HEADER,
  TRANSFER_HEADER,
  type BatchAnswer,
  type ErrorBody,
  type Refusal,
} from './protocol.js';

/** One frame of a snapshot transfer, as the peer server hands it on (src/snapshot/receiver.ts). */
export interface SnapshotFrame {
  readonly from: NodeId;
  readonly transfer: string;
  readonly seq: number;
  readonly term: number;
  readonly body: Uint8Array;
}

export type SnapshotFrameAnswer =
  { readonly status: 204 } | { readonly status: 400 | 409 | 503; readonly error: string; readonly message: string };

export interface PeerServerOptions {
  readonly host: string;
  /** 0 picks a free port; listen() returns the one bound. */
  readonly port: number;
  readonly selfId: NodeId;
  /** The other members of the cluster (selfId may be included; it is accepted as a sender too). */
  readonly peers: readonly NodeId[];
  readonly clusterId: string;
  readonly token: string;
  /** Largest accepted body of POST /raft/messages, in bytes (default 32 MiB). */
  readonly bodyLimit?: number;
  readonly logger: Logger;
  /**
   * Receives every valid batch, synchronously, before the answer goes out. With `replies` other
   * than 'none' the sender takes messages in the answer: what this returns (or the promise it
   * returns resolves with, for 'append') goes back to it (200, msgpack); nothing, or `replies`
   * 'none', answers 204.
   */
  readonly onMessages: (
    from: NodeId,
    messages: Message[],
    replies: ReplyMode,
  ) => readonly Message[] | Promise<readonly Message[]> | void;
  /** Receives the frames of snapshot transfers (POST /raft/snapshot); without it the route does not exist. */
  readonly onSnapshotFrame?: (frame: SnapshotFrame) => Promise<SnapshotFrameAnswer>;
  /** Fault injection is enabled iff a switch is given: only then do /raft/faults routes exist. */
  readonly faults?: FaultSwitch;
  /** Interval of the per-source log rate limit (default 10 s). */
  readonly logIntervalMs?: number;
}

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/** The fault routes take a few node ids; nothing legitimate comes near this. */
const FAULTS_BODY_LIMIT = 64 * 1024;
/** A whole request must arrive within this; bounds what a slow or stuck sender can hold open. */
const REQUEST_TIMEOUT_MS = 30_000;
/**
 * Idle keep-alive connections live this long. The client closes its idle sockets sooner
 * (peer-client.ts), so in the normal case it is never the server that closes a socket under a
 * request about to be sent.
 */
const KEEP_ALIVE_TIMEOUT_MS = 60_000;

/** Error codes of the 4xx answers fastify itself produces (see onError). */
const CLIENT_ERROR_CODES: ReadonlyMap<number, string> = new Map([
  [400, 'bad-request'],
  [413, 'body-too-large'],
  [415, 'unsupported-media-type'],
]);

export class PeerServer {
  private readonly app: FastifyInstance;
  private readonly verifier: BearerVerifier;
  private members: ReadonlySet<NodeId>;
  /** Nodes removed from the cluster: refused with `removed`, which tells them to stop. */
  private removed: ReadonlySet<NodeId> = new Set();
  private readonly bodyLimit: number;
  private readonly limiter: LogLimiter;
  private readonly log: Logger;
  private readonly streams: MessageStreams;

  constructor(private readonly options: PeerServerOptions) {
    this.verifier = new BearerVerifier(options.token);
    this.members = new Set([...options.peers, options.selfId]);
    this.bodyLimit = options.bodyLimit ?? DEFAULT_BODY_LIMIT;
    this.limiter = new LogLimiter(options.logIntervalMs ?? 10_000);
    this.log = options.logger.child({ component: 'peer-server', node: options.selfId });
    const loggerInstance: FastifyBaseLogger = this.log;
    this.app = Fastify({
      loggerInstance,
      // One log line per request at heartbeat rate would drown everything; rejections are logged
      // by this class, rate-limited.
      logController: new LogController({ disableRequestLogging: true }),
      bodyLimit: FAULTS_BODY_LIMIT,
      requestTimeout: REQUEST_TIMEOUT_MS,
      keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
      // close() must not wait for a stalled or hostile sender's connection.
      forceCloseConnections: true,
      exposeHeadRoutes: false,
      clientErrorHandler: (error, socket) => this.onClientError(error, socket),
      // Only the fault route has a schema (faultsBody); its refusals name the field.
      schemaErrorFormatter: formatSchemaErrors,
    });
    this.app.setValidatorCompiler(typeboxValidatorCompiler);
    this.registerRoutes();
    this.streams = new MessageStreams(
      {
        authRefusal: (headers) => this.authRefusal(headers),
        senderRefusal: (from, at) => this.senderRefusal(from, at),
        acceptBatch: (from, body, mode) => this.acceptBatch(from, body, mode),
        logRefusal: (source, from, method, url, refusal) => this.logRefusal(source, from, method, url, refusal),
      },
      this.bodyLimit,
      this.log,
    );
    this.streams.attach(this.app.server);
  }

  /** Message streams open now (stream-server.ts). */
  openStreams(): number {
    return this.streams.size;
  }

  /**
   * Who may send to us now (the membership changed): a removed node is refused (403) from now on,
   * with the code `removed`, so that it learns it was removed even if its own log never will.
   */
  setMembers(peers: readonly NodeId[], removed: readonly NodeId[] = []): void {
    this.members = new Set([...peers, this.options.selfId]);
    this.removed = new Set(removed);
  }

  async listen(): Promise<ListenAddress> {
    await this.app.listen({ host: this.options.host, port: this.options.port });
    const address = this.app.server.address();
    if (address === null || typeof address === 'string') throw new Error('peer server is not bound to a TCP port');
    return { host: address.address, port: address.port };
  }

  async close(): Promise<void> {
    // Upgraded sockets are no longer the HTTP server's: close() would not wait for them, nor end them.
    this.streams.closeAll();
    await this.app.close();
    this.streams.closeAll();
  }

  // ---------------------------------------------------------------------------------------------

  private registerRoutes(): void {
    const app = this.app;
    // Messages arrive as one raw buffer; decoding happens in the handler so that its failures are
    // answered 400 by this class rather than by fastify's generic error path.
    app.addContentTypeParser(
      MSGPACK_CONTENT_TYPE,
      { parseAs: 'buffer', bodyLimit: this.bodyLimit },
      (_request, body, done) => done(null, body),
    );
    app.setErrorHandler((error: FastifyError, request, reply) => this.onError(error, request, reply));
    app.setNotFoundHandler((request, reply) => {
      this.reject(request, reply, 404, 'not-found', 'no such route on the peer port', true);
    });

    app.post(
      MESSAGES_PATH,
      { bodyLimit: this.bodyLimit, onRequest: async (request, reply) => this.admitPeer(request, reply) },
      (request, reply) => this.handleMessages(request, reply),
    );

    const onSnapshotFrame = this.options.onSnapshotFrame;
    if (onSnapshotFrame !== undefined) {
      app.addContentTypeParser(
        'application/octet-stream',
        { parseAs: 'buffer', bodyLimit: SNAPSHOT_BODY_LIMIT },
        (_request, body, done) => done(null, body),
      );
      app.post(
        SNAPSHOT_PATH,
        { bodyLimit: SNAPSHOT_BODY_LIMIT, onRequest: async (request, reply) => this.admitPeer(request, reply) },
        async (request, reply) => this.handleSnapshotFrame(onSnapshotFrame, request, reply),
      );
    }

    const faults = this.options.faults;
    if (faults !== undefined) {
      // Authentication runs first (onRequest): only the cluster's peers learn what the body must be.
      const onRequest = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
        this.authenticate(request, reply);
      };
      app.get(FAULTS_PATH, { onRequest }, (_request, reply) => {
        void reply.code(200).send(faults.snapshot());
      });
      const schema = { body: this.faultsBody() };
      app.withTypeProvider<TypeBoxTypeProvider>().put(FAULTS_PATH, { onRequest, schema }, (request, reply) => {
        // The schema admitted lists of ids; absent lists mean "no such faults". Whether each is a
        // peer is asked of the membership now: a schema compiled at start refused a member added
        // since (chaos seed 259 could not partition its replacement nodes).
        const stranger = this.notAPeer(request.body);
        if (stranger !== undefined) {
          this.reject(request, reply, 400, 'bad-faults', stranger);
          return;
        }
        faults.set(request.body);
        const state = faults.snapshot();
        this.log.warn({ faults: state }, 'fault injection changed');
        void reply.code(200).send(state);
      });
    }
  }

  /**
   * PUT /raft/faults: `{"dropTo": [...], "dropFrom": [...]}`, each list optional and made of the ids
   * of this node's peers (not its own, checked by `notAPeer`); any other key is refused, naming the
   * known ones.
   */
  private faultsBody() {
    const peerId = Type.String({ minLength: 1, description: 'a peer id' });
    const peerIds = Type.Array(peerId, { description: 'an array of peer ids' });
    return Type.Object(
      { dropTo: Type.Optional(peerIds), dropFrom: Type.Optional(peerIds) },
      { additionalProperties: false, description: 'a JSON object {"dropTo":[peer ids],"dropFrom":[peer ids]}' },
    );
  }

  /**
   * What is wrong with a fault body whose ids are not all peers of this node, if anything: members
   * now, and members removed (they may still send, and a chaos run that has not retired one yet
   * still partitions it). A member added on the leader that this node has not applied yet is not
   * known here: the chaos run retries its 400 until the node has caught up.
   */
  private notAPeer(body: {
    readonly dropTo?: readonly string[];
    readonly dropFrom?: readonly string[];
  }): string | undefined {
    const peers = [...this.members].filter((id) => id !== this.options.selfId).sort();
    const known = (id: string): boolean => id !== this.options.selfId && (this.members.has(id) || this.removed.has(id));
    for (const field of ['dropTo', 'dropFrom'] as const) {
      const ids = body[field] ?? [];
      const at = ids.findIndex((id) => !known(id));
      if (at >= 0)
        return `body/${field}/${at} must be the id of a peer of this node (${peers.join(', ')}), got ${JSON.stringify(ids[at])}`;
    }
    return undefined;
  }

  /** 401/403 unless the request carries our token and cluster id. Returns whether it passed. */
  private authenticate(request: FastifyRequest, reply: FastifyReply): boolean {
    const refusal = this.authRefusal(request.headers);
    if (refusal !== undefined) this.refuse(request, reply, refusal);
    return refusal === undefined;
  }

  /** Why a request (or a stream's upgrade) with these headers is not from a peer of this cluster. */
  private authRefusal(headers: IncomingHttpHeaders): Refusal | undefined {
    if (!this.verifier.verify(headers.authorization)) {
      return { status: 401, code: 'unauthorized', message: 'missing or wrong peer token', close: true };
    }
    if (headers[CLUSTER_HEADER] !== this.options.clusterId) {
      const message = `this node belongs to cluster ${this.options.clusterId}`;
      return { status: 403, code: 'wrong-cluster', message, close: true };
    }
    return undefined;
  }

  /**
   * Why messages from `from` are not taken now: a removed node, a non-member, or the fault switch's
   * dropFrom (503, not logged: the chaos run that set the fault knows, and it would fire at
   * heartbeat rate). Checked per request, and per frame of a stream (membership and faults change);
   * at a stream's upgrade only a removed node, or a request naming no sender, is refused (the frames
   * get the rest: a joining node's stream must not be refused because it arrived before the change
   * that adds it was applied here).
   */
  private senderRefusal(from: unknown, at: 'upgrade' | 'message' = 'message'): Refusal | undefined {
    if (typeof from === 'string' && this.removed.has(from)) {
      return {
        status: 403,
        code: 'removed',
        message: `${from} was removed from the cluster: it must stop`,
        close: true,
      };
    }
    if (typeof from !== 'string' || from === '' || (at === 'message' && !this.members.has(from))) {
      const message = 'X-Raftkv-From does not name a member of this cluster';
      return { status: 403, code: 'unknown-sender', message, close: true };
    }
    if (at === 'message' && this.options.faults?.dropFrom.has(from) === true) {
      return {
        status: 503,
        code: 'fault-injected',
        message: `messages from ${from} are dropped by fault injection`,
        quiet: true,
      };
    }
    return undefined;
  }

  /** authenticate, then the sender must be a member, then the fault switch may cut it off. */
  private admitPeer(request: FastifyRequest, reply: FastifyReply): void {
    if (!this.authenticate(request, reply)) return;
    const refusal = this.senderRefusal(request.headers[FROM_HEADER]);
    if (refusal !== undefined) this.refuse(request, reply, refusal);
  }

  private handleMessages(request: FastifyRequest, reply: FastifyReply): void {
    // admitPeer let the request through, so the header is a member's id.
    const from = String(request.headers[FROM_HEADER]);
    const body = request.body;
    if (!Buffer.isBuffer(body)) {
      this.reject(request, reply, 415, 'unsupported-media-type', `the body must be ${MSGPACK_CONTENT_TYPE}`);
      return;
    }
    const answer = this.acceptBatch(from, body, replyModeOf(request.headers[REPLIES_HEADER]));
    if (answer instanceof Promise) void answer.then((settled) => this.sendAnswer(request, reply, settled));
    else this.sendAnswer(request, reply, answer);
  }

  /** A batch's answer as an HTTP answer. */
  private sendAnswer(request: FastifyRequest, reply: FastifyReply, answer: BatchAnswer): void {
    if ('code' in answer) this.refuse(request, reply, answer);
    else if (answer.status === 204) void reply.code(204).send();
    else {
      const { body } = answer;
      void reply
        .code(200)
        .header('content-type', MSGPACK_CONTENT_TYPE)
        .send(Buffer.from(body.buffer, body.byteOffset, body.byteLength));
    }
  }

  /**
   * Decodes, checks and hands over one batch from `from` (admitted already), and says what to
   * answer: the same for a POST body and for a stream's frame. A promise when the answer waits
   * for the acknowledgements of appends (mode 'append'); it never rejects.
   */
  private acceptBatch(from: NodeId, body: Buffer, asked: ReplyMode): BatchAnswer | Promise<BatchAnswer> {
    let messages: Message[];
    try {
      messages = decodeMessages(body);
    } catch (error) {
      if (!(error instanceof BadMessageError)) throw error;
      return { status: 400, code: error.code, message: error.message };
    }
    for (const m of messages) {
      if (m.from !== from) {
        return { status: 400, code: 'sender-mismatch', message: `a message claims to be from ${m.from}, not ${from}` };
      }
      if (m.to !== this.options.selfId) {
        return {
          status: 400,
          code: 'wrong-recipient',
          message: `a message is addressed to ${m.to}, not ${this.options.selfId}`,
        };
      }
    }
    const mode = this.options.faults?.dropTo.has(from) === true ? 'none' : asked;
    let replies: readonly Message[] | Promise<readonly Message[]> | void;
    try {
      replies = this.options.onMessages(from, messages, mode);
    } catch (error) {
      this.log.error({ err: error, from }, 'onMessages threw; answering 500');
      return { status: 500, code: 'internal', message: 'the node failed to accept the messages', quiet: true };
    }
    if (mode === 'none' || replies === undefined) return { status: 204 };
    if (!(replies instanceof Promise)) return this.repliesAnswer(from, replies);
    return replies.then(
      (held) => this.repliesAnswer(from, held),
      (error: unknown): BatchAnswer => {
        this.log.error({ err: error, from }, 'the held answer failed; answering 500');
        return { status: 500, code: 'internal', message: 'the node failed to acknowledge the messages', quiet: true };
      },
    );
  }

  /** 200 with `replies` (msgpack), 204 when there are none or the fault switch now cuts the link. */
  private repliesAnswer(from: NodeId, replies: readonly Message[]): BatchAnswer {
    if (replies.length === 0 || this.options.faults?.dropTo.has(from) === true) return { status: 204 };
    return { status: 200, body: encodeMessages(replies) };
  }

  private async handleSnapshotFrame(
    onSnapshotFrame: (frame: SnapshotFrame) => Promise<SnapshotFrameAnswer>,
    request: FastifyRequest,
    reply: FastifyReply,
  ): Promise<void> {
    const from = String(request.headers[FROM_HEADER]);
    const transfer = request.headers[TRANSFER_HEADER];
    const seq = Number(request.headers[SEQ_HEADER]);
    const term = Number(request.headers[TERM_HEADER]);
    const body = request.body;
    if (
      typeof transfer !== 'string' ||
      !/^[0-9a-f]{1,64}$/.test(transfer) ||
      !Number.isSafeInteger(seq) ||
      seq < 0 ||
      !Number.isSafeInteger(term) ||
      term < 1
    ) {
      this.reject(
        request,
        reply,
        400,
        'bad-snapshot',
        `a snapshot frame needs ${TRANSFER_HEADER} (hex), ${SEQ_HEADER} (>= 0) and ${TERM_HEADER} (>= 1)`,
      );
      return;
    }
    if (!Buffer.isBuffer(body)) {
      this.reject(request, reply, 415, 'unsupported-media-type', 'a snapshot frame is application/octet-stream');
      return;
    }
    const answer = await onSnapshotFrame({ from, transfer, seq, term, body });
    if (answer.status === 204) {
      void reply.code(204).send();
      return;
    }
    this.reject(request, reply, answer.status, answer.error, answer.message);
  }

  /** Errors from fastify itself: body too large, unsupported content type, malformed JSON, schemas... */
  private onError(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
    if (error instanceof SchemaValidationError) {
      // The fault route's body is the only thing on this port with a schema.
      this.reject(request, reply, 400, 'bad-faults', error.message);
      return;
    }
    const given = error.statusCode ?? 500;
    const status = given >= 400 && given < 500 ? given : 500;
    if (status === 500) {
      this.log.error({ err: error, url: request.url }, 'peer request failed');
      void reply.code(500).send(errorBody('internal', 'internal error'));
      return;
    }
    const code = CLIENT_ERROR_CODES.get(status) ?? 'client-error';
    // A rejected oversized body may still be streaming in: do not keep the connection to drain it.
    this.reject(request, reply, status, code, error.message, status === 413);
  }

  /** Answers a JSON error and logs it, at most once per interval per (source, code). */
  private reject(
    request: FastifyRequest,
    reply: FastifyReply,
    status: number,
    code: string,
    message: string,
    close = false,
  ): void {
    this.refuse(request, reply, { status, code, message, close });
  }

  /** Answers a refusal as a JSON error, logged unless it is quiet. */
  private refuse(request: FastifyRequest, reply: FastifyReply, refusal: Refusal): void {
    this.logRefusal(request.ip, request.headers[FROM_HEADER], request.method, request.url, refusal);
    // Unauthenticated or lost callers get no keep-alive: Node would otherwise drain whatever body
    // they send.
    if (refusal.close === true) void reply.header('connection', 'close');
    void reply.code(refusal.status).send(errorBody(refusal.code, refusal.message));
  }

  /** Logs a refusal (unless quiet), at most once per interval per (source, code). */
  private logRefusal(source: string | undefined, from: unknown, method: string, url: string, refusal: Refusal): void {
    if (refusal.quiet === true) return;
    const suppressed = this.limiter.admit(`${source} ${refusal.code}`);
    if (suppressed === null) return;
    const { status, code } = refusal;
    const fields = { source, from, method, url: url.slice(0, 100), status, code, suppressed };
    this.log.warn(fields, `rejected peer request: ${refusal.message}`);
  }

  /** Bytes that are not HTTP (or HTTP Node refuses): log once per source per interval, drop the socket. */
  private onClientError(error: Error & { code?: string }, socket: Socket): void {
    // A reset is a peer going away mid-request (a restart, a killed process): not worth a line.
    if (error.code !== 'ECONNRESET' && !socket.destroyed) {
      const source = socket.remoteAddress ?? 'unknown';
      const suppressed = this.limiter.admit(`${source} client-error`);
      if (suppressed !== null) {
        const message = `dropped a connection that sent malformed HTTP: ${error.message}`;
        this.log.warn({ source, code: error.code, suppressed }, message);
      }
    }
    socket.destroy();
  }
}

function errorBody(error: string, message: string): ErrorBody {
  return { error, message };
}
