// The client API's validation and error mapping, without a cluster (fastify.inject and a fake node).
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
import { buildTestApi, FakeKv, FakeNode } from './fakes.js';
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
