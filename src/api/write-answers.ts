// What a client hears once its write's entry is applied: the answer is made from what applying it
// did (src/storage/apply-request.ts), so every node that applied the entry would say the same.
//
//   written          200 {"index","term"}; a PUT also sends etag: "<index>" (the key's new modIndex),
//                    so a client can loop read-modify-write on that ETag without a GET
//   failed           412 precondition_failed, with the key's current metadata (null: absent)
//   txn              200 {"succeeded","results","index","term"}
//   too_large        413 answer_too_large: the transaction's gets would read too much; nothing applied
//   replayed         the first answer again (same status and body, its index and term), marked
//                    idempotent-replayed: true
//   key reused       422 idempotency_key_reused: the key names another request; nothing happened
//
// A plain put or delete (no precondition, no idempotency key) has no answer to read: it was written.
import type { RequestAnswer } from '../storage/apply-request.js';
import { MAX_TXN_RESULT_BYTES } from '../storage/apply-request.js';
import type { RequestResult, TxnOpResult } from '../storage/idempotency.js';
import type { KeyMeta } from '../storage/key-meta.js';
import type { WriteResult } from '../node/apply-waiters.js';
import { describeItem, textOrNull } from '../reads/format.js';
import { etagOf } from './preconditions.js';
import type { ProposedWrite } from './write-requests.js';

/** An HTTP answer, independent of the layer that sends it. */
export interface WriteAnswer {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: Record<string, unknown>;
}

export const REPLAYED_HEADER = 'idempotent-replayed';

export function writeAnswer(
  write: Pick<ProposedWrite, 'kind' | 'isRequest' | 'idempotencyKey'>,
  result: WriteResult,
): WriteAnswer {
  const answer = result.answer;
  if (answer !== undefined) return requestAnswer(write, result, answer);
  // Never "written" by default for a request: its precondition may have failed. A request's entry
  // always says what it did; one that did not is a bug, answered 500, not a false success.
  if (write.isRequest) throw new Error(`the write applied at index ${result.index} did not say what it did`);
  return resultAnswer(write.kind, result.index, result.term, { kind: 'written' });
}

function requestAnswer(
  write: Pick<ProposedWrite, 'kind' | 'idempotencyKey'>,
  result: WriteResult,
  answer: RequestAnswer,
): WriteAnswer {
  switch (answer.kind) {
    case 'applied':
      return resultAnswer(write.kind, result.index, result.term, answer.result);
    case 'replayed': {
      const first = resultAnswer(write.kind, answer.index, answer.term, answer.result);
      return { ...first, headers: { ...first.headers, [REPLAYED_HEADER]: 'true' } };
    }
    case 'mismatch':
      return {
        status: 422,
        headers: {},
        body: {
          error: 'idempotency_key_reused',
          message:
            `the Idempotency-Key ${JSON.stringify(write.idempotencyKey ?? '')} was used at index ${answer.index} for a different request ` +
            '(another method, key, value, precondition or transaction): nothing was written. ' +
            'Retry only with the same request; use a new key for a new request',
        },
      };
  }
}

function resultAnswer(kind: ProposedWrite['kind'], index: number, term: number, result: RequestResult): WriteAnswer {
  const headers: Record<string, string> = { 'x-raft-index': String(index), 'x-raft-term': String(term) };
  switch (result.kind) {
    case 'written':
      if (kind === 'put') headers['etag'] = etagOf(index);
      return { status: 200, headers, body: { index, term } };
    case 'failed':
      return { status: 412, headers, body: preconditionFailed(index, result.current) };
    case 'txn':
      return {
        status: 200,
        headers,
        body: { succeeded: result.succeeded, results: result.results.map(txnOpJson), index, term },
      };
    case 'too_large':
      return {
        status: 413,
        headers,
        body: {
          error: 'answer_too_large',
          message:
            `the values this transaction's gets read come to more than ${MAX_TXN_RESULT_BYTES} bytes ` +
            `(${result.bytes} when it stopped): nothing was applied, neither its gets nor its writes. ` +
            'Get fewer or smaller values in one transaction, or read big values with GET /kv/<key>',
        },
      };
  }
}

function preconditionFailed(index: number, current: KeyMeta | null): Record<string, unknown> {
  const state =
    current === null
      ? 'the key does not exist'
      : `the key is at modIndex ${current.modIndex} (ETag ${etagOf(current.modIndex)})`;
  return {
    error: 'precondition_failed',
    message: `the precondition did not hold when the write was applied at index ${index}: ${state}; nothing was written`,
    current:
      current === null
        ? null
        : { createIndex: current.createIndex, modIndex: current.modIndex, version: current.version },
  };
}

function keyJson(key: Uint8Array): Record<string, string> {
  const text = textOrNull(key);
  return text === null ? { keyBase64: Buffer.from(key).toString('base64') } : { key: text };
}

/** One result of a transaction, as the API answers it (a get reads like an item of POST /mget). */
export function txnOpJson(result: TxnOpResult): Record<string, unknown> {
  switch (result.op) {
    case 'put':
      return { op: 'put', ...keyJson(result.key), modIndex: result.modIndex };
    case 'delete':
      return { op: 'delete', ...keyJson(result.key), deleted: result.deleted };
    case 'get':
      return { op: 'get', ...describeItem(result.key, result.value ?? undefined, result.meta ?? undefined) };
  }
}
