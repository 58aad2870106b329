// What applying a write does to the key-value state: pure functions of the command, its log index
// and a KvView, so every node (and the simulation, which applies through the same code) computes the
// same result from the same log. Conditions are evaluated here, at apply time, against the state
// every entry before this one left: never by a leader when it proposed.
//
// Metadata (key-meta.ts): a put at index N leaves the key with modIndex N, version + 1 (1 when it
// creates the key, and createIndex N then). A delete removes the key and its metadata; a later put
// creates it anew. Legacy ops (command.ts) leave LEGACY_META.

import { assert } from '../raft/assert.js';
import type { Command } from './command.js';
import { findRecord, type IdempotencyIndex, type RequestResult, type TxnOpResult } from './idempotency.js';
import { decodeStored, encodeStored, LEGACY_META, type KeyMeta, type StoredValue } from './key-meta.js';
import { BufferedView, type KvView } from './kv-view.js';
import type { Compare, CompareOp, RequestCommand, TxnOp } from './request.js';

/**
 * The most bytes of values a transaction's gets may return. Past it the transaction changes nothing
 * and answers `too_large`: an answer (and an idempotency record holding it) stays bounded whatever
 * the keys hold.
 */
export const MAX_TXN_RESULT_BYTES = 4 * 1024 * 1024;

/** What a request's entry did. */
export type RequestAnswer =
  | { readonly kind: 'applied'; readonly result: RequestResult }
  /** A retry of a request already applied at `index`: nothing changed; `result` is the first answer. */
  | { readonly kind: 'replayed'; readonly index: number; readonly term: number; readonly result: RequestResult }
  /** The idempotency key was used, at `index`, by a different request: nothing changed. */
  | { readonly kind: 'mismatch'; readonly index: number };

function read(view: KvView, key: Uint8Array): StoredValue | undefined {
  const stored = view.get(key);
  return stored === undefined ? undefined : decodeStored(stored);
}

function metaAfterPut(previous: KeyMeta | undefined, index: number): KeyMeta {
  if (previous === undefined) return { createIndex: index, modIndex: index, version: 1 };
  return { createIndex: previous.createIndex, modIndex: index, version: previous.version + 1 };
}

function put(view: KvView, key: Uint8Array, value: Uint8Array, index: number): void {
  view.put(key, encodeStored(metaAfterPut(view.getMeta(key), index), value));
}

/** A plain put or delete (ops 0x06/0x07, or a legacy 0x01/0x02). */
export function applyPlain(view: KvView, command: Extract<Command, { op: 'put' | 'delete' }>, index: number): void {
  if (command.op === 'delete') view.delete(command.key);
  else if (command.legacy) view.put(command.key, encodeStored(LEGACY_META, command.value));
  else put(view, command.key, command.value, index);
}

function compareNumbers(a: number, cmp: CompareOp, b: number): boolean {
  switch (cmp) {
    case '=':
      return a === b;
    case '!=':
      return a !== b;
    case '<':
      return a < b;
    case '>':
      return a > b;
    case '<=':
      return a <= b;
    case '>=':
      return a >= b;
  }
}

export function compareHolds(view: KvView, compare: Compare): boolean {
  const current = read(view, compare.key);
  switch (compare.target) {
    case 'exists':
      return (current !== undefined) === compare.exists;
    case 'value':
      // A missing key has no value: no comparison with one holds.
      if (current === undefined) return false;
      return compareNumbers(Buffer.compare(current.value, compare.bytes), compare.cmp, 0);
    default:
      return compareNumbers(current === undefined ? 0 : current.meta[compare.target], compare.cmp, compare.number);
  }
}

function applyTxn(
  view: KvView,
  request: Extract<RequestCommand['request'], { kind: 'txn' }>,
  index: number,
): RequestResult {
  const succeeded = request.compare.every((c) => compareHolds(view, c));
  const branch = new BufferedView(view);
  const results: TxnOpResult[] = [];
  let bytes = 0;
  for (const op of succeeded ? request.success : request.failure) {
    results.push(applyTxnOp(branch, op, index));
    const last = results[results.length - 1];
    if (last?.op === 'get' && last.value !== null) bytes += last.value.length;
    // Nothing of the branch reaches the state: the buffered writes are dropped.
    if (bytes > MAX_TXN_RESULT_BYTES) return { kind: 'too_large', bytes };
  }
  branch.flushTo(view);
  return { kind: 'txn', succeeded, results };
}

function applyTxnOp(view: KvView, op: TxnOp, index: number): TxnOpResult {
  switch (op.op) {
    case 'put':
      put(view, op.key, op.value, index);
      return { op: 'put', key: op.key, modIndex: index };
    case 'delete': {
      const deleted = view.get(op.key) !== undefined;
      if (deleted) view.delete(op.key);
      return { op: 'delete', key: op.key, deleted };
    }
    case 'get': {
      const current = read(view, op.key);
      // A copy: the stored bytes may be a view into a buffer LevelDB or the batch reuses.
      return {
        op: 'get',
        key: op.key,
        meta: current?.meta ?? null,
        value: current === undefined ? null : current.value.slice(),
      };
    }
  }
}

function applyRequestBody(view: KvView, command: RequestCommand, index: number): RequestResult {
  const request = command.request;
  if (request.kind === 'txn') return applyTxn(view, request, index);
  // The metadata is all a single-key request needs: conditions are on existence and modIndex.
  const current = view.getMeta(request.key);
  const condition = request.condition;
  if (condition !== undefined) {
    const holds = 'absent' in condition ? current === undefined : current?.modIndex === condition.modIndex;
    if (!holds) return { kind: 'failed', current: current ?? null };
  }
  if (request.kind === 'put') {
    view.put(request.key, encodeStored(metaAfterPut(current, index), request.value));
    return { kind: 'written' };
  }
  if (current !== undefined) view.delete(request.key);
  return { kind: 'written', deleted: current !== undefined };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

/**
 * Applies a request entry at (index, term). With an idempotency key: a key seen before answers the
 * first request's result (same fingerprint) or a mismatch (another), changing nothing; a new key
 * applies the request and records its answer.
 */
export function applyRequest(
  view: KvView,
  records: IdempotencyIndex,
  command: RequestCommand,
  index: number,
  term: number,
): RequestAnswer {
  const idempotency = command.idempotency;
  if (idempotency === undefined) return { kind: 'applied', result: applyRequestBody(view, command, index) };
  const seen = findRecord(view, idempotency.id);
  if (seen !== undefined) {
    if (!sameBytes(seen.fingerprint, idempotency.fingerprint)) return { kind: 'mismatch', index: seen.index };
    return { kind: 'replayed', index: seen.index, term: seen.term, result: seen.result };
  }
  const result = applyRequestBody(view, command, index);
  assert(index > 0, 'a request applies at a log index');
  records.add(view, idempotency.id, { fingerprint: idempotency.fingerprint, index, term, at: idempotency.at, result });
  return { kind: 'applied', result };
}
