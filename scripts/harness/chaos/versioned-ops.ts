// The operations of the versioned workload (`npm run chaos -- --workload versioned`, the default):
// what a worker sends next, and what it then believes about the key it read last.
//
//   get        45%   GET /kv/<key> of a random key; remembers the value and its ETag (modIndex)
//   put        20%   PUT /kv/<key> with an Idempotency-Key
//   delete      6%   DELETE /kv/<key> with an Idempotency-Key
//   cas        29%   a read-modify-write of the key the worker read (or wrote) last, expecting what
//                    it saw: 17% a conditional PUT or DELETE (If-Match: "<modIndex>", or
//                    If-None-Match: * when it saw the key absent), 12% a one-key transaction
//                    (compare value = it, or exists = false; success: put + get; failure: get);
//                    a get instead when the worker knows no key yet
//
// Every write carries an Idempotency-Key (unique in the run), so that a request whose outcome is
// unknown can be retried as is (retries.ts): the same key, the same request.
//
// Why a conditional write is recorded as cas(V -> new): every write of the run writes a value no
// other write uses, so the value V a worker saw was written by exactly one write, applied once
// (idempotency keys see to that), at exactly one log index M, which the ETag of the answer named.
// The key's modIndex is M exactly when its last write is that one, i.e. exactly when its value is V:
// "If-Match: M" and "value = V" are the same condition, and If-None-Match: * is "absent". The
// checker's compare-and-set model (scripts/harness/check/history.ts) checks the value form. (If the
// store applied a write twice, V would sit at two indices and the forms would differ: the checker
// then reports the cas that failed where the value form says it must succeed, a true violation.)
import type { SeededRandom } from '../../../src/raft/prng.js';
import type { OpKind } from '../check/history.js';
import type { KvRequest } from './kv-client.js';
import type { Outcome } from './outcome.js';

/** What a worker saw of a key last: its value (null: absent) and the modIndex of that value (null: not told). */
export interface LastSeen {
  readonly key: string;
  readonly value: string | null;
  readonly modIndex: number | null;
}

/** An operation as the history records it, and the request that performs it. */
export interface PlannedOp {
  readonly kind: OpKind;
  readonly key: string;
  /** put and cas: the value written (null: a conditional delete); get, delete: null. */
  readonly value: string | null;
  /** cas only: the value it expects (null: absent). */
  readonly expected?: string | null;
  /** cas only: sent as a transaction (POST /txn) rather than a conditional PUT or DELETE. */
  readonly viaTxn?: boolean;
  readonly request: KvRequest;
}

export interface Draw {
  readonly random: SeededRandom;
  readonly keys: readonly string[];
  /** The value of a write: unique in the run. */
  readonly value: string;
  /** The idempotency key of a write: unique in the run. */
  readonly idempotencyKey: string;
  readonly lastSeen: LastSeen | null;
}

/** The next operation of a worker of the versioned workload. */
export function drawVersionedOp(draw: Draw): PlannedOp {
  const { random, value, idempotencyKey, lastSeen } = draw;
  const roll = random.float();
  if (roll < 0.2) {
    const key = random.pick(draw.keys);
    return { kind: 'put', key, value, request: { kind: 'put', key, value, idempotencyKey } };
  }
  if (roll < 0.26) {
    const key = random.pick(draw.keys);
    return { kind: 'delete', key, value: null, request: { kind: 'delete', key, idempotencyKey } };
  }
  if (roll < 0.71 || lastSeen === null) {
    const key = random.pick(draw.keys);
    return { kind: 'get', key, value: null, request: { kind: 'get', key } };
  }
  const { key, value: expected, modIndex } = lastSeen;
  // A value seen without its modIndex can only be compared by value, in a transaction.
  if (roll < 0.88 && (expected === null || modIndex !== null)) {
    const written = random.chance(0.2) ? null : value;
    const condition = expected === null ? ({ absent: true } as const) : { modIndex: modIndex! };
    const request: KvRequest =
      written === null
        ? { kind: 'delete', key, condition, idempotencyKey }
        : { kind: 'put', key, value: written, condition, idempotencyKey };
    return { kind: 'cas', key, value: written, expected, request };
  }
  return {
    kind: 'cas',
    key,
    value,
    expected,
    viaTxn: true,
    request: { kind: 'txn', key, expected, value, idempotencyKey },
  };
}

/**
 * What the worker knows of `op`'s key after its outcome: what it read, what it wrote (with the ETag
 * the answer gave), what a failed cas saw; null when it knows nothing (a failed or unknown
 * operation, a 412 that names only a modIndex: a cas needs the value).
 */
export function seenAfter(op: PlannedOp, outcome: Outcome): LastSeen | null {
  if (outcome.status !== 'ok') return null;
  const modIndex = outcome.modIndex ?? null;
  switch (op.kind) {
    case 'get':
      return { key: op.key, value: outcome.value, modIndex: outcome.value === null ? null : modIndex };
    case 'put':
      return modIndex === null ? null : { key: op.key, value: op.value, modIndex };
    case 'delete':
      return { key: op.key, value: null, modIndex: null };
    case 'cas':
      if (outcome.succeeded === true) {
        if (op.value === null) return { key: op.key, value: null, modIndex: null };
        return modIndex === null ? null : { key: op.key, value: op.value, modIndex };
      }
      if (outcome.observed === undefined) return null;
      return { key: op.key, value: outcome.observed, modIndex: outcome.observed === null ? null : modIndex };
  }
}
