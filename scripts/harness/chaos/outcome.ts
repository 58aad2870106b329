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
  /** The body as text (the value of a successful read). */
  readonly body: string | null;
}

export interface Outcome {
  readonly status: OpStatus;
  /** For a get: the value read (null = absent). */
  readonly value: string | null;
  /** A short reason, e.g. "503 no_leader", "ECONNREFUSED", "timeout": shown in reports. */
  readonly reason: string;
  /** An answer the runner never expects (a bad request, a route miss): worth a warning. */
  readonly unexpected: boolean;
}

export function classifyAnswer(kind: OpKind, answer: HttpAnswer): Outcome {
  const reason = answer.errorCode === null ? String(answer.status) : `${answer.status} ${answer.errorCode}`;
  if (kind === 'get') {
    const linearizable = answer.consistency === 'linearizable';
    if (answer.status === 200 && linearizable && answer.body !== null)
      return { status: 'ok', value: answer.body, reason, unexpected: false };
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
  return { status, value: null, reason: code, unexpected: false };
}
