// The hot path of writes: `PUT /kv/<key>` on the leader, answered on Node's HTTP server directly,
// in front of Fastify, as `GET /kv/<key>` is (fast-get.ts says why: Fastify's per-request machinery
// and a head written from a header object cost a large share of a small request's CPU).
//
// It takes only what it recognises exactly: a PUT with no query string, a plain key (no '%', '/'
// or '#'), a Content-Length within the value limit and no other framing, on a live node that leads
// right now. Everything else (followers, which forward; `?redirect=true`; encoded keys; too-large or
// chunked bodies; a stopping node) goes to Fastify untouched. What it does with what it takes is
// the Fastify route's, piece for piece: the same keyWrite (preconditions, Idempotency-Key), the same
// node.write (a 200 still means committed on a majority, fsync'd and applied), the same writeAnswer,
// the same error answers, and the same not-leader rule (not-leader.ts) when leadership moved while
// the write waited to be proposed. A test sends each request both ways and compares the answers.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { NotLeaderError } from '../node/errors.js';
import type { WriteResult } from '../node/apply-waiters.js';
import { writeFailureAnswer } from './errors.js';
import type { Forwarder } from './forward.js';
import { parseKey } from './keys.js';
import { notLeaderAction } from './not-leader.js';
import { sendJson, sendJsonError, sendRelayed } from './raw-answers.js';
import { writeAnswer } from './write-answers.js';
import { keyWrite } from './write-requests.js';

export interface FastPutDeps {
  readonly maxKeyBytes: number;
  readonly maxValueBytes: number;
  /** Whether this node leads now: a follower's PUT takes Fastify's route, which forwards it. */
  readonly isLeader: () => boolean;
  /** node.write: resolves once the entry is committed, durable on a majority and applied here. */
  readonly write: (command: Uint8Array) => Promise<WriteResult>;
  /** A write was acknowledged (the metric Fastify's route counts too). */
  readonly acknowledged: () => void;
  /** The client URL of member `id`, if known. */
  readonly clientUrlOf: (id: string) => string | undefined;
  readonly forwarder: Forwarder;
  /** False once the node is stopping: Fastify then answers (503 while closing). */
  readonly live: () => boolean;
  readonly logger: Logger;
}

const KV_PREFIX = '/kv/';
const DIGITS = /^\d{1,12}$/;

/** Returns a handler that answers the requests it recognises and returns false for the rest. */
export function fastPutHandler(deps: FastPutDeps): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    const url = req.url;
    if (req.method !== 'PUT' || url === undefined || !url.startsWith(KV_PREFIX)) return false;
    const rawKey = url.slice(KV_PREFIX.length);
    // A query (?redirect=...), an encoded key, '/' or a raw '#' (refused by Fastify's hook): Fastify's.
    if (rawKey.includes('?') || rawKey.includes('%') || rawKey.includes('/') || rawKey.includes('#')) return false;
    const length = req.headers['content-length'];
    if (length === undefined || !DIGITS.test(length) || Number(length) > deps.maxValueBytes) return false;
    if (req.headers['transfer-encoding'] !== undefined) return false;
    if (!deps.live() || !deps.isLeader()) return false;
    const key = parseKey(rawKey, deps.maxKeyBytes);
    if (!key.ok) return false;
    readBody(req, (value) => void put(deps, req, res, key.key, value));
    return true;
  };
}

/** Calls `done` with the whole body; a request broken off before its end gets no answer. */
function readBody(req: IncomingMessage, done: (body: Buffer) => void): void {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => done(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
  // The client went away (or sent less than its Content-Length): nobody is left to answer, and
  // nothing was proposed. The listener keeps the error from being thrown as unhandled.
  req.on('error', () => undefined);
}

async function put(
  deps: FastPutDeps,
  req: IncomingMessage,
  res: ServerResponse,
  key: Uint8Array,
  value: Buffer,
): Promise<void> {
  try {
    const proposed = keyWrite({ kind: 'put', key, value }, req.headers);
    if (!proposed.ok) return sendJsonError(res, proposed.refusal);
    try {
      const result = await deps.write(proposed.write.command);
      deps.acknowledged();
      const answer = writeAnswer(proposed.write, result);
      sendJson(res, answer.status, answer.headers, answer.body);
    } catch (error) {
      if (error instanceof NotLeaderError) return await notLeader(deps, req, res, error.leader, value);
      const known = writeFailureAnswer(error as Error);
      if (known === undefined) throw error;
      sendJsonError(res, known);
    }
  } catch (error) {
    deps.logger.error({ err: error }, 'client API error');
    sendJsonError(res, { status: 500, error: 'internal', message: (error as Error).message });
  }
}

/** Leadership moved while the write waited to be proposed (nothing was): the rule Fastify's route follows. */
async function notLeader(
  deps: FastPutDeps,
  req: IncomingMessage,
  res: ServerResponse,
  leader: string,
  body: Buffer,
): Promise<void> {
  const url = req.url ?? '';
  const action = notLeaderAction(leader, leader === '' ? undefined : deps.clientUrlOf(leader), {
    url,
    headers: req.headers,
    redirect: false,
  });
  if (action.kind === 'answer') return sendJsonError(res, action.answer);
  if (action.kind === 'redirect') throw new Error('a fast-path PUT never asks for a redirect');
  const answer = await deps.forwarder.relay({ method: 'PUT', url, headers: req.headers, body }, action.leaderUrl);
  if ('failure' in answer) return sendJsonError(res, answer.failure);
  sendRelayed(res, answer);
}
