// POST /txn's body (src/api/schemas.ts, then src/api/txn.ts): what it accepts becomes the request the
// log carries; every refusal names the field at fault and says what it must be, before anything is
// proposed.
import { afterEach, describe, expect, it } from 'vitest';
import type { ClientApi } from '../../src/api/client-api.js';
import type { Limits } from '../../src/config/cluster-config.js';
import { decodeCommand } from '../../src/storage/command.js';
import type { RequestCommand } from '../../src/storage/request.js';
import { buildTestApi, FakeKv, FakeNode } from './fakes.js';

const bytes = (text: string) => new TextEncoder().encode(text);

let app: ClientApi;
let node: FakeNode;

function build(limits: Partial<Limits> = {}): ClientApi {
  node = new FakeNode();
  node.writeOutcome = async () => ({
    index: 8,
    term: 2,
    answer: { kind: 'applied', result: { kind: 'txn', succeeded: true, results: [] } },
  });
  app = buildTestApi(node, new FakeKv(), { limits });
  return app;
}

afterEach(async () => {
  await app?.close();
});

async function post(body: unknown, headers: Record<string, string> = {}) {
  return app.inject({
    method: 'POST',
    url: '/txn',
    payload: typeof body === 'string' ? body : JSON.stringify(body),
    headers,
  });
}

async function refusal(body: unknown): Promise<{ status: number; error: string; message: string }> {
  const res = await post(body);
  const answer = res.json() as { error: string; message: string };
  expect(Object.keys(answer).sort()).toEqual(['error', 'message']);
  expect(node.writes, 'nothing proposed').toEqual([]);
  return { status: res.statusCode, ...answer };
}

function proposed(): RequestCommand {
  expect(node.writes).toHaveLength(1);
  const command = decodeCommand(node.writes[0]!);
  if (command.op !== 'request') throw new Error(`not a request: ${command.op}`);
  return command;
}

describe('POST /txn accepts', () => {
  it('every form of comparison and operation, with "=" as the default operator', async () => {
    build({ maxTxnOps: 10 });
    const res = await post({
      compare: [
        { key: 'a', exists: true },
        { key: 'b', modIndex: 5 },
        { key: 'c', createIndex: 0, cmp: '>' },
        { key: 'd', version: 2, cmp: '<=' },
        { key: 'e', value: 'é', cmp: '!=' },
        { key: 'f', valueBase64: '//4=' },
      ],
      success: [
        { op: 'put', key: 'a', value: 'text' },
        { op: 'put', key: 'b', valueBase64: 'AAE=' },
      ],
      failure: [
        { op: 'delete', key: 'a' },
        { op: 'get', key: 'a' },
      ],
    });
    expect(res.statusCode).toBe(200);
    expect(proposed()).toEqual({
      op: 'request',
      request: {
        kind: 'txn',
        compare: [
          { key: bytes('a'), target: 'exists', exists: true },
          { key: bytes('b'), target: 'modIndex', cmp: '=', number: 5 },
          { key: bytes('c'), target: 'createIndex', cmp: '>', number: 0 },
          { key: bytes('d'), target: 'version', cmp: '<=', number: 2 },
          { key: bytes('e'), target: 'value', cmp: '!=', bytes: bytes('é') },
          { key: bytes('f'), target: 'value', cmp: '=', bytes: new Uint8Array([0xff, 0xfe]) },
        ],
        success: [
          { op: 'put', key: bytes('a'), value: bytes('text') },
          { op: 'put', key: bytes('b'), value: new Uint8Array([0, 1]) },
        ],
        failure: [
          { op: 'delete', key: bytes('a') },
          { op: 'get', key: bytes('a') },
        ],
      },
    });
  });

  it('every list is optional; the body is JSON whatever its content type says', async () => {
    build();
    const res = await post('{"success":[{"op":"get","key":"k"}]}', {
      'content-type': 'application/x-www-form-urlencoded',
    });
    expect(res.statusCode).toBe(200);
    expect(proposed().request).toEqual({
      kind: 'txn',
      compare: [],
      success: [{ op: 'get', key: bytes('k') }],
      failure: [],
    });
  });

  it('a get and a write of one key in a branch, and one write of a key in each branch', async () => {
    build();
    const res = await post({
      success: [
        { op: 'get', key: 'k' },
        { op: 'put', key: 'k', value: '1' },
        { op: 'get', key: 'k' },
      ],
      failure: [{ op: 'delete', key: 'k' }],
    });
    expect(res.statusCode).toBe(200);
  });
});

describe('POST /txn refuses, naming the field', () => {
  it.each([
    [
      'not JSON',
      'nope',
      'the body must be JSON: {"compare":[{"key":"k","modIndex":5}],"success":[{"op":"put","key":"k","value":"v"}],"failure":[]}',
    ],
    ['not an object', ['a'], 'body must be a JSON object {"compare":[...],"success":[...],"failure":[...]}, got ["a"]'],
    ['an unknown list', { compares: [] }, 'body: unknown key "compares" (known: compare, success, failure)'],
    [
      'a list that is not an array',
      { success: {} },
      'body/success must be an array of at most 6 operations (limits.maxTxnOps, for all three lists together), got {}',
    ],
    [
      'an unknown op',
      { success: [{ op: 'patch', key: 'k' }] },
      'body/success/0/op must be "put", "delete" or "get", got "patch"',
    ],
    ['an op without a key', { failure: [{ op: 'get' }] }, 'body/failure/0/key is missing: it must be a key (a string)'],
    [
      'an unknown field of an op',
      { success: [{ op: 'put', key: 'k', value: 'v', ttl: 5 }] },
      'body/success/0: unknown key "ttl" (known: op, key, value, valueBase64)',
    ],
    [
      'a value that is not text',
      { success: [{ op: 'put', key: 'k', value: 5 }] },
      'body/success/0/value must be a string (the value as text), got 5',
    ],
    [
      'a put without a value',
      { success: [{ op: 'put', key: 'k' }] },
      'body/success/0: a put must have exactly one of "value" (text) and "valueBase64", got none',
    ],
    [
      'a put with both values',
      { success: [{ op: 'put', key: 'k', value: 'a', valueBase64: 'YQ==' }] },
      'body/success/0: a put must have exactly one of "value" (text) and "valueBase64", got both',
    ],
    [
      'a delete with a value',
      { failure: [{ op: 'delete', key: 'k', value: 'a' }] },
      'body/failure/0/value does not go with a delete: only a put takes a value',
    ],
    [
      'a get with a value',
      { success: [{ op: 'get', key: 'k', valueBase64: 'YQ==' }] },
      'body/success/0/valueBase64 does not go with a get: only a put takes a value',
    ],
    [
      'base64 that is not',
      { success: [{ op: 'put', key: 'k', valueBase64: 'a b' }] },
      'body/success/0/valueBase64 must be base64 (RFC 4648, with padding), got "a b"',
    ],
    [
      'base64 without padding',
      { compare: [{ key: 'k', valueBase64: 'YQ' }] },
      'body/compare/0/valueBase64 must be base64 (RFC 4648, with padding), got "YQ"',
    ],
    [
      'a comparison without a target',
      { compare: [{ key: 'k' }] },
      'body/compare/0 must have exactly one of "exists", "modIndex", "createIndex", "version", "value", "valueBase64", got none',
    ],
    [
      'a comparison with two targets',
      { compare: [{ key: 'k', modIndex: 1, value: '1' }] },
      'body/compare/0 must have exactly one of "exists", "modIndex", "createIndex", "version", "value", "valueBase64", got "modIndex" and "value"',
    ],
    [
      'cmp with exists',
      { compare: [{ key: 'k', exists: true, cmp: '=' }] },
      'body/compare/0/cmp does not go with "exists" (which is true or false): leave it out',
    ],
    [
      'an unknown operator',
      { compare: [{ key: 'k', version: 1, cmp: '==' }] },
      'body/compare/0/cmp must be one of "=", "!=", "<", ">", "<=", ">=", got "=="',
    ],
    [
      'a negative number',
      { compare: [{ key: 'k', modIndex: -1 }] },
      'body/compare/0/modIndex must be a non-negative integer, got -1',
    ],
    [
      'a fraction',
      { compare: [{ key: 'k', version: 1.5 }] },
      'body/compare/0/version must be a non-negative integer, got 1.5',
    ],
    [
      'a number as text',
      { compare: [{ key: 'k', createIndex: '3' }] },
      'body/compare/0/createIndex must be a non-negative integer, got "3"',
    ],
    [
      'exists that is not a boolean',
      { compare: [{ key: 'k', exists: 'yes' }] },
      'body/compare/0/exists must be true or false, got "yes"',
    ],
    [
      'an unknown field of a comparison',
      { compare: [{ key: 'k', mod_index: 1 }] },
      'body/compare/0: unknown key "mod_index" (known: key, exists, modIndex, createIndex, version, value, valueBase64, cmp)',
    ],
    [
      'a key written twice in a branch',
      {
        success: [
          { op: 'put', key: 'k', value: '1' },
          { op: 'get', key: 'j' },
          { op: 'delete', key: 'k' },
        ],
      },
      'body/success/2/key: the success branch writes the key "k" twice (items 0 and 2): one put or delete per key in a branch',
    ],
    [
      'too many items in all',
      {
        compare: [
          { key: 'a', exists: true },
          { key: 'b', exists: true },
        ],
        success: [
          { op: 'get', key: 'a' },
          { op: 'get', key: 'b' },
        ],
        failure: [
          { op: 'get', key: 'a' },
          { op: 'get', key: 'b' },
          { op: 'get', key: 'c' },
        ],
      },
      'body has 7 items in compare, success and failure together: the limit is 6 (limits.maxTxnOps)',
    ],
    [
      'too many items in one list',
      { success: Array.from({ length: 7 }, () => ({ op: 'get', key: 'k' })) },
      'body/success must be an array of at most 6 operations (limits.maxTxnOps, for all three lists together), got [{"op":"get","key":"k"},{"op":"get","key":"k"},{"op":"get","key"...',
    ],
  ])('%s: 400 bad_request', async (_what, body, message) => {
    build();
    expect(await refusal(body)).toEqual({ status: 400, error: 'bad_request', message });
  });

  it.each([
    ['an empty key', { success: [{ op: 'get', key: '' }] }, 'body/success/0/key "": the key is empty: use /kv/<key>'],
    [
      'a key over the limit',
      { compare: [{ key: 'k'.repeat(17), exists: false }] },
      `body/compare/0/key "${'k'.repeat(17)}": the key is 17 bytes; the limit is 16`,
    ],
    [
      'a control character',
      { failure: [{ op: 'delete', key: 'a\u0001' }] },
      'body/failure/0/key "a\\u0001": the key contains a control character',
    ],
    [
      'a key that is not a string',
      { success: [{ op: 'get', key: 5 }] },
      'body/success/0/key must be a key (a string), got 5',
    ],
  ])('%s: 400 bad_key', async (_what, body, message) => {
    build();
    expect(await refusal(body)).toEqual({ status: 400, error: 'bad_key', message });
  });

  it('a value over limits.maxValueBytes: 413 value_too_large, naming it', async () => {
    build();
    expect(
      await refusal({ success: [{ op: 'put', key: 'k', valueBase64: Buffer.alloc(65).toString('base64') }] }),
    ).toEqual({
      status: 413,
      error: 'value_too_large',
      message: 'body/success/0/valueBase64 is a value of 65 bytes: the limit is 64 (limits.maxValueBytes)',
    });
  });

  it('a body over limits.maxTxnBytes: 413 txn_too_large', async () => {
    build({ maxValueBytes: 4096 });
    expect(await refusal({ success: [{ op: 'put', key: 'k', value: 'v'.repeat(1100) }] })).toEqual({
      status: 413,
      error: 'txn_too_large',
      message:
        "the transaction's body exceeds limits.maxTxnBytes (1024 bytes): split it, or write big values with PUT /kv/<key>",
    });
  });

  it('the other routes keep their own body limit and its message', async () => {
    build();
    const res = await app.inject({ method: 'PUT', url: '/kv/k', payload: Buffer.alloc(65) });
    expect(res.statusCode).toBe(413);
    expect(res.json()).toEqual({ error: 'value_too_large', message: 'the value exceeds the limit of 64 bytes' });
  });

  it('a bad query, a precondition header, or a bad Idempotency-Key', async () => {
    build();
    let res = await app.inject({ method: 'POST', url: '/txn?redirect=maybe', payload: '{}' });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({
      error: 'bad_request',
      message: 'querystring/redirect must be "true" or "false", got "maybe"',
    });
    res = await app.inject({ method: 'POST', url: '/txn', payload: '{}', headers: { 'if-match': '"5"' } });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({
      error: 'bad_precondition',
      message:
        'POST /txn takes no If-Match or If-None-Match: put its conditions in "compare" (e.g. {"key":"k","modIndex":5} or {"key":"k","exists":false})',
    });
    res = await app.inject({ method: 'POST', url: '/txn', payload: '{}', headers: { 'idempotency-key': 'a b' } });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: 'bad_idempotency_key' });
    expect(node.writes).toEqual([]);
  });
});
