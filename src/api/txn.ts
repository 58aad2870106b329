// POST /txn's body, once its schema (schemas.ts) checked the shape, into the transaction request the
// log carries (src/storage/request.ts): what a schema cannot say is checked here, and every refusal
// names the field at fault the way the schema's do (`body/compare/0 ...`).
//
//   {"compare": [{"key": "k", "modIndex": 5}, {"key": "j", "exists": false}, {"key": "v", "value": "x", "cmp": "!="}],
//    "success": [{"op": "put", "key": "k", "value": "new"}, {"op": "get", "key": "j"}],
//    "failure": [{"op": "get", "key": "k"}]}
//
// Each list is optional (empty by default). A comparison has exactly one target; "cmp" (default "=")
// goes with a number or a value, never with "exists". A put has exactly one of "value" (text) and
// "valueBase64"; a delete or a get has neither. The three lists hold at most limits.maxTxnOps items
// together, and a branch writes a key at most once (which write would win is a question the client
// should not have to ask).
import type { Limits } from '../config/cluster-config.js';
import type { Compare, CompareOp, NumericTarget, Request, TxnOp } from '../storage/request.js';
import { quote } from '../schema/problems.js';
import type { ErrorAnswer } from './errors.js';
import { parseKey } from './keys.js';
import type { TxnBody, TxnCompareItem, TxnOpItem } from './schemas.js';

export type TxnRequest = Extract<Request, { kind: 'txn' }>;

export type TxnCheck =
  { readonly ok: true; readonly request: TxnRequest } | { readonly ok: false; readonly refusal: ErrorAnswer };

const TARGETS = ['exists', 'modIndex', 'createIndex', 'version', 'value', 'valueBase64'] as const;
const utf8 = new TextEncoder();

/** A refusal, thrown inside the parse and returned by parseTxn. */
class Refusal extends Error {
  constructor(readonly answer: ErrorAnswer) {
    super(answer.message);
  }
}

function refuse(message: string, error = 'bad_request', status = 400): never {
  throw new Refusal({ status, error, message });
}

/** Canonical base64 (RFC 4648 4, with padding): what Buffer would quietly read around is refused. */
function base64Bytes(text: string, where: string): Uint8Array {
  const bytes = Buffer.from(text, 'base64');
  if (bytes.toString('base64') !== text) refuse(`${where} must be base64 (RFC 4648, with padding), got ${quote(text)}`);
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function keyOf(raw: string, where: string, limits: Limits): Uint8Array {
  const key = parseKey(raw, limits.maxKeyBytes);
  if (!key.ok) refuse(`${where}/key ${quote(raw)}: ${key.message}`, 'bad_key');
  return key.key;
}

function compareOf(item: TxnCompareItem, where: string, limits: Limits): Compare {
  const key = keyOf(item.key, where, limits);
  const targets = TARGETS.filter((target) => item[target] !== undefined);
  if (targets.length !== 1) {
    const got = targets.length === 0 ? 'none' : targets.map((t) => JSON.stringify(t)).join(' and ');
    refuse(`${where} must have exactly one of ${TARGETS.map((t) => JSON.stringify(t)).join(', ')}, got ${got}`);
  }
  const cmp: CompareOp = item.cmp ?? '=';
  if (item.exists !== undefined) {
    if (item.cmp !== undefined) refuse(`${where}/cmp does not go with "exists" (which is true or false): leave it out`);
    return { key, target: 'exists', exists: item.exists };
  }
  if (item.value !== undefined) return { key, target: 'value', cmp, bytes: utf8.encode(item.value) };
  if (item.valueBase64 !== undefined) {
    return { key, target: 'value', cmp, bytes: base64Bytes(item.valueBase64, `${where}/valueBase64`) };
  }
  const target = targets[0] as NumericTarget;
  return { key, target, cmp, number: item[target]! };
}

function opOf(item: TxnOpItem, where: string, limits: Limits): TxnOp {
  const key = keyOf(item.key, where, limits);
  const given = (['value', 'valueBase64'] as const).filter((field) => item[field] !== undefined);
  if (item.op !== 'put') {
    if (given.length > 0) refuse(`${where}/${given[0]!} does not go with a ${item.op}: only a put takes a value`);
    return { op: item.op, key };
  }
  if (given.length !== 1) {
    refuse(
      `${where}: a put must have exactly one of "value" (text) and "valueBase64", got ${given.length === 0 ? 'none' : 'both'}`,
    );
  }
  const value =
    item.value !== undefined ? utf8.encode(item.value) : base64Bytes(item.valueBase64!, `${where}/valueBase64`);
  if (value.length > limits.maxValueBytes) {
    refuse(
      `${where}/${given[0]!} is a value of ${value.length} bytes: the limit is ${limits.maxValueBytes} (limits.maxValueBytes)`,
      'value_too_large',
      413,
    );
  }
  return { op: 'put', key, value };
}

function branchOf(items: readonly TxnOpItem[], name: string, limits: Limits): TxnOp[] {
  const written = new Map<string, number>();
  return items.map((item, i) => {
    const where = `body/${name}/${i}`;
    const op = opOf(item, where, limits);
    if (op.op !== 'get') {
      const first = written.get(item.key);
      if (first !== undefined) {
        refuse(
          `${where}/key: the ${name} branch writes the key ${quote(item.key)} twice (items ${first} and ${i}): ` +
            'one put or delete per key in a branch',
        );
      }
      written.set(item.key, i);
    }
    return op;
  });
}

/** The transaction `body` asks for, or why it is refused. */
export function parseTxn(body: TxnBody, limits: Limits): TxnCheck {
  const compare = body.compare ?? [];
  const success = body.success ?? [];
  const failure = body.failure ?? [];
  try {
    const items = compare.length + success.length + failure.length;
    if (items > limits.maxTxnOps) {
      refuse(
        `body has ${items} items in compare, success and failure together: the limit is ${limits.maxTxnOps} (limits.maxTxnOps)`,
      );
    }
    return {
      ok: true,
      request: {
        kind: 'txn',
        compare: compare.map((item, i) => compareOf(item, `body/compare/${i}`, limits)),
        success: branchOf(success, 'success', limits),
        failure: branchOf(failure, 'failure', limits),
      },
    };
  } catch (error) {
    if (error instanceof Refusal) return { ok: false, refusal: error.answer };
    throw error;
  }
}
