// Every error answer is JSON: { "error": code, "message": text }, so scripts and people both cope.
import type { FastifyReply } from 'fastify';
import {
  LeaderTransferError,
  NotLeaderError,
  OverloadedError,
  ReadTimeoutError,
  RemovedError,
  StoppedError,
  WriteLostError,
  WriteUnknownError,
} from '../node/errors.js';

/** An error answer, independent of the HTTP layer that sends it. */
export interface ErrorAnswer {
  readonly status: number;
  readonly error: string;
  readonly message: string;
  readonly headers?: Record<string, string>;
}

export function sendError(
  reply: FastifyReply,
  status: number,
  error: string,
  message: string,
  headers: Record<string, string> = {},
): FastifyReply {
  return reply.code(status).headers(headers).type('application/json').send({ error, message });
}

export function sendErrorAnswer(reply: FastifyReply, answer: ErrorAnswer): FastifyReply {
  return sendError(reply, answer.status, answer.error, answer.message, answer.headers);
}

/** Why a linearizable read could not be served; undefined for an error that is a bug (rethrow). */
export function readFailureAnswer(error: Error): ErrorAnswer | undefined {
  const retry = { 'retry-after': '1' };
  if (error instanceof NotLeaderError) {
    return {
      status: 503,
      error: 'no_leader',
      message:
        'no leader is known right now, so no linearizable read is possible; retry shortly, or ask for ?consistency=stale',
      headers: retry,
    };
  }
  if (error instanceof ReadTimeoutError)
    return { status: 503, error: 'read_timeout', message: error.message, headers: retry };
  if (error instanceof OverloadedError)
    return { status: 503, error: 'overloaded', message: error.message, headers: retry };
  if (error instanceof StoppedError) return { status: 503, error: 'stopping', message: error.message, headers: retry };
  if (error instanceof RemovedError) return REMOVED;
  return undefined;
}

/**
 * Why a proposal (a write, a read through the log, a membership change) failed after it reached the
 * leader; undefined for an error that is a bug (rethrow). NotLeaderError is the caller's: it forwards.
 */
export function writeFailureAnswer(error: Error): ErrorAnswer | undefined {
  if (error instanceof LeaderTransferError) return LEADER_TRANSFER;
  if (error instanceof WriteUnknownError) return { status: 504, error: 'outcome_unknown', message: error.message };
  if (error instanceof WriteLostError)
    return { status: 503, error: 'not_committed', message: error.message, headers: { 'retry-after': '0' } };
  if (error instanceof OverloadedError)
    return { status: 503, error: 'overloaded', message: error.message, headers: { 'retry-after': '1' } };
  if (error instanceof StoppedError)
    return { status: 503, error: 'stopping', message: error.message, headers: { 'retry-after': '1' } };
  if (error instanceof RemovedError) return REMOVED;
  return undefined;
}

/** A node that was removed from the cluster answers every request with this. */
export const REMOVED: ErrorAnswer = {
  status: 503,
  error: 'removed',
  message: 'this node was removed from the cluster: it serves nothing any more; ask another member',
};

/**
 * A write (or a read through the log) that reached the leader while it hands leadership over: no
 * leader takes writes for a moment (at most an election timeout), so retry after it.
 */
export const LEADER_TRANSFER: ErrorAnswer = {
  status: 503,
  error: 'leader_transfer',
  message: 'leadership is being handed over to another node; nothing was written: retry shortly',
  headers: { 'retry-after': '1' },
};

/** The answer to a GET of a key that is not there. */
export const KEY_NOT_FOUND: ErrorAnswer = { status: 404, error: 'not_found', message: 'no such key' };

/** Characters of a header value quoted back in a refusal: enough to recognise it, never a whole header. */
const MAX_SHOWN_HEADER_CHARS = 64;

/**
 * A request header as the client wrote it, for a refusal: `If-Match: W/"5"` (a JSON-quoted value
 * would read `"W/\"5\""`, and `"5"` for a bare 5: the very form that was missing).
 */
export function shownHeader(name: string, value: string | string[]): string {
  const text = Array.isArray(value) ? value.join(', ') : value;
  if (text === '') return `an empty ${name}`;
  const cut = text.length <= MAX_SHOWN_HEADER_CHARS ? text : `${text.slice(0, MAX_SHOWN_HEADER_CHARS)}...`;
  return `${name}: ${cut}`;
}
