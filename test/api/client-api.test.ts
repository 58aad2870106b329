// The client API's validation and error mapping, without a cluster (fastify.inject and a fake node).
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { ClientApi } from '../../src/api/client-api.js';
import {
  LeaderTransferError,
  NotLeaderError,
  OverloadedError,
  ReadTimeoutError,
  WriteLostError,
  WriteUnknownError,
} from '../../src/node/errors.js';
import { decodeCommand } from '../../src/storage/command.js';
import { ApplyingNode, buildTestApi, FakeKv, FakeNode } from './fakes.js';
import { rawRequest } from './raw-http.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

let app: ClientApi;
let node: FakeNode;
let kv: FakeKv;

function build(live = true): ClientApi {
  node = new FakeNode();
  kv = new FakeKv();
  app = buildTestApi(node, kv, {
    clientUrlOf: (id) => ({ n1: 'http://127.0.0.1:7001', n2: 'http://127.0.0.1:7002' })[id],
    live: () => live,
  });
  return app;
}

afterEach(async () => {
  await app?.close();
});

describe('writes', () => {
  it('PUT answers 200 with the index and term once the node says the write is applied', async () => {
    build();
    const res = await app.inject({
      method: 'PUT',
      url: '/kv/colour',
      payload: 'blue',
      headers: { 'content-type': 'text/plain' },
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ index: 7, term: 2 });
    expect(res.headers['x-raft-index']).toBe('7');
    expect(res.headers['x-raft-term']).toBe('2');
    expect(decodeCommand(node.writes[0]!)).toEqual({
      op: 'put',
      key: encoder.encode('colour'),
      value: expect.anything(),
    });
    expect(decoder.decode((decodeCommand(node.writes[0]!) as { value: Uint8Array }).value)).toBe('blue');
  });

  it('keys may contain slashes and percent-encoded UTF-8', async () => {
    build();
    await app.inject({ method: 'PUT', url: '/kv/a%2Fb/%C3%A9', payload: 'x' });
    expect(decodeCommand(node.writes[0]!)).toMatchObject({ op: 'put', key: encoder.encode('a/b/é') });
  });

  it("refuses a raw '#' in the URL with 400 on every route, before anything is written or read; %23 is the key's '#'", async () => {
    // Regression: find-my-way ends the path at a raw '#', so `PUT /kv/x#y` wrote key "x".
    // inject() drops fragments like any client, so these go raw over a real socket.
    build();
    const base = await app.listen({ host: '127.0.0.1', port: 0 });
    kv.data.set('x', encoder.encode('1'));
    for (const [method, target, error] of [
      ['PUT', '/kv/x#y', 'bad_key'],
      ['PUT', '/kv/x#', 'bad_key'],
      ['DELETE', '/kv/x#y', 'bad_key'],
      ['GET', '/kv/x#y', 'bad_key'],
      ['GET', '/kv/x#y?consistency=log', 'bad_key'],
      ['GET', '/kv?prefix=x#y', 'bad_key'],
      ['GET', '/kv#x', 'bad_key'],
      ['POST', '/mget#x', 'bad_request'],
      ['GET', '/status#x', 'bad_request'],
    ] as const) {
      const res = await rawRequest(
        base,
        method,
        target,
        method === 'PUT' ? 'v' : method === 'POST' ? '{"keys":["x"]}' : '',
      );
      expect(res.status, `${method} ${target}`).toBe(400);
      expect(JSON.parse(res.body), `${method} ${target}`).toEqual({
        error,
        message: expect.stringContaining('encode it as %23'),
      });
    }
    expect(node.writes).toEqual([]);
    expect(node.barriers).toBe(0);
    const put = await rawRequest(base, 'PUT', '/kv/x%23y', 'v');
    expect(put.status).toBe(200);
    expect(decodeCommand(node.writes[0]!)).toMatchObject({ op: 'put', key: encoder.encode('x#y') });
  });

  it('DELETE proposes a delete', async () => {
    build();
    const res = await app.inject({ method: 'DELETE', url: '/kv/colour' });
    expect(res.statusCode).toBe(200);
    expect(decodeCommand(node.writes[0]!).op).toBe('delete');
  });

  it.each([
    ['an empty key', '/kv/', 400, 'bad_key'],
    ['a key over the byte limit', `/kv/${'k'.repeat(17)}`, 400, 'bad_key'],
    ['a multi-byte key over the byte limit', `/kv/${'%C3%A9'.repeat(9)}`, 400, 'bad_key'],
    ['a control character', '/kv/a%00b', 400, 'bad_key'],
  ])('refuses %s with %i %s', async (_what, url, status, error) => {
    build();
    const res = await app.inject({ method: 'PUT', url, payload: 'x' });
    expect(res.statusCode).toBe(status);
    expect(res.json()).toMatchObject({ error, message: expect.any(String) });
    expect(node.writes).toEqual([]);
  });

  it('refuses a value over the limit with 413 and a JSON body', async () => {
    build();
    const res = await app.inject({
      method: 'PUT',
      url: '/kv/big',
      payload: Buffer.alloc(65),
      headers: { 'content-type': 'application/octet-stream' },
    });
    expect(res.statusCode).toBe(413);
    expect(res.json()).toMatchObject({ error: 'value_too_large' });
    expect(node.writes).toEqual([]);
  });

  it("maps the node's errors: unknown outcome 504, lost 503, overloaded 503 with Retry-After", async () => {
    build();
    node.writeOutcome = () => Promise.reject(new WriteUnknownError(9, 'was not applied in time'));
    let res = await app.inject({ method: 'PUT', url: '/kv/k', payload: 'v' });
    expect(res.statusCode).toBe(504);
    expect(res.json()).toMatchObject({ error: 'outcome_unknown', message: expect.stringMatching(/may or may not/) });
    node.writeOutcome = () => Promise.reject(new WriteLostError(9));
    res = await app.inject({ method: 'PUT', url: '/kv/k', payload: 'v' });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ error: 'not_committed' });
    node.writeOutcome = () => Promise.reject(new OverloadedError('busy'));
    res = await app.inject({ method: 'PUT', url: '/kv/k', payload: 'v' });
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBe('1');
  });

  it('on a follower: 307 to the leader with ?redirect=true; 503 when no leader is known or the hop limit is reached', async () => {
    build();
    node.writeOutcome = () => Promise.reject(new NotLeaderError('n2'));
    let res = await app.inject({ method: 'PUT', url: '/kv/k?redirect=true', payload: 'v' });
    expect(res.statusCode).toBe(307);
    expect(res.headers['location']).toBe('http://127.0.0.1:7002/kv/k?redirect=true');
    res = await app.inject({ method: 'PUT', url: '/kv/k', payload: 'v', headers: { 'x-raftkv-forwarded-by': 'n3' } });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ error: 'not_leader' });
    node.writeOutcome = () => Promise.reject(new NotLeaderError(''));
    res = await app.inject({ method: 'PUT', url: '/kv/k', payload: 'v' });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ error: 'no_leader' });
    expect(res.headers['retry-after']).toBe('1');
  });
  it('finds a leader that joined at run time in the membership, where the cluster config does not name it', async () => {
    build();
    node.membership = {
      members: [
        ...node.membership.members,
        { id: 'n4', clientUrl: 'http://10.0.0.4:7001', peerUrl: 'http://10.0.0.4:7101', role: 'voter' },
      ],
      removed: [],
    };
    node.softState = { role: 'follower', leader: 'n4', term: 5 };
    node.writeOutcome = () => Promise.reject(new NotLeaderError('n4'));
    const res = await app.inject({ method: 'PUT', url: '/kv/k?redirect=true', payload: 'v' });
    expect(res.statusCode).toBe(307);
    expect(res.headers['location']).toBe('http://10.0.0.4:7001/kv/k?redirect=true');
    const status = await app.inject({ method: 'GET', url: '/status' });
    expect(status.json()).toMatchObject({ leader: 'n4', leaderClientUrl: 'http://10.0.0.4:7001' });
  });

  it('while the leader hands over: 503 leader_transfer with Retry-After, for writes and log reads', async () => {
    // Regression: this answered 503 no_leader, "no leader is known", while the leader was known and serving reads.
    build();
    node.writeOutcome = () => Promise.reject(new LeaderTransferError());
    for (const [method, url] of [
      ['PUT', '/kv/k'],
      ['DELETE', '/kv/k'],
      ['GET', '/kv/k?consistency=log'],
    ] as const) {
      const res = await app.inject({ method, url, ...(method === 'PUT' ? { payload: 'v' } : {}) });
      expect(res.statusCode, `${method} ${url}`).toBe(503);
      expect(res.json()).toEqual({
        error: 'leader_transfer',
        message: 'leadership is being handed over to another node; nothing was written: retry shortly',
      });
      expect(res.headers['retry-after']).toBe('1');
    }
  });
});

describe('reads', () => {
  it('GET is linearizable by default: it waits for the read barrier, then answers the raw value', async () => {
    build();
    kv.data.set('colour', encoder.encode('blue'));
    const res = await app.inject({ method: 'GET', url: '/kv/colour' });
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe('blue');
    expect(res.headers['content-type']).toBe('application/octet-stream');
    expect(res.headers['x-raft-read-index']).toBe('7');
    expect(res.headers['x-raft-consistency']).toBe('linearizable');
    expect(node.barriers).toBe(1);
  });

  it('a missing key is 404 with a JSON body', async () => {
    build();
    const res = await app.inject({ method: 'GET', url: '/kv/nothing' });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({ error: 'not_found', message: 'no such key' });
  });

  it('?consistency=stale skips the barrier and says how stale it may be; max_lag_ms refuses when too stale', async () => {
    build();
    kv.data.set('k', encoder.encode('v'));
    let res = await app.inject({ method: 'GET', url: '/kv/k?consistency=stale' });
    expect(res.statusCode).toBe(200);
    expect(node.barriers).toBe(0);
    expect(res.headers['x-raft-applied-index']).toBe('7');
    expect(res.headers['x-raft-consistency']).toBe('stale');
    node.lag = 5000;
    res = await app.inject({ method: 'GET', url: '/kv/k?consistency=stale&max_lag_ms=1000' });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ error: 'too_stale', message: expect.stringMatching(/5000 ms ago/) });
    res = await app.inject({ method: 'GET', url: '/kv/k?consistency=stale&max_lag_ms=-1' });
    expect(res.statusCode).toBe(400);
    res = await app.inject({ method: 'GET', url: '/kv/k?consistency=eventual' });
    expect(res.statusCode).toBe(400);
  });

  it('a read that cannot get a read index fails with 503, never with stale data', async () => {
    build();
    kv.data.set('k', encoder.encode('v'));
    node.readOutcome = () => Promise.reject(new NotLeaderError(''));
    let res = await app.inject({ method: 'GET', url: '/kv/k' });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ error: 'no_leader' });
    node.readOutcome = () => Promise.reject(new ReadTimeoutError('slow'));
    res = await app.inject({ method: 'GET', url: '/kv/k' });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ error: 'read_timeout' });
  });

  it('?consistency=log commits a barrier through the log before reading', async () => {
    build();
    kv.data.set('k', encoder.encode('v'));
    const res = await app.inject({ method: 'GET', url: '/kv/k?consistency=log' });
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe('v');
    expect(decodeCommand(node.writes[0]!)).toEqual({ op: 'barrier' });
    expect(res.headers['x-raft-consistency']).toBe('log');
    expect(res.headers['x-raft-read-index']).toBe('7');
    expect(node.barriers).toBe(0);
  });

  it('POST /mget answers many keys at once, null for absent ones, and validates every key', async () => {
    build();
    kv.data.set('a', encoder.encode('1'));
    kv.data.set('b', encoder.encode('2'));
    let res = await app.inject({ method: 'POST', url: '/mget', payload: { keys: ['a', 'x', 'b'] } });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      items: [
        { key: 'a', value: '1' },
        { key: 'x', value: null },
        { key: 'b', value: '2' },
      ],
    });
    expect(node.barriers).toBe(1);
    res = await app.inject({ method: 'POST', url: '/mget', payload: { keys: ['a', ''] } });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: 'bad_key' });
    res = await app.inject({ method: 'POST', url: '/mget', payload: { keys: ['1', '2', '3', '4', '5', '6'] } });
    expect(res.statusCode).toBe(400);
    res = await app.inject({
      method: 'POST',
      url: '/mget',
      payload: 'not json',
      headers: { 'content-type': 'text/plain' },
    });
    expect(res.statusCode).toBe(400);
  });

  it('POST /mget refuses with 413 and how to fix it when the answer would pass limits.maxResponseBytes; one key is always answered', async () => {
    build();
    for (const k of ['a', 'b', 'c']) kv.data.set(k, encoder.encode(k.repeat(400)));
    let res = await app.inject({ method: 'POST', url: '/mget', payload: { keys: ['a', 'b', 'c'] } });
    expect(res.statusCode).toBe(413);
    const body = res.json() as { error: string; message: string };
    expect(body.error).toBe('answer_too_large');
    expect(body.message).toContain('limits.maxResponseBytes (1024 bytes');
    expect(body.message).toContain('ask for fewer keys per request (the first 2 fit)');
    res = await app.inject({ method: 'POST', url: '/mget', payload: { keys: ['a', 'b'] } });
    expect(res.statusCode).toBe(200);
    kv.data.set('big', encoder.encode('x'.repeat(2000)));
    res = await app.inject({ method: 'POST', url: '/mget', payload: { keys: ['big'] } });
    expect(res.statusCode).toBe(200);
    res = await app.inject({ method: 'POST', url: '/mget', payload: { keys: ['big', 'a'] } });
    expect(res.statusCode).toBe(413);
    expect((res.json() as { message: string }).message).not.toContain('fit)');
  });

  it("reads a key with '#' sent as %23, by GET and by prefix", async () => {
    build();
    kv.data.set('x#y', encoder.encode('hash'));
    kv.data.set('x', encoder.encode('plain'));
    const res = await app.inject({ method: 'GET', url: '/kv/x%23y' });
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe('hash');
    const page = await app.inject({ method: 'GET', url: '/kv?prefix=x%23' });
    expect(page.json()).toEqual({ items: [{ key: 'x#y', value: 'hash' }], next: null });
  });

  it('lists keys by prefix with a cursor, and refuses a bad limit', async () => {
    build();
    for (const k of ['a1', 'a2', 'a3', 'b1']) kv.data.set(k, encoder.encode(`v-${k}`));
    kv.data.set('a4', new Uint8Array([0xff, 0xfe]));
    let res = await app.inject({ method: 'GET', url: '/kv?prefix=a&limit=2' });
    expect(res.json()).toEqual({
      items: [
        { key: 'a1', value: 'v-a1' },
        { key: 'a2', value: 'v-a2' },
      ],
      next: 'a3',
    });
    res = await app.inject({ method: 'GET', url: '/kv?prefix=a&limit=2&start=a3' });
    expect(res.json()).toEqual({
      items: [
        { key: 'a3', value: 'v-a3' },
        { key: 'a4', valueBase64: '//4=' },
      ],
      next: null,
    });
    for (const limit of ['0', '6', 'x', '1.5']) {
      res = await app.inject({ method: 'GET', url: `/kv?limit=${limit}` });
      expect(res.statusCode).toBe(400);
    }
  });
});

describe('operations', () => {
  it('/status, /livez and /readyz describe the node', async () => {
    build();
    expect((await app.inject({ method: 'GET', url: '/status' })).json()).toMatchObject({
      id: 'n1',
      clusterId: 'c',
      role: 'leader',
      leader: 'n1',
      leaderClientUrl: 'http://127.0.0.1:7001',
      commit: 7,
    });
    expect((await app.inject({ method: 'GET', url: '/livez' })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
    node.softState = { role: 'follower', leader: '', term: 3 };
    const notReady = await app.inject({ method: 'GET', url: '/readyz' });
    expect(notReady.statusCode).toBe(503);
    expect(notReady.json()).toMatchObject({ error: 'not_ready' });
  });

  it('a stopping node is not live', async () => {
    build(false);
    expect((await app.inject({ method: 'GET', url: '/livez' })).statusCode).toBe(503);
  });

  it('an unknown route is a JSON 404', async () => {
    build();
    const res = await app.inject({ method: 'POST', url: '/raft/messages' });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ error: 'not_found' });
  });
});

// --- versioned keys: ETags, conditional writes, transactions, idempotent retries ---------------------

describe('versioned keys', () => {
  let applying: ApplyingNode;

  /** The API over a node that applies each write with the state machine's own code (fakes.ts). */
  function buildApplying(): ClientApi {
    kv = new FakeKv();
    applying = new ApplyingNode(kv);
    node = applying;
    app = buildTestApi(applying, kv, { limits: { maxTxnOps: 16 } });
    return app;
  }

  const put = (key: string, value: string, headers: Record<string, string> = {}) =>
    app.inject({
      method: 'PUT',
      url: `/kv/${key}`,
      payload: value,
      headers: { 'content-type': 'text/plain', ...headers },
    });
  const del = (key: string, headers: Record<string, string> = {}) =>
    app.inject({ method: 'DELETE', url: `/kv/${key}`, headers });
  const txn = (body: unknown, headers: Record<string, string> = {}) =>
    app.inject({ method: 'POST', url: '/txn', payload: JSON.stringify(body), headers });
  const lastCommand = () => decodeCommand(node.writes[node.writes.length - 1]!);

  it('GET sends the ETag and metadata; every PUT answers the new ETag, so read-modify-write needs no GET', async () => {
    buildApplying();
    let res = await put('colour', 'blue');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ index: 11, term: 2 });
    expect(res.headers['etag']).toBe('"11"');
    expect(lastCommand().op).toBe('put'); // no precondition, no idempotency key: the plain command
    res = await put('colour', 'green', { 'if-match': res.headers['etag'] as string });
    expect(res.statusCode).toBe(200);
    expect(res.headers['etag']).toBe('"12"');
    res = await app.inject({ method: 'GET', url: '/kv/colour' });
    expect(res.body).toBe('green');
    expect(res.headers).toMatchObject({
      etag: '"12"',
      'x-raft-mod-index': '12',
      'x-raft-create-index': '11',
      'x-raft-version': '2',
    });
    // A key written before versioned keys: modIndex 0, createIndex 0, version 1.
    kv.data.set('old', encoder.encode('legacy'));
    res = await app.inject({ method: 'GET', url: '/kv/old?consistency=stale' });
    expect(res.headers).toMatchObject({
      etag: '"0"',
      'x-raft-mod-index': '0',
      'x-raft-create-index': '0',
      'x-raft-version': '1',
    });
    expect((await put('old', 'new', { 'if-match': '"0"' })).statusCode).toBe(200);
  });

  it('If-Match with a stale ETag: 412 with the current metadata, nothing written', async () => {
    buildApplying();
    await put('k', 'v1'); // index 11
    await put('k', 'v2'); // index 12
    const res = await put('k', 'v3', { 'if-match': '"11"' });
    expect(res.statusCode).toBe(412);
    expect(res.json()).toEqual({
      error: 'precondition_failed',
      message:
        'the precondition did not hold when the write was applied at index 13: the key is at modIndex 12 (ETag "12"); nothing was written',
      current: { createIndex: 11, modIndex: 12, version: 2 },
    });
    expect(res.headers['etag']).toBeUndefined();
    expect(lastCommand()).toMatchObject({ op: 'request', request: { kind: 'put', condition: { modIndex: 11 } } });
    expect(decoder.decode(kv.data.get('k'))).toBe('v2');
    // On a key that does not exist: current is null.
    const missing = await put('nothing', 'x', { 'if-match': '"5"' });
    expect(missing.statusCode).toBe(412);
    expect(missing.json()).toMatchObject({ current: null, message: expect.stringContaining('the key does not exist') });
  });

  it('If-None-Match: * writes only a key that does not exist', async () => {
    buildApplying();
    let res = await put('fresh', '1', { 'if-none-match': '*' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['etag']).toBe('"11"');
    res = await put('fresh', '2', { 'if-none-match': '*' });
    expect(res.statusCode).toBe(412);
    expect(res.json()).toMatchObject({ current: { createIndex: 11, modIndex: 11, version: 1 } });
    expect(decoder.decode(kv.data.get('fresh'))).toBe('1');
  });

  it('a conditional DELETE deletes only the version it names', async () => {
    buildApplying();
    await put('k', 'v'); // 11
    let res = await del('k', { 'if-match': '"10"' });
    expect(res.statusCode).toBe(412);
    expect(kv.data.has('k')).toBe(true);
    res = await del('k', { 'if-match': '"11"' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ index: 13, term: 2 });
    expect(res.headers['etag']).toBeUndefined();
    expect(kv.data.has('k')).toBe(false);
  });

  it.each([
    ['PUT', { 'if-match': 'W/"11"' }],
    ['PUT', { 'if-match': '*' }],
    ['PUT', { 'if-match': '"1", "2"' }],
    ['PUT', { 'if-none-match': '"11"' }],
    ['DELETE', { 'if-match': '11' }],
    ['DELETE', { 'if-match': '"11"', 'if-none-match': '*' }],
  ])('%s with a malformed precondition %j: 400 bad_precondition, nothing proposed', async (method, headers) => {
    buildApplying();
    const res = await app.inject({ method: method as 'PUT', url: '/kv/k', payload: 'v', headers });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({ error: 'bad_precondition', message: expect.stringMatching(/If-(None-)?Match/) });
    expect(node.writes).toEqual([]);
  });

  it('Idempotency-Key: a retry gets the first answer (same index) without writing again; another request under it gets 422', async () => {
    buildApplying();
    const first = await put('k', 'v', { 'idempotency-key': 'req-1' });
    expect(first.statusCode).toBe(200);
    expect(first.json()).toEqual({ index: 11, term: 2 });
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    expect(lastCommand()).toMatchObject({ op: 'request', request: { kind: 'put' }, idempotency: { id: 'req-1' } });
    await put('other', 'x'); // 12
    const retry = await put('k', 'v', { 'idempotency-key': 'req-1' });
    expect(retry.statusCode).toBe(200);
    expect(retry.json()).toEqual({ index: 11, term: 2 });
    expect(retry.headers).toMatchObject({ etag: '"11"', 'x-raft-index': '11', 'idempotent-replayed': 'true' });
    expect(kv.meta.get('k')).toEqual({ createIndex: 11, modIndex: 11, version: 1 }); // not applied again
    for (const [what, res] of [
      ['another value', await put('k', 'w', { 'idempotency-key': 'req-1' })],
      ['another key', await put('j', 'v', { 'idempotency-key': 'req-1' })],
      ['a precondition', await put('k', 'v', { 'idempotency-key': 'req-1', 'if-match': '"11"' })],
      ['another method', await del('k', { 'idempotency-key': 'req-1' })],
    ] as const) {
      expect(res.statusCode, what).toBe(422);
      expect(res.json(), what).toEqual({
        error: 'idempotency_key_reused',
        message:
          'the Idempotency-Key "req-1" was used at index 11 for a different request (another method, key, value, precondition or transaction): ' +
          'nothing was written. Retry only with the same request; use a new key for a new request',
      });
    }
    expect(decoder.decode(kv.data.get('k'))).toBe('v');
    expect(kv.meta.get('k')?.modIndex).toBe(11);
  });

  it('a retry of a write that failed its precondition fails again, even once the precondition would hold', async () => {
    buildApplying();
    await put('k', 'v1'); // 11
    const first = await put('k', 'v2', { 'if-match': '"3"', 'idempotency-key': 'cas-1' });
    expect(first.statusCode).toBe(412);
    const retry = await put('k', 'v2', { 'if-match': '"3"', 'idempotency-key': 'cas-1' });
    expect(retry.statusCode).toBe(412);
    expect(retry.json()).toEqual(first.json());
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(retry.headers['x-raft-index']).toBe(first.headers['x-raft-index']);
  });

  it('a bad Idempotency-Key: 400 bad_idempotency_key, nothing proposed', async () => {
    buildApplying();
    for (const key of ['', 'has space', 'k'.repeat(129), 'é']) {
      const res = await put('k', 'v', { 'idempotency-key': key });
      expect(res.statusCode, key).toBe(400);
      expect(res.json()).toMatchObject({
        error: 'bad_idempotency_key',
        message: expect.stringContaining('1 to 128 characters'),
      });
    }
    expect(node.writes).toEqual([]);
  });

  it('POST /txn: the success branch when every comparison holds, with each result in order', async () => {
    buildApplying();
    await put('a', '1'); // 11
    kv.data.set('bin', new Uint8Array([0xff]));
    const res = await txn({
      compare: [
        { key: 'a', modIndex: 11 },
        { key: 'b', exists: false },
        { key: 'a', value: '1' },
      ],
      success: [
        { op: 'put', key: 'b', value: '2' },
        { op: 'get', key: 'b' },
        { op: 'delete', key: 'a' },
        { op: 'delete', key: 'gone' },
        { op: 'get', key: 'missing' },
        { op: 'get', key: 'bin' },
      ],
      failure: [{ op: 'put', key: 'never', value: 'x' }],
    });
    expect(res.statusCode).toBe(200);
    expect(res.headers).toMatchObject({ 'x-raft-index': '12', 'x-raft-term': '2' });
    expect(res.json()).toEqual({
      succeeded: true,
      results: [
        { op: 'put', key: 'b', modIndex: 12 },
        { op: 'get', key: 'b', value: '2', createIndex: 12, modIndex: 12, version: 1 },
        { op: 'delete', key: 'a', deleted: true },
        { op: 'delete', key: 'gone', deleted: false },
        { op: 'get', key: 'missing', value: null },
        { op: 'get', key: 'bin', valueBase64: '/w==', createIndex: 0, modIndex: 0, version: 1 },
      ],
      index: 12,
      term: 2,
    });
    expect(kv.data.has('a')).toBe(false);
    expect(kv.data.has('never')).toBe(false);
  });

  it('POST /txn: the failure branch when a comparison does not hold; nothing of the success branch', async () => {
    buildApplying();
    await put('a', '1'); // 11
    const res = await txn({
      compare: [{ key: 'a', version: 1, cmp: '>' }],
      success: [{ op: 'put', key: 'b', value: '2' }],
      failure: [
        { op: 'get', key: 'a' },
        { op: 'put', key: 'c', value: '3' },
      ],
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      succeeded: false,
      results: [
        { op: 'get', key: 'a', value: '1', createIndex: 11, modIndex: 11, version: 1 },
        { op: 'put', key: 'c', modIndex: 12 },
      ],
      index: 12,
      term: 2,
    });
    expect(kv.data.has('b')).toBe(false);
  });

  it('POST /txn whose gets would read more than 4 MiB: 413 answer_too_large, nothing applied', async () => {
    buildApplying();
    kv.data.set('big1', new Uint8Array(3 << 20));
    kv.data.set('big2', new Uint8Array(3 << 20));
    const res = await txn({
      success: [
        { op: 'put', key: 'k', value: 'v' },
        { op: 'get', key: 'big1' },
        { op: 'get', key: 'big2' },
      ],
    });
    expect(res.statusCode).toBe(413);
    expect(res.json()).toEqual({
      error: 'answer_too_large',
      message: expect.stringMatching(
        /^the values this transaction's gets read come to more than 4194304 bytes \(6291456 when it stopped\): nothing was applied/,
      ),
    });
    expect(kv.data.has('k')).toBe(false);
  });

  it('POST /txn with an Idempotency-Key: a retry gets the same results; a different transaction under it 422', async () => {
    buildApplying();
    const body = {
      success: [
        { op: 'put', key: 'n', value: '1' },
        { op: 'get', key: 'n' },
      ],
    };
    const first = await txn(body, { 'idempotency-key': 'txn-1' });
    expect(first.statusCode).toBe(200);
    const retry = await txn(body, { 'idempotency-key': 'txn-1' });
    expect(retry.statusCode).toBe(200);
    expect(retry.json()).toEqual(first.json());
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(kv.meta.get('n')?.version).toBe(1);
    const other = await txn({ failure: body.success }, { 'idempotency-key': 'txn-1' });
    expect(other.statusCode).toBe(422);
    expect(other.json()).toMatchObject({
      error: 'idempotency_key_reused',
      message: expect.stringContaining('at index 11'),
    });
  });

  it('a request write whose entry says nothing of what it did is a 500, never a 200 for a write that may have failed', async () => {
    build(); // FakeNode: every write resolves {index, term}, without an answer
    for (const headers of [{ 'if-match': '"3"' }, { 'if-none-match': '*' }, { 'idempotency-key': 'k-1' }]) {
      const res = await app.inject({ method: 'PUT', url: '/kv/k', payload: 'v', headers });
      expect(res.statusCode, JSON.stringify(headers)).toBe(500);
      expect(res.json()).toMatchObject({ error: 'internal' });
    }
    const res = await app.inject({ method: 'POST', url: '/txn', payload: '{}' });
    expect(res.statusCode).toBe(500);
    expect((await app.inject({ method: 'PUT', url: '/kv/k', payload: 'v' })).statusCode).toBe(200);
  });

  it('POST /txn on a follower: 307 with ?redirect=true', async () => {
    build();
    node.writeOutcome = () => Promise.reject(new NotLeaderError('n2'));
    const res = await app.inject({ method: 'POST', url: '/txn?redirect=true', payload: '{}' });
    expect(res.statusCode).toBe(307);
    expect(res.headers['location']).toBe('http://127.0.0.1:7002/txn?redirect=true');
  });
});

describe('a follower forwards versioned writes to the leader intact', () => {
  let leaderApp: ClientApi;
  let leaderNode: ApplyingNode;
  let leaderKv: FakeKv;
  let follower: string;

  /** A follower (its node answers NotLeaderError naming n2) whose members say n2 serves clients at `leaderUrl`. */
  async function followerOf(leaderUrl: string): Promise<string> {
    node = new FakeNode();
    kv = new FakeKv();
    node.writeOutcome = () => Promise.reject(new NotLeaderError('n2'));
    // The membership is where a follower finds its leader's client URL (the config only fills gaps).
    node.membership = {
      ...node.membership,
      members: node.membership.members.map((m) => (m.id === 'n2' ? { ...m, clientUrl: leaderUrl } : m)),
    };
    app = buildTestApi(node, kv);
    return app.listen({ host: '127.0.0.1', port: 0 });
  }

  afterEach(async () => {
    await leaderApp?.close();
  });

  async function start(): Promise<void> {
    leaderKv = new FakeKv();
    leaderNode = new ApplyingNode(leaderKv);
    leaderApp = buildTestApi(leaderNode, leaderKv);
    follower = await followerOf(await leaderApp.listen({ host: '127.0.0.1', port: 0 }));
  }

  it('POST /txn: the JSON body as sent, and the Idempotency-Key, reach the leader; its answer comes back', async () => {
    await start();
    const body =
      '{"compare":[{"key":"k","exists":false}],\n "success":[{"op":"put","key":"k","value":"é"},{"op":"get","key":"k"}]}';
    const send = () =>
      fetch(`${follower}/txn`, {
        method: 'POST',
        body,
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'idempotency-key': 'fwd-1' },
      });
    const res = await send();
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      succeeded: true,
      results: [
        { op: 'put', key: 'k', modIndex: 11 },
        { op: 'get', key: 'k', value: 'é', createIndex: 11, modIndex: 11, version: 1 },
      ],
      index: 11,
      term: 2,
    });
    expect(node.writes).toHaveLength(1); // the follower's refused proposal
    expect(decodeCommand(leaderNode.writes[0]!)).toMatchObject({ op: 'request', idempotency: { id: 'fwd-1' } });
    const retry = await send();
    expect(retry.status).toBe(200);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(leaderKv.meta.get('k')?.version).toBe(1);
  });

  it('PUT and DELETE keep If-Match, If-None-Match and Idempotency-Key; 412 and the ETag come back', async () => {
    await start();
    let res = await fetch(`${follower}/kv/k`, { method: 'PUT', body: 'v', headers: { 'if-none-match': '*' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('etag')).toBe('"11"');
    res = await fetch(`${follower}/kv/k`, { method: 'PUT', body: 'w', headers: { 'if-none-match': '*' } });
    expect(res.status).toBe(412);
    expect(await res.json()).toMatchObject({ error: 'precondition_failed', current: { modIndex: 11 } });
    res = await fetch(`${follower}/kv/k`, {
      method: 'DELETE',
      headers: { 'if-match': '"11"', 'idempotency-key': 'd-1' },
    });
    expect(res.status).toBe(200);
    expect(decodeCommand(leaderNode.writes[2]!)).toMatchObject({
      op: 'request',
      request: { kind: 'delete', condition: { modIndex: 11 } },
      idempotency: { id: 'd-1' },
    });
    expect(leaderKv.data.has('k')).toBe(false);
  });

  it('a forwarded POST /txn whose connection breaks after it was sent: 504 outcome_unknown, like PUT', async () => {
    // Regression: only PUT and DELETE counted as writes, so a transaction that may have been
    // applied by the leader was answered 503 leader_unreachable ("retry"): a retry without an
    // Idempotency-Key could apply it twice.
    const sockets = new Set<Socket>();
    const breaking = createNetServer((socket) => {
      sockets.add(socket);
      socket.once('data', () => socket.destroy());
    });
    await new Promise<void>((resolve) => breaking.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = breaking.address() as AddressInfo;
      follower = await followerOf(`http://127.0.0.1:${port}`);
      for (const [method, path, body] of [
        ['POST', '/txn', '{}'],
        ['PUT', '/kv/k', 'v'],
      ] as const) {
        const res = await fetch(`${follower}${path}`, { method, body });
        expect(res.status, `${method} ${path}`).toBe(504);
        expect(await res.json()).toMatchObject({ error: 'outcome_unknown' });
      }
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => breaking.close(() => resolve()));
    }
  });
});
