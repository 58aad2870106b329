// The request command (op 0x05, command.ts): a conditional put or delete, a transaction, or any write
// that carries an idempotency key. Everything a node needs to apply it, deterministically, is in the
// entry: the conditions are evaluated when the entry is applied (apply-request.ts), on every node
// against the same state, never by the leader when it proposes.
//
// After the tag, one msgpack map (field names spelled out: a request is rarer than a plain write,
// and an entry must stay readable by whoever repairs a log years from now):
//   {kind: 'put', key, value, condition?}    condition: {modIndex: N} | {absent: true}
//   {kind: 'delete', key, condition?}
//   {kind: 'txn', compare: [...], success: [...], failure: [...]}
//   plus, on any of them, idempotency?: {id, fingerprint, at}
// Decoding is strict: anything but exactly this shape is a CorruptDataError (the entry came from a
// build that wrote something else, or the disk changed it), never a guess.

import { Packr } from 'msgpackr';
import { CorruptDataError } from './errors.js';

/** A conditional write's precondition: the key's modIndex is N, or the key does not exist. */
export type Condition = { readonly modIndex: number } | { readonly absent: true };

export type CompareOp = '=' | '!=' | '<' | '>' | '<=' | '>=';
export const COMPARE_OPS: readonly CompareOp[] = ['=', '!=', '<', '>', '<=', '>='];
export type NumericTarget = 'modIndex' | 'createIndex' | 'version';
export const NUMERIC_TARGETS: readonly NumericTarget[] = ['modIndex', 'createIndex', 'version'];

/**
 * One comparison of a transaction. A missing key has modIndex, createIndex and version 0, and no
 * value: a value comparison on it is false whatever the operator.
 */
export type Compare =
  | { readonly key: Uint8Array; readonly target: 'exists'; readonly exists: boolean }
  | { readonly key: Uint8Array; readonly target: NumericTarget; readonly cmp: CompareOp; readonly number: number }
  | { readonly key: Uint8Array; readonly target: 'value'; readonly cmp: CompareOp; readonly bytes: Uint8Array };

export type TxnOp =
  | { readonly op: 'put'; readonly key: Uint8Array; readonly value: Uint8Array }
  | { readonly op: 'delete'; readonly key: Uint8Array }
  | { readonly op: 'get'; readonly key: Uint8Array };

export type Request =
  | { readonly kind: 'put'; readonly key: Uint8Array; readonly value: Uint8Array; readonly condition?: Condition }
  | { readonly kind: 'delete'; readonly key: Uint8Array; readonly condition?: Condition }
  | {
      readonly kind: 'txn';
      readonly compare: readonly Compare[];
      readonly success: readonly TxnOp[];
      readonly failure: readonly TxnOp[];
    };

/**
 * A client's idempotency key with what identifies its request: a retry with the same id and the
 * same fingerprint gets the first answer; the same id with another fingerprint is refused.
 * `at` is the proposing leader's wall clock (ms): records expire by it (idempotency.ts).
 */
export interface Idempotency {
  readonly id: string;
  readonly fingerprint: Uint8Array;
  readonly at: number;
}

export interface RequestCommand {
  readonly op: 'request';
  readonly request: Request;
  readonly idempotency?: Idempotency;
}

/** Bounds a decoder enforces whatever the API allowed (a corrupt entry must not allocate wildly). */
export const MAX_IDEMPOTENCY_ID_LENGTH = 256;
export const MAX_FINGERPRINT_BYTES = 64;
const MAX_TXN_ITEMS = 100_000;

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

export function encodeRequestCommand(command: RequestCommand, tag: number): Uint8Array {
  const body: Record<string, unknown> = { ...command.request };
  if (command.idempotency !== undefined) body['idempotency'] = { ...command.idempotency };
  const packed = packr.pack(body);
  const out = new Uint8Array(1 + packed.length);
  out[0] = tag;
  out.set(packed, 1);
  return out;
}

type Fields = Record<string, unknown>;

function fail(message: string): never {
  throw new CorruptDataError(`request command: ${message}`);
}

function isFields(value: unknown): value is Fields {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function onlyFields(fields: Fields, allowed: readonly string[], where: string): void {
  for (const name of Object.keys(fields)) if (!allowed.includes(name)) fail(`${where}: unexpected field "${name}"`);
}

function bytesField(fields: Fields, name: string, where: string, nonEmpty: boolean): Uint8Array {
  const value = fields[name];
  if (!(value instanceof Uint8Array)) fail(`${where}: "${name}" must be binary`);
  if (nonEmpty && value.length === 0) fail(`${where}: "${name}" is empty`);
  // msgpackr decodes binary as a Buffer: hand out plain views, like every other decoder here.
  return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
}

function countField(fields: Fields, name: string, where: string): number {
  const value = fields[name];
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    fail(`${where}: "${name}" must be a non-negative safe integer`);
  }
  return value;
}

function listField(fields: Fields, name: string, where: string): unknown[] {
  const value = fields[name];
  if (!Array.isArray(value)) fail(`${where}: "${name}" must be an array`);
  if (value.length > MAX_TXN_ITEMS) fail(`${where}: "${name}" has ${value.length} items`);
  return value;
}

function parseCondition(value: unknown): Condition {
  if (!isFields(value)) return fail('"condition" must be a map');
  if (Object.hasOwn(value, 'absent')) {
    onlyFields(value, ['absent'], 'condition');
    if (value['absent'] !== true) fail('condition: "absent" must be true');
    return { absent: true };
  }
  onlyFields(value, ['modIndex'], 'condition');
  return { modIndex: countField(value, 'modIndex', 'condition') };
}

function parseCompare(value: unknown, where: string): Compare {
  if (!isFields(value)) return fail(`${where}: not a map`);
  const key = bytesField(value, 'key', where, true);
  const target = value['target'];
  if (target === 'exists') {
    onlyFields(value, ['key', 'target', 'exists'], where);
    const exists = value['exists'];
    if (typeof exists !== 'boolean') fail(`${where}: "exists" must be a boolean`);
    return { key, target, exists };
  }
  const cmp = value['cmp'];
  if (!COMPARE_OPS.includes(cmp as CompareOp)) fail(`${where}: "cmp" must be one of ${COMPARE_OPS.join(' ')}`);
  if (target === 'value') {
    onlyFields(value, ['key', 'target', 'cmp', 'bytes'], where);
    return { key, target, cmp: cmp as CompareOp, bytes: bytesField(value, 'bytes', where, false) };
  }
  if (!NUMERIC_TARGETS.includes(target as NumericTarget)) fail(`${where}: unknown target ${String(target)}`);
  onlyFields(value, ['key', 'target', 'cmp', 'number'], where);
  return { key, target: target as NumericTarget, cmp: cmp as CompareOp, number: countField(value, 'number', where) };
}

function parseTxnOp(value: unknown, where: string): TxnOp {
  if (!isFields(value)) return fail(`${where}: not a map`);
  const key = bytesField(value, 'key', where, true);
  switch (value['op']) {
    case 'put':
      onlyFields(value, ['op', 'key', 'value'], where);
      return { op: 'put', key, value: bytesField(value, 'value', where, false) };
    case 'delete':
      onlyFields(value, ['op', 'key'], where);
      return { op: 'delete', key };
    case 'get':
      onlyFields(value, ['op', 'key'], where);
      return { op: 'get', key };
    default:
      return fail(`${where}: unknown op ${String(value['op'])}`);
  }
}

function parseIdempotency(value: unknown): Idempotency {
  if (!isFields(value)) return fail('"idempotency" must be a map');
  onlyFields(value, ['id', 'fingerprint', 'at'], 'idempotency');
  const id = value['id'];
  if (typeof id !== 'string' || id.length === 0 || id.length > MAX_IDEMPOTENCY_ID_LENGTH) {
    fail(`idempotency: "id" must be a string of 1..${MAX_IDEMPOTENCY_ID_LENGTH} characters`);
  }
  const fingerprint = bytesField(value, 'fingerprint', 'idempotency', true);
  if (fingerprint.length > MAX_FINGERPRINT_BYTES) fail('idempotency: "fingerprint" is too long');
  return { id, fingerprint, at: countField(value, 'at', 'idempotency') };
}

function parseRequest(body: Fields): Request {
  switch (body['kind']) {
    case 'put': {
      onlyFields(body, ['kind', 'key', 'value', 'condition', 'idempotency'], 'put');
      const put = {
        kind: 'put' as const,
        key: bytesField(body, 'key', 'put', true),
        value: bytesField(body, 'value', 'put', false),
      };
      return body['condition'] === undefined ? put : { ...put, condition: parseCondition(body['condition']) };
    }
    case 'delete': {
      onlyFields(body, ['kind', 'key', 'condition', 'idempotency'], 'delete');
      const del = { kind: 'delete' as const, key: bytesField(body, 'key', 'delete', true) };
      return body['condition'] === undefined ? del : { ...del, condition: parseCondition(body['condition']) };
    }
    case 'txn':
      onlyFields(body, ['kind', 'compare', 'success', 'failure', 'idempotency'], 'txn');
      return {
        kind: 'txn',
        compare: listField(body, 'compare', 'txn').map((c, i) => parseCompare(c, `txn compare ${i}`)),
        success: listField(body, 'success', 'txn').map((o, i) => parseTxnOp(o, `txn success ${i}`)),
        failure: listField(body, 'failure', 'txn').map((o, i) => parseTxnOp(o, `txn failure ${i}`)),
      };
    default:
      return fail(`unknown kind ${String(body['kind'])}`);
  }
}

/** Decodes the bytes after the tag. */
export function decodeRequestCommand(packed: Uint8Array): RequestCommand {
  let body: unknown;
  try {
    body = packr.unpack(packed);
  } catch (error) {
    fail(`not msgpack (${(error as Error).message})`);
  }
  if (!isFields(body)) return fail('not a map');
  const request = parseRequest(body);
  return body['idempotency'] === undefined
    ? { op: 'request', request }
    : { op: 'request', request, idempotency: parseIdempotency(body['idempotency']) };
}
