// How a client's answer (or the lack of one) maps to the checker's outcome of an operation.
//
// The rule: 'ok' only for a definite success; 'fail' only when the operation definitely had no
// effect; everything else is 'unknown'. Calling a write 'unknown' is always safe (the checker lets
// it take effect at any time after its invocation, or never), so every doubtful case lands there.
// For reads, 'fail' and 'unknown' are equivalent to the checker (a read without a value observed
// nothing), so a read is 'fail' whenever it got no value.
//
// Writes (PUT, DELETE), from src/api/client-api.ts and src/api/forward.ts:
//   200                                   ok: committed, applied and durable
//   503 no_leader, not_leader             fail: refused before proposing (NotLeaderError)
//   503 overloaded                        fail: queued but never proposed, or refused (OverloadedError)
//   503 not_committed                     fail: its entry was replaced by another leader's (WriteLostError)
//   503 stopping                          fail: refused, the node is stopping (StoppedError; a proposed
//                                         write gets 504 outcome_unknown from failEverything instead)
//   503 leader_unreachable                fail: a write is only answered so when the forwarder never
//                                         connected to the leader (otherwise it says 504)
//   504 outcome_unknown                   unknown: proposed, fate unknown
//   400 / 404 / 413 ...                   fail: refused by validation before proposing; also counted
//                                         as unexpected (the runner never sends a bad request)
//   any other status or 503 code          unknown: e.g. 500 (a fatal error with a write in flight)
//   connection refused / connect timeout  fail: nothing reached any server
//   reset, closed, timed out after send   unknown: it may have reached the node and be applied later
// Reads (GET, linearizable):
//   200 with x-raft-consistency=linearizable   ok, the body is the value
//   404 with x-raft-consistency=linearizable   ok, the key is absent (a 404 without the header is a
//                                              route miss, never a read: fail and unexpected)
//   any other answer                           fail (no value observed)
//   refused / connect timeout                  fail; reset, closed or timed out after sending: unknown
//                                              (as for writes; the checker ignores both for reads)
//   A 200's `etag: "<modIndex>"` is the modIndex of the value read.
// Conditional writes (PUT, DELETE with If-Match or If-None-Match: *) and transactions (POST /txn),
// the `--workload versioned` clients' (classifyConditional, classifyTxn):
//   200                                   ok: the condition held (a transaction's `succeeded` says
//                                         which branch ran); a PUT's etag, a transaction's put result,
//                                         the modIndex it left; a failed transaction's get, the value
//                                         (and modIndex) it saw
//   412 precondition_failed               ok, failed: nothing written; `current` is the key's metadata
//                                         then (its modIndex is what the cas saw) or null (absent)
//   422 idempotency_key_reused            unknown and unexpected: the client sends one request per key,
//                                         so the server took two of them for different requests
//   413 answer_too_large (a transaction)  fail and unexpected: nothing applied
//   anything else                         as for a plain write
//   A replay of the first answer (`idempotent-replayed: true`) is classified like that answer.
import type { OpKind, OpStatus } from '../check/history.js';

export const DEFINITE_WRITE_REFUSALS: ReadonlySet<string> = new Set([
  'no_leader',
  'not_leader',
  'overloaded',
  'not_committed',
  'stopping',
  'leader_unreachable',
]);

/** Error codes (Node and undici) meaning the connection was never established: nothing was sent. */
export const NEVER_SENT_ERRORS: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);

export interface HttpAnswer {
  readonly status: number;
  /** The JSON `error` field of an error answer, when there is one. */
  readonly errorCode: string | null;
  /** The x-raft-consistency header of a read answer. */
  readonly consistency: string | null;
  /** The body as text (the value of a successful read, the JSON of a 412 or of a transaction's answer). */
  readonly body: string | null;
  /** The etag header: a read's or a PUT's `"<modIndex>"`. */
  readonly etag?: string | null;
  /** The header idempotent-replayed: true: the first answer to this idempotency key, again. */
  readonly replayed?: boolean;
}

export interface Outcome {
  readonly status: OpStatus;
  /** For a get: the value read (null = absent). */
  readonly value: string | null;
  /** A short reason, e.g. "503 no_leader", "ECONNREFUSED", "timeout": shown in reports. */
  readonly reason: string;
  /** An answer the runner never expects (a bad request, a route miss): worth a warning. */
  readonly unexpected: boolean;
  /**
   * The key's modIndex as the answer told it: a read's ETag, the modIndex an acknowledged put or
   * transaction left, the `current` modIndex of a failed conditional write.
   */
  readonly modIndex?: number;
  /** A conditional write or transaction answered: whether its condition held. */
  readonly succeeded?: boolean;
  /** A conditional write or transaction that failed, when its answer says what it saw (null: absent). */
  readonly observed?: string | null;
  /** The answer replayed the first answer to its idempotency key. */
  readonly replayed?: boolean;
  /** No HTTP answer came at all (classifyError): a timeout, a refused, reset or closed connection. */
  readonly noAnswer?: true;
}

export function classifyAnswer(kind: OpKind, answer: HttpAnswer): Outcome {
  const reason = answer.errorCode === null ? String(answer.status) : `${answer.status} ${answer.errorCode}`;
  if (kind === 'get') {
    const linearizable = answer.consistency === 'linearizable';
    if (answer.status === 200 && linearizable && answer.body !== null) {
      const modIndex = parseEtag(answer.etag);
      return {
        status: 'ok',
        value: answer.body,
        reason,
        unexpected: false,
        ...(modIndex === null ? {} : { modIndex }),
      };
    }
    if (answer.status === 404 && linearizable && answer.errorCode === 'not_found')
      return { status: 'ok', value: null, reason, unexpected: false };
    if (answer.status === 504) return { status: 'unknown', value: null, reason, unexpected: true };
    return { status: 'fail', value: null, reason, unexpected: answer.status !== 503 };
  }
  if (answer.status === 200) return { status: 'ok', value: null, reason, unexpected: false };
  if (answer.status === 503 && answer.errorCode !== null && DEFINITE_WRITE_REFUSALS.has(answer.errorCode)) {
    return { status: 'fail', value: null, reason, unexpected: false };
  }
  if (answer.status === 504)
    return { status: 'unknown', value: null, reason, unexpected: answer.errorCode !== 'outcome_unknown' };
  if (answer.status >= 400 && answer.status < 500) return { status: 'fail', value: null, reason, unexpected: true };
  return { status: 'unknown', value: null, reason, unexpected: answer.status !== 503 };
}

/** An error instead of an answer: `code` is the Node / undici error code (or 'timeout'). */
export function classifyError(code: string): Outcome {
  const status = NEVER_SENT_ERRORS.has(code) ? 'fail' : 'unknown';
  return { status, value: null, reason: code, unexpected: false, noAnswer: true };
}

/** `"123"` (a strong ETag) to 123; null for anything else. */
export function parseEtag(etag: string | null | undefined): number | null {
  const match = /^"(\d{1,15})"$/.exec(etag ?? '');
  return match === null ? null : Number(match[1]);
}

/** A write that carried an idempotency key (a plain one: no condition): as classifyAnswer, plus what it left. */
export function classifyIdempotentWrite(kind: 'put' | 'delete', answer: HttpAnswer): Outcome {
  if (answer.status === 422) return idempotencyKeyReused(answer);
  const outcome = classifyAnswer(kind, answer);
  return withReplayAndModIndex(outcome, answer, kind === 'put');
}

/** A PUT or DELETE with If-Match or If-None-Match: * (see the table above). */
export function classifyConditional(kind: 'put' | 'delete', answer: HttpAnswer): Outcome {
  const reason = answer.errorCode === null ? String(answer.status) : `${answer.status} ${answer.errorCode}`;
  if (answer.status === 200) {
    return withReplayAndModIndex(
      { status: 'ok', value: null, reason, unexpected: false, succeeded: true },
      answer,
      kind === 'put',
    );
  }
  if (answer.status === 412 && answer.errorCode === 'precondition_failed') {
    const current = jsonField(answer.body, 'current');
    const failed = { status: 'ok' as const, value: null, reason, unexpected: false, succeeded: false };
    const replay = answer.replayed === true ? { replayed: true } : {};
    if (current === null) return { ...failed, observed: null, ...replay };
    const modIndex = (current as { modIndex?: unknown } | undefined)?.modIndex;
    if (typeof modIndex === 'number' && Number.isSafeInteger(modIndex) && modIndex >= 0) {
      return { ...failed, modIndex, ...replay };
    }
    // A 412 that does not say what the key holds: it failed, but the checker learns no more.
    return { ...failed, unexpected: true, ...replay };
  }
  if (answer.status === 422) return idempotencyKeyReused(answer);
  return classifyAnswer(kind, answer);
}

/** A POST /txn of the form compare -> [put, get] / [get] (see the table above). */
export function classifyTxn(answer: HttpAnswer): Outcome {
  const reason = answer.errorCode === null ? String(answer.status) : `${answer.status} ${answer.errorCode}`;
  if (answer.status === 200) {
    const replay = answer.replayed === true ? { replayed: true } : {};
    const succeeded = jsonField(answer.body, 'succeeded');
    const first = (jsonField(answer.body, 'results') as unknown[] | undefined)?.[0] as
      Record<string, unknown> | undefined;
    if (typeof succeeded !== 'boolean' || typeof first !== 'object' || first === null) {
      // Applied, but what it did is not known: as good as an unknown outcome.
      return { status: 'unknown', value: null, reason: `${reason} unreadable`, unexpected: true };
    }
    const ok = { status: 'ok' as const, value: null, reason, unexpected: false, succeeded, ...replay };
    if (succeeded) {
      const modIndex = first['modIndex'];
      return typeof modIndex === 'number' && Number.isSafeInteger(modIndex) ? { ...ok, modIndex } : ok;
    }
    // The failure branch's get: the value the compare saw, and its modIndex when the key exists.
    const observed = txnGetValue(first);
    if (observed === undefined) return { ...ok, unexpected: true };
    const modIndex = first['modIndex'];
    return observed !== null && typeof modIndex === 'number' && Number.isSafeInteger(modIndex)
      ? { ...ok, observed, modIndex }
      : { ...ok, observed };
  }
  if (answer.status === 413) return { status: 'fail', value: null, reason, unexpected: true };
  if (answer.status === 422) return idempotencyKeyReused(answer);
  return classifyAnswer('put', answer);
}

/** A transaction's get result: its value (text, or base64 decoded as UTF-8), null when absent, undefined if unreadable. */
function txnGetValue(result: Record<string, unknown>): string | null | undefined {
  if (result['op'] !== 'get') return undefined;
  if (typeof result['value'] === 'string') return result['value'];
  if (typeof result['valueBase64'] === 'string') return Buffer.from(result['valueBase64'], 'base64').toString('utf8');
  return result['value'] === null ? null : undefined;
}

function idempotencyKeyReused(answer: HttpAnswer): Outcome {
  const reason = answer.errorCode === null ? String(answer.status) : `${answer.status} ${answer.errorCode}`;
  return { status: 'unknown', value: null, reason, unexpected: true };
}

function withReplayAndModIndex(outcome: Outcome, answer: HttpAnswer, leavesValue: boolean): Outcome {
  if (outcome.status !== 'ok') return outcome;
  const modIndex = leavesValue ? parseEtag(answer.etag) : null;
  return {
    ...outcome,
    ...(modIndex === null ? {} : { modIndex }),
    ...(answer.replayed === true ? { replayed: true } : {}),
  };
}

/** A top-level field of a JSON object body; undefined when the body is not one. */
function jsonField(body: string | null, name: string): unknown {
  if (body === null) return undefined;
  try {
    const parsed: unknown = JSON.parse(body);
    return typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>)[name] : undefined;
  } catch {
    return undefined;
  }
}
