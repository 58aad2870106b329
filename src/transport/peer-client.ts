// The sending side towards one peer, one lane of it (peer-transport.ts: appends, or everything
// else): an undici Pool and a bounded, coalescing outbound queue. Batches go over a message stream
// (peer-stream.ts: the lane's connection upgraded, a frame per batch) when the peer takes one, else
// as POSTs; either way one batch is in flight and its answer means the same (`post` below).
//
// Policy:
// - send() only enqueues and schedules a flush on a microtask; it never blocks or awaits, so the
//   driver's Ready loop is never held up by a slow peer. Every send() made in one synchronous run
//   (say, a Ready's messages and persistedMessages) leaves in the same request.
// - At most one request is in flight per peer. While it is, new messages accumulate and leave
//   together in ONE request when it completes. Batches therefore grow with the round-trip time on
//   their own, so throughput does not depend on pipelining, and messages leave in the order the
//   core produced them (no reordered appends, hence no spurious rejects and re-probes).
// - The queue is bounded in messages and bytes and drops its oldest messages beyond that
//   (outbound-queue.ts says why the oldest); drops are counted, and a dropped append is reported to
//   the core as the peer being unreachable (it probes and resends rather than wait on it). A
//   request carries at most MAX_MESSAGES_PER_BODY messages and MAX_ENTRIES_PER_BODY entries (what
//   the peer's decoder accepts); the rest of the queue goes in the next one.
// - A failed request (refused, reset, timeout, non-2xx) reports the peer unreachable (the core stops
//   streaming to it and probes) and drops the queue instead of letting it grow against a dead peer.
//   Repeated failures log at most once per interval; the first success after failures logs recovery.
//   There is no backoff: the core's probe state already limits traffic to an unreachable peer to
//   about one append per heartbeat interval, and a refused connection costs next to nothing.
// - Keep-alive recovery: a request that fails on a socket the peer had closed (it restarted) fails
//   with a socket error, not a refusal. undici does not retry a POST, so the client retries it once,
//   at once, on a fresh connection, provided the previous request to this peer had succeeded (a
//   stale socket is only possible after a success). A resend may duplicate messages, which Raft
//   tolerates like any duplicate the network makes.
// - Replies: with `onReplies` given, requests say they take messages in the answer (REPLIES_HEADER),
//   and the peer answers a batch with the acknowledgements of its heartbeats at once, and of its
//   appends once they are on the peer's disk (peer-server.ts): one peer request per append instead
//   of two, and the batches grow by what accumulates meanwhile. Those are checked like any message
//   from the peer (well-formed, from it, to us, heartbeatResp or appResp only) and handed to
//   onReplies; the fault switch's dropFrom drops them as the server would.

import { Pool } from 'undici';
import type { Logger } from 'pino';
import type { Message, NodeId } from '../raft/types.js';
import {
  BadMessageError,
  decodeMessages,
  encodeMessages,
  MAX_ENTRIES_PER_BODY,
  MAX_MESSAGES_PER_BODY,
} from './codec.js';
import type { FaultSwitch } from './faults.js';
import { LogLimiter } from './log-limiter.js';
import { OutboundQueue } from './outbound-queue.js';
import { keepErrorStart, post, type PostResult } from './peer-post.js';
import { PeerStream } from './peer-stream.js';
import {
  CLUSTER_HEADER,
  FROM_HEADER,
  MAX_REPLY_BYTES,
  MESSAGES_PATH,
  MSGPACK_CONTENT_TYPE,
  REPLIES_HEADER,
  REPLIES_HEARTBEAT_AND_APPEND,
} from './protocol.js';

export const DEFAULT_MAX_QUEUE_MESSAGES = 10_000;
/** Well under the server's default 32 MiB body limit, so a full queue always fits one request. */
export const DEFAULT_MAX_QUEUE_BYTES = 8 * 1024 * 1024;
/**
 * Deadline of a whole request (connect, send, answer). Twice the default election timeout (10 ticks
 * of 50 ms): a SIGSTOPped peer accepts connections (the kernel does) but never answers, and must not
 * pin the one in-flight request for longer than the cluster takes to notice it is gone. A full
 * default-size queue (8 MiB) takes well under this on any LAN.
 */
export const DEFAULT_REQUEST_TIMEOUT_MS = 1_000;
/** Idle sockets are closed by us before the server's 60 s keep-alive timeout can close them under us. */
const CLIENT_KEEP_ALIVE_MS = 30_000;
/**
 * After a peer refused the stream's upgrade (an older node answers 404), batches are posted for
 * this long before the upgrade is tried again (the peer may have been upgraded meanwhile).
 */
export const STREAM_RETRY_MS = 30_000;
/** Error codes of a socket the other side closed or reset: what a stale keep-alive socket gives. */
const STALE_SOCKET_CODES: ReadonlySet<string> = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE']);

export interface PeerStats {
  /** Requests answered 2xx. */
  readonly sentRequests: number;
  /** Of those, the ones sent over a message stream (the rest were POSTs). */
  readonly streamedRequests: number;
  /** Messages in those requests. */
  readonly sentMessages: number;
  /** Messages dropped by the queue bounds, by failed requests and by the queue drop after a failure. */
  readonly dropped: number;
  /** Messages dropped by the fault switch (dropTo; dropFrom for replies). */
  readonly faultDropped: number;
  /** Messages received in answers and handed to onReplies. */
  readonly replies: number;
  /** Answers whose messages were refused (malformed, not from the peer, not to us, too large). */
  readonly badReplies: number;
  /** Failed requests (after the one stale-socket retry, if any). */
  readonly failures: number;
  /** Stale-socket retries made. */
  readonly retries: number;
  /** Messages in the request in flight (0 when none is). */
  readonly inFlight: number;
  readonly queued: number;
  readonly queuedBytes: number;
}

export interface PeerClientOptions {
  readonly selfId: NodeId;
  readonly peerId: NodeId;
  /** The peer's base URL, e.g. http://127.0.0.1:7102 (no path). */
  readonly baseUrl: string;
  readonly clusterId: string;
  readonly token: string;
  readonly logger: Logger;
  readonly onUnreachable: (peer: NodeId) => void;
  /**
   * The peer refused us as a node removed from the cluster (403 `removed`): its applied membership
   * says so. This node's own log may never tell it (the leader no longer replicates to it).
   */
  readonly onRemoved?: (peer: NodeId) => void;
  /** Messages the peer put in its answers; without it, requests do not ask for any. */
  readonly onReplies?: (peer: NodeId, messages: Message[]) => void;
  readonly faults?: FaultSwitch;
  readonly maxQueueMessages?: number;
  readonly maxQueueBytes?: number;
  readonly requestTimeoutMs?: number;
  /** Repeated failures to this peer log at most once per interval (default 10 s). */
  readonly failureLogIntervalMs?: number;
  /** How long batches are posted after the peer refused a message stream (default STREAM_RETRY_MS). */
  readonly streamRetryMs?: number;
}

type Outcome =
  | { readonly ok: true; readonly replies: Message[]; readonly streamed: boolean }
  | { readonly ok: false; readonly staleSocket: boolean; readonly reason: string; readonly removed?: true };

export class PeerClient {
  private readonly pool: Pool;
  private readonly stream: PeerStream;
  /** Batches are posted, not streamed, until then (performance.now(); the peer refused the upgrade). */
  private postUntil = 0;
  private readonly queue: OutboundQueue;
  private readonly headers: Record<string, string>;
  private readonly log: Logger;
  private readonly failureLog: LogLimiter;
  private readonly timeoutMs: number;

  private flushScheduled = false;
  private closed = false;
  /** Messages in the request in flight; 0 iff no request is in flight. */
  private inFlight = 0;
  /** The last request succeeded (or none was made): a socket error now may be a stale socket. */
  private healthy = true;
  private failuresSinceSuccess = 0;

  private sentRequests = 0;
  private streamedRequests = 0;
  private sentMessages = 0;
  private dropped = 0;
  private faultDropped = 0;
  private repliesReceived = 0;
  private badReplies = 0;
  private failures = 0;
  private retries = 0;

  get baseUrl(): string {
    return this.options.baseUrl;
  }

  constructor(private readonly options: PeerClientOptions) {
    const url = new URL(options.baseUrl);
    if (url.pathname !== '/' || url.search !== '') throw new Error(`peer URL ${options.baseUrl} must not have a path`);
    const timeout = (this.timeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS);
    this.pool = new Pool(url.origin, {
      // One request in flight at a time needs one socket; undici reconnects on demand.
      connections: 1,
      pipelining: 1,
      // undici's own timeouts are backstops only: its header and body timers have a resolution of
      // about a second, so the precise deadline is the timer of each request (peer-post.ts).
      connectTimeout: timeout,
      headersTimeout: timeout,
      bodyTimeout: timeout,
      keepAliveTimeout: CLIENT_KEEP_ALIVE_MS,
      keepAliveMaxTimeout: CLIENT_KEEP_ALIVE_MS,
    });
    this.queue = new OutboundQueue(
      options.maxQueueMessages ?? DEFAULT_MAX_QUEUE_MESSAGES,
      options.maxQueueBytes ?? DEFAULT_MAX_QUEUE_BYTES,
    );
    this.headers = {
      authorization: `Bearer ${options.token}`,
      [CLUSTER_HEADER]: options.clusterId,
      [FROM_HEADER]: options.selfId,
      'content-type': MSGPACK_CONTENT_TYPE,
      ...(options.onReplies === undefined ? {} : { [REPLIES_HEADER]: REPLIES_HEARTBEAT_AND_APPEND }),
    };
    // The upgrade request has no body: every header of a POST but its content type.
    this.stream = new PeerStream(
      this.pool,
      Object.fromEntries(Object.entries(this.headers).filter(([name]) => name !== 'content-type')),
    );
    this.log = options.logger.child({ component: 'peer-client', node: options.selfId, peer: options.peerId });
    // Three keys ('failure', 'recovery', 'bad-reply'): a smaller bound would evict one of them and
    // let its next line through early.
    this.failureLog = new LogLimiter(options.failureLogIntervalMs ?? 10_000, 3);
  }

  /** Queues a message for the peer. Never blocks; the flush happens on a microtask. */
  enqueue(message: Message): void {
    if (this.closed) return;
    const appendsDropped = this.queue.droppedAppends;
    this.dropped += this.queue.push(message);
    // The core counts every append it sent as in flight: one lost here must not go unnoticed, or
    // the follower rejects the next one and the window may stay full. Reporting the peer unreachable
    // makes the core probe and resend from what the follower has.
    if (this.queue.droppedAppends > appendsDropped) this.reportUnreachable();
    this.scheduleFlush();
  }

  stats(): PeerStats {
    return {
      sentRequests: this.sentRequests,
      streamedRequests: this.streamedRequests,
      sentMessages: this.sentMessages,
      dropped: this.dropped,
      faultDropped: this.faultDropped,
      replies: this.repliesReceived,
      badReplies: this.badReplies,
      failures: this.failures,
      retries: this.retries,
      inFlight: this.inFlight,
      queued: this.queue.length,
      queuedBytes: this.queue.bytes,
    };
  }

  /** Drops the queue and destroys the pool; a request in flight is aborted and not reported. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.queue.clear();
    this.stream.close();
    await this.pool.destroy();
  }

  // ---------------------------------------------------------------------------------------------

  private scheduleFlush(): void {
    if (this.flushScheduled || this.inFlight > 0 || this.closed) return;
    this.flushScheduled = true;
    queueMicrotask(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    if (this.closed || this.inFlight > 0 || this.queue.length === 0) return;
    if (this.options.faults?.dropTo.has(this.options.peerId) === true) {
      // faults.ts: a cut link behaves like a failed request, without the network.
      this.faultDropped += this.queue.clear();
      this.reportUnreachable();
      return;
    }
    // Split to what a peer's decoder accepts (codec.ts BODY_LIMITS); the rest goes in the next request.
    const batch = this.queue.take(MAX_MESSAGES_PER_BODY, MAX_ENTRIES_PER_BODY);
    let body: Uint8Array;
    try {
      body = encodeMessages(batch);
    } catch (error) {
      // Only a bug in the core could produce an unencodable message; losing it is safe.
      this.log.error({ err: error }, 'could not encode messages; dropped them');
      this.dropped += batch.length;
      this.scheduleFlush();
      return;
    }
    this.inFlight = batch.length;
    void this.deliver(body, batch.length);
  }

  /** Sends one batch (retrying once on a stale socket) and settles the outcome. Never rejects. */
  private async deliver(body: Uint8Array, count: number): Promise<void> {
    let outcome = await this.post(body);
    if (!outcome.ok && outcome.staleSocket && this.healthy && !this.closed) {
      this.retries++;
      this.log.debug({ reason: outcome.reason }, 'request failed on a reused connection; retrying once');
      outcome = await this.post(body);
    }
    this.inFlight = 0;
    if (this.closed) return;
    if (outcome.ok) {
      this.sentRequests++;
      if (outcome.streamed) this.streamedRequests++;
      this.sentMessages += count;
      // Both lines share the limiter, so a peer flapping at heartbeat rate logs at most one failure
      // and one recovery line per interval.
      if (!this.healthy && this.failureLog.admit('recovery') !== null) {
        this.log.info({ failures: this.failuresSinceSuccess }, 'peer reachable again');
      }
      this.healthy = true;
      this.failuresSinceSuccess = 0;
      this.deliverReplies(outcome.replies);
    } else {
      if (outcome.removed === true) this.options.onRemoved?.(this.options.peerId);
      this.failures++;
      this.failuresSinceSuccess++;
      this.healthy = false;
      this.dropped += count + this.queue.clear();
      const suppressed = this.failureLog.admit('failure');
      if (suppressed !== null) {
        this.log.warn(
          { reason: outcome.reason, failures: this.failuresSinceSuccess, suppressed },
          'peer unreachable; dropped its queue',
        );
      }
      this.reportUnreachable();
    }
    this.scheduleFlush();
  }

  /**
   * One batch, over the stream when the peer takes one (stream-server.ts), else as a POST. A peer
   * that refuses the upgrade (an older node: 404; or a refusal the POST then answers in full: 401,
   * 403 `removed`, ...) gets POSTs for STREAM_RETRY_MS.
   */
  private async post(body: Uint8Array): Promise<Outcome> {
    if (performance.now() >= this.postUntil) {
      const streamed = await this.stream.exchange(body, this.timeoutMs);
      if (streamed.kind !== 'refused') return this.outcome(streamed, true);
      this.postUntil = performance.now() + (this.options.streamRetryMs ?? STREAM_RETRY_MS);
      this.log.debug({ reason: streamed.error.message }, 'the peer refused a message stream; posting batches');
    }
    const result = await post(this.pool, {
      path: MESSAGES_PATH,
      headers: this.headers,
      body,
      timeoutMs: this.timeoutMs,
      keep: this.keep,
    });
    return this.outcome(result, false);
  }

  private outcome(result: PostResult, streamed: boolean): Outcome {
    if (result.kind === 'failed') {
      const { error } = result;
      const code = (error as { code?: unknown }).code;
      return {
        ok: false,
        staleSocket: typeof code === 'string' && STALE_SOCKET_CODES.has(code),
        reason: typeof code === 'string' ? `${code}: ${error.message}` : error.message,
      };
    }
    const { statusCode } = result;
    if (this.takesReplies(statusCode, result.contentType)) {
      return { ok: true, replies: this.checkReplies(result.body, result.incomplete), streamed };
    }
    if (statusCode >= 200 && statusCode < 300) return { ok: true, replies: [], streamed };
    // The start of an error answer, for the log (our peers answer short JSON errors); the rest
    // was not read: the URL might point at something that is not a raftkv peer.
    const snippet = result.body.toString('utf8');
    const reason = `HTTP ${statusCode} ${snippet}`;
    if (statusCode === 403 && errorCodeOf(snippet) === 'removed') {
      return { ok: false, staleSocket: false, reason, removed: true };
    }
    return { ok: false, staleSocket: false, reason };
  }

  /** An answer that carries messages for us: 200 with a msgpack body, asked for with onReplies. */
  private takesReplies(statusCode: number, contentType: string | undefined): boolean {
    return statusCode === 200 && contentType === MSGPACK_CONTENT_TYPE && this.options.onReplies !== undefined;
  }

  /** How much of an answer post() keeps: the messages in it, nothing of another 2xx, an error's start. */
  private readonly keep = (statusCode: number, contentType: string | undefined): number => {
    if (this.takesReplies(statusCode, contentType)) return MAX_REPLY_BYTES;
    return keepErrorStart(statusCode);
  };

  /**
   * The messages of an answer, checked like any message from the peer; [] (counted, logged at most
   * once per interval) if anything is wrong. The request itself succeeded either way: the peer got
   * our batch.
   */
  private checkReplies(body: Buffer, incomplete: string | undefined): Message[] {
    const refuse = (reason: string): Message[] => {
      this.badReplies++;
      const suppressed = this.failureLog.admit('bad-reply');
      if (suppressed !== null) this.log.warn({ reason, suppressed }, 'refused the messages in a peer answer');
      return [];
    };
    if (incomplete !== undefined) return refuse(`an incomplete answer: ${incomplete}`);
    let messages: Message[];
    try {
      messages = decodeMessages(body);
    } catch (error) {
      if (error instanceof BadMessageError) return refuse(error.message);
      throw error;
    }
    for (const m of messages) {
      if (
        (m.type !== 'heartbeatResp' && m.type !== 'appResp') ||
        m.from !== this.options.peerId ||
        m.to !== this.options.selfId
      ) {
        return refuse(`a ${m.type} from ${m.from} to ${m.to} in an answer of ${this.options.peerId}`);
      }
    }
    return messages;
  }

  private deliverReplies(messages: Message[]): void {
    // checkReplies runs only with onReplies given; without it every answer yields [].
    if (messages.length === 0) return;
    if (this.options.faults?.dropFrom.has(this.options.peerId) === true) {
      this.faultDropped += messages.length; // faults.ts: what the server side of a cut link drops
      return;
    }
    this.repliesReceived += messages.length;
    try {
      this.options.onReplies?.(this.options.peerId, messages);
    } catch (error) {
      this.log.error({ err: error }, 'onReplies threw');
    }
  }

  private reportUnreachable(): void {
    try {
      this.options.onUnreachable(this.options.peerId);
    } catch (error) {
      this.log.error({ err: error }, 'onUnreachable threw');
    }
  }
}

/** The `error` code of a JSON error answer, or undefined. */
function errorCodeOf(snippet: string): unknown {
  try {
    return (JSON.parse(snippet) as { error?: unknown } | null)?.error;
  } catch {
    return undefined;
  }
}
