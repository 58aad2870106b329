// The log command a client write becomes. A write without a precondition or an idempotency key stays
// the compact plain put or delete (src/storage/command.ts: a few bytes of overhead, the hot path);
// one with either becomes a request command, whose answer says what applying it did.
import type { IncomingHttpHeaders } from 'node:http';
import { encodeCommand } from '../storage/command.js';
import type { Request } from '../storage/request.js';
import type { ErrorAnswer } from './errors.js';
import { parseIdempotencyKey } from './idempotency-key.js';
import { parsePreconditions } from './preconditions.js';
import { requestFingerprint } from './request-fingerprint.js';

/** The kinds of write the API proposes; the answer's shape depends on it (write-answers.ts). */
export type WriteKind = Request['kind'];

export interface ProposedWrite {
  readonly kind: WriteKind;
  readonly command: Uint8Array;
  /** A request command (a precondition, a transaction or an idempotency key): its entry answers what it did. */
  readonly isRequest: boolean;
  /** The client's Idempotency-Key, when it sent one. */
  readonly idempotencyKey: string | undefined;
}

export type WriteCheck =
  { readonly ok: true; readonly write: ProposedWrite } | { readonly ok: false; readonly refusal: ErrorAnswer };

function refused(error: string, message: string): WriteCheck {
  return { ok: false, refusal: { status: 400, error, message } };
}

/** A PUT or DELETE of one key, with the preconditions and idempotency key its headers carry. */
export function keyWrite(
  write:
    | { readonly kind: 'put'; readonly key: Uint8Array; readonly value: Uint8Array }
    | { readonly kind: 'delete'; readonly key: Uint8Array },
  headers: IncomingHttpHeaders,
  now: () => number = Date.now,
): WriteCheck {
  const precondition = parsePreconditions(headers['if-match'], headers['if-none-match']);
  if (!precondition.ok) return refused('bad_precondition', precondition.message);
  const condition = precondition.condition;
  const request: Request = condition === undefined ? write : { ...write, condition };
  return requestWrite(request, headers, now);
}

/**
 * Any request with the idempotency key its headers carry. Only a plain put or delete without a key
 * is encoded as the plain command; everything else is a request command.
 */
export function requestWrite(request: Request, headers: IncomingHttpHeaders, now: () => number = Date.now): WriteCheck {
  const key = parseIdempotencyKey(headers['idempotency-key']);
  if (!key.ok) return refused('bad_idempotency_key', key.message);
  const id = key.id;
  const kind = request.kind;
  if (id === undefined && request.kind !== 'txn' && request.condition === undefined) {
    const command =
      request.kind === 'put'
        ? encodeCommand({ op: 'put', key: request.key, value: request.value })
        : encodeCommand({ op: 'delete', key: request.key });
    return { ok: true, write: { kind, command, isRequest: false, idempotencyKey: undefined } };
  }
  const command =
    id === undefined
      ? encodeCommand({ op: 'request', request })
      : encodeCommand({
          op: 'request',
          request,
          idempotency: { id, fingerprint: requestFingerprint(request), at: now() },
        });
  return { ok: true, write: { kind, command, isRequest: true, idempotencyKey: id } };
}
