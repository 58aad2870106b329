// The client API's query strings and bodies are checked by their schemas (src/api/schemas.ts), built
// from the configured limits: a refusal keeps the `{error, message}` shape and status, and its
// message names the bad field and says what it must be.
import { afterEach, describe, expect, it } from 'vitest';
import type { ClientApi } from '../../src/api/client-api.js';
import type { Limits } from '../../src/config/cluster-config.js';
import { buildTestApi, FakeKv, FakeNode } from './fakes.js';

const encoder = new TextEncoder();

let app: ClientApi;
let node: FakeNode;
let kv: FakeKv;

function build(limits: Partial<Limits> = {}): ClientApi {
  node = new FakeNode();
  kv = new FakeKv();
  app = buildTestApi(node, kv, { limits });
  return app;
}

afterEach(async () => {
  await app?.close();
});

async function refusal(
  method: 'GET' | 'PUT' | 'POST',
  url: string,
  payload?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; error: string; message: string }> {
  const res = await app.inject({
    method,
    url,
    headers,
    ...(payload === undefined ? {} : { payload: typeof payload === 'string' ? payload : JSON.stringify(payload) }),
  });
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  const body = res.json() as { error: string; message: string };
  expect(Object.keys(body).sort()).toEqual(['error', 'message']);
  return { status: res.statusCode, ...body };
}

describe('query strings', () => {
  it.each([
    ['x', '"x"'],
    ['0', '0'],
    ['6', '6'],
    ['1.5', '1.5'],
    ['', '""'],
  ])('GET /kv?limit=%s: 400 naming querystring/limit and its range from the config', async (limit, got) => {
    build();
    expect(await refusal('GET', `/kv?limit=${limit}`)).toEqual({
      status: 400,
      error: 'bad_request',
      message: `querystring/limit must be an integer from 1 to 5, got ${got}`,
    });
  });

  it('the range follows limits.maxPageSize', async () => {
    build({ maxPageSize: 3 });
    kv.data.set('a', encoder.encode('1'));
    expect((await app.inject({ method: 'GET', url: '/kv?limit=3' })).statusCode).toBe(200);
    expect((await refusal('GET', '/kv?limit=4')).message).toBe(
      'querystring/limit must be an integer from 1 to 3, got 4',
    );
  });

  it('a number is read from decimal text as before ("05", "2.", "1e0"), never from hex, blanks or ""', async () => {
    build();
    for (const limit of ['05', '2.', '1e0', '%2B3']) {
      expect((await app.inject({ method: 'GET', url: `/kv?limit=${limit}` })).statusCode, limit).toBe(200);
    }
    expect((await app.inject({ method: 'GET', url: '/kv/k?consistency=stale&max_lag_ms=.5' })).statusCode).toBe(404);
    const limitMessage = async (limit: string) => (await refusal('GET', `/kv?limit=${limit}`)).message;
    expect(await limitMessage('0x2')).toBe('querystring/limit must be an integer from 1 to 5, got "0x2"');
    expect(await limitMessage('+2')).toBe('querystring/limit must be an integer from 1 to 5, got " 2"');
  });

  it('consistency, max_lag_ms and redirect are named when wrong', async () => {
    build();
    expect(await refusal('GET', '/kv/k?consistency=eventual')).toEqual({
      status: 400,
      error: 'bad_request',
      message: 'querystring/consistency must be "linearizable" (the default), "stale" or "log", got "eventual"',
    });
    expect((await refusal('GET', '/kv?consistency=strong')).message).toMatch(/^querystring\/consistency must be/);
    expect((await refusal('GET', '/kv/k?consistency=stale&max_lag_ms=-1')).message).toBe(
      'querystring/max_lag_ms must be a non-negative number of milliseconds, got -1',
    );
    expect((await refusal('GET', '/kv/k?consistency=stale&max_lag_ms=soon')).message).toBe(
      'querystring/max_lag_ms must be a non-negative number of milliseconds, got "soon"',
    );
    expect((await refusal('GET', '/kv/k?consistency=stale&max_lag_ms=1e400')).message).toMatch(/got "1e400"$/);
    expect(node.barriers).toBe(0);
  });

  it('a parameter given twice is refused, not half-ignored', async () => {
    // Regression: `?prefix=a&prefix=b` was not a string, so the scan ran over every key.
    build();
    kv.data.set('a1', encoder.encode('1'));
    kv.data.set('z9', encoder.encode('2'));
    expect(await refusal('GET', '/kv?prefix=a&prefix=b')).toEqual({
      status: 400,
      error: 'bad_request',
      message: 'querystring/prefix must be one key prefix, got ["a","b"]',
    });
    const twice = await refusal('GET', '/kv/k?consistency=stale&consistency=stale');
    expect(twice.message).toMatch(/^querystring\/consistency must be/);
    expect(node.barriers).toBe(0);
  });

  it('?redirect takes "true" or "false"; anything else is refused before anything is written', async () => {
    build();
    expect(await refusal('PUT', '/kv/k?redirect=yes', 'v', { 'content-type': 'text/plain' })).toEqual({
      status: 400,
      error: 'bad_request',
      message: 'querystring/redirect must be "true" or "false", got "yes"',
    });
    expect((await app.inject({ method: 'DELETE', url: '/kv/k?redirect=1' })).statusCode).toBe(400);
    expect(node.writes).toEqual([]);
    expect((await app.inject({ method: 'PUT', url: '/kv/k?redirect=false', payload: 'v' })).statusCode).toBe(200);
  });

  it('unknown parameters are ignored, as before', async () => {
    build();
    kv.data.set('a', encoder.encode('1'));
    const page = await app.inject({ method: 'GET', url: '/kv?prefix=a&_=12345' });
    expect(page.statusCode).toBe(200);
    expect(page.json()).toEqual({ items: [{ key: 'a', value: '1' }], next: null });
    expect((await app.inject({ method: 'PUT', url: '/kv/k?trace=1', payload: 'v' })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/kv/a?consistency=stale&max_lag_ms=10&x=y' })).body).toBe('1');
  });

  it('a key in the path keeps its own check and error code', async () => {
    build();
    expect(await refusal('GET', `/kv/${'k'.repeat(17)}?consistency=stale`)).toEqual({
      status: 400,
      error: 'bad_key',
      message: 'the key is 17 bytes; the limit is 16',
    });
  });
});

describe('the /mget body', () => {
  it('is JSON whatever the content type says (curl -d sends a form)', async () => {
    build();
    kv.data.set('a', encoder.encode('1'));
    const res = await app.inject({
      method: 'POST',
      url: '/mget',
      payload: '{"keys":["a"]}',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ items: [{ key: 'a', value: '1' }] });
    expect(await refusal('POST', '/mget', 'not json', { 'content-type': 'text/plain' })).toEqual({
      status: 400,
      error: 'bad_request',
      message: 'the body must be JSON: {"keys":["a","b"]}',
    });
  });

  it('names what is wrong: no keys, too many, not an array, not an object', async () => {
    build();
    const json = { 'content-type': 'application/json' };
    expect(await refusal('POST', '/mget', {}, json)).toEqual({
      status: 400,
      error: 'bad_request',
      message: 'body/keys is missing: it must be an array of 1 to 5 keys',
    });
    const message = async (body: unknown) => (await refusal('POST', '/mget', body, json)).message;
    expect(await message({ keys: [] })).toBe('body/keys must be an array of 1 to 5 keys, got []');
    expect(await message({ keys: ['1', '2', '3', '4', '5', '6'] })).toBe(
      'body/keys must be an array of 1 to 5 keys, got ["1","2","3","4","5","6"]',
    );
    expect(await message({ keys: 'a' })).toBe('body/keys must be an array of 1 to 5 keys, got "a"');
    expect(await message(['a'])).toBe('body must be a JSON object {"keys":["a","b"]}, got ["a"]');
    expect(node.barriers).toBe(0);
  });

  it('a key that is not a string is a bad key, never read as its string form', async () => {
    // Fastify's default validator (Ajv, coerceTypes) would have turned 5 into the key "5".
    build();
    kv.data.set('5', encoder.encode('five'));
    expect(await refusal('POST', '/mget', { keys: ['a', 5] }, { 'content-type': 'application/json' })).toEqual({
      status: 400,
      error: 'bad_key',
      message: 'body/keys/1 must be a key (a string), got 5',
    });
    expect(node.barriers).toBe(0);
  });

  it('a refusal lists a few problems, not thousands', async () => {
    build({ maxPageSize: 10_000, maxValueBytes: 1 << 20 });
    const keys = Array.from({ length: 5000 }, (_, i) => i);
    const { error, message } = await refusal('POST', '/mget', { keys }, { 'content-type': 'application/json' });
    expect(error).toBe('bad_key');
    expect(message).toMatch(/^body\/keys\/0 must be a key \(a string\), got 0; body\/keys\/1 must be/);
    expect(message).toMatch(/got 4 \(and more\)$/);
    expect(message.length).toBeLessThan(400);
  });

  it('the query is checked too', async () => {
    build();
    const { message } = await refusal('POST', '/mget?consistency=fast', { keys: ['a'] });
    expect(message).toMatch(/^querystring\/consistency must be/);
  });
});
