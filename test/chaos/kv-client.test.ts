// The chaos client's requests of versioned keys, against a fake cluster (fake-kv.ts) that answers as
// the README specifies: the exact wire format of each request, and how each answer is read.
import { afterEach, describe, expect, it } from 'vitest';
import { KvClient, type KvRequest } from '../../scripts/harness/chaos/kv-client.js';
import { FakeKvCluster, type WriteFault } from './fake-kv.js';

const running: { cluster: FakeKvCluster; kv: KvClient }[] = [];

afterEach(async () => {
  for (const { cluster, kv } of running.splice(0)) {
    await kv.close();
    await cluster.close();
  }
});

async function start(faultOf?: (n: number) => WriteFault): Promise<{ cluster: FakeKvCluster; kv: KvClient }> {
  const cluster = await FakeKvCluster.start(2, faultOf === undefined ? {} : { faultOf });
  const kv = new KvClient({ urls: cluster.urls, timeoutMs: 2000 });
  running.push({ cluster, kv });
  return { cluster, kv };
}

describe('the chaos client, versioned requests', () => {
  it('sends If-Match with the quoted modIndex, If-None-Match: *, and the Idempotency-Key, exactly as the API takes them', async () => {
    const { cluster, kv } = await start();
    const created: KvRequest = {
      kind: 'put',
      key: 'a/b',
      value: 'w0.0',
      condition: { absent: true },
      idempotencyKey: 'r1.w0.0',
    };
    expect(await kv.send('n1', created)).toMatchObject({ status: 'ok', succeeded: true, modIndex: 1 });
    expect(await kv.send('n2', { kind: 'get', key: 'a/b' })).toMatchObject({
      status: 'ok',
      value: 'w0.0',
      modIndex: 1,
    });
    const replaced: KvRequest = {
      kind: 'put',
      key: 'a/b',
      value: 'w0.2',
      condition: { modIndex: 1 },
      idempotencyKey: 'r1.w0.2',
    };
    expect(await kv.send('n1', replaced)).toMatchObject({ status: 'ok', succeeded: true, modIndex: 2 });
    const deleted: KvRequest = { kind: 'delete', key: 'a/b', condition: { modIndex: 2 }, idempotencyKey: 'r1.w0.3' };
    expect(await kv.send('n2', deleted)).toMatchObject({ status: 'ok', succeeded: true });
    const plain: KvRequest = { kind: 'put', key: 'c', value: 'w1.0', idempotencyKey: 'r1.w1.0' };
    expect(await kv.send('n1', plain)).toMatchObject({ status: 'ok', modIndex: 4 });

    const [put1, get, put2, del, put3] = cluster.received;
    expect(put1).toMatchObject({ node: 'n1', method: 'PUT', url: '/kv/a%2Fb', body: 'w0.0' });
    expect(put1!.headers).toMatchObject({
      'if-none-match': '*',
      'idempotency-key': 'r1.w0.0',
      'content-type': 'application/octet-stream',
    });
    expect(put1!.headers['if-match']).toBeUndefined();
    expect(get).toMatchObject({ node: 'n2', method: 'GET', url: '/kv/a%2Fb', body: '' });
    expect(get!.headers['idempotency-key']).toBeUndefined();
    expect(put2!.headers).toMatchObject({ 'if-match': '"1"', 'idempotency-key': 'r1.w0.2' });
    expect(put2!.headers['if-none-match']).toBeUndefined();
    expect(del).toMatchObject({ method: 'DELETE', url: '/kv/a%2Fb', body: '' });
    expect(del!.headers).toMatchObject({ 'if-match': '"2"', 'idempotency-key': 'r1.w0.3' });
    expect(put3!.headers).toMatchObject({ 'idempotency-key': 'r1.w1.0' });
    expect(put3!.headers['if-match']).toBeUndefined();
    expect(put3!.headers['if-none-match']).toBeUndefined();
  });

  it('reads a 412 as a cas that failed, with the modIndex it saw, or the key absent', async () => {
    const { kv } = await start();
    await kv.send('n1', { kind: 'put', key: 'k', value: 'v1', idempotencyKey: 'i1' });
    expect(
      await kv.send('n2', { kind: 'put', key: 'k', value: 'v2', condition: { modIndex: 7 }, idempotencyKey: 'i2' }),
    ).toEqual({
      status: 'ok',
      value: null,
      reason: '412 precondition_failed',
      unexpected: false,
      succeeded: false,
      modIndex: 1,
    });
    expect(
      await kv.send('n1', { kind: 'put', key: 'k', value: 'v3', condition: { absent: true }, idempotencyKey: 'i3' }),
    ).toMatchObject({ status: 'ok', succeeded: false, modIndex: 1 });
    expect(
      await kv.send('n1', { kind: 'delete', key: 'gone', condition: { modIndex: 1 }, idempotencyKey: 'i4' }),
    ).toMatchObject({ status: 'ok', succeeded: false, observed: null });
  });

  it('sends a one-key transaction as POST /txn with the JSON the API takes, and reads either branch', async () => {
    const { cluster, kv } = await start();
    const first: KvRequest = { kind: 'txn', key: 'k', expected: null, value: 'v1', idempotencyKey: 't1' };
    expect(await kv.send('n1', first)).toMatchObject({ status: 'ok', succeeded: true, modIndex: 1 });
    const stale: KvRequest = { kind: 'txn', key: 'k', expected: 'v0', value: 'v2', idempotencyKey: 't2' };
    expect(await kv.send('n2', stale)).toMatchObject({ status: 'ok', succeeded: false, observed: 'v1', modIndex: 1 });
    const current: KvRequest = { kind: 'txn', key: 'k', expected: 'v1', value: 'v3', idempotencyKey: 't3' };
    expect(await kv.send('n2', current)).toMatchObject({ status: 'ok', succeeded: true, modIndex: 3 });

    const posts = cluster.received.filter((r) => r.method === 'POST');
    expect(posts.map((r) => r.url)).toEqual(['/txn', '/txn', '/txn']);
    expect(posts[0]!.headers).toMatchObject({ 'content-type': 'application/json', 'idempotency-key': 't1' });
    expect(posts[0]!.headers['if-match']).toBeUndefined();
    expect(JSON.parse(posts[0]!.body)).toEqual({
      compare: [{ key: 'k', exists: false }],
      success: [
        { op: 'put', key: 'k', value: 'v1' },
        { op: 'get', key: 'k' },
      ],
      failure: [{ op: 'get', key: 'k' }],
    });
    expect(JSON.parse(posts[1]!.body)).toEqual({
      compare: [{ key: 'k', value: 'v0' }],
      success: [
        { op: 'put', key: 'k', value: 'v2' },
        { op: 'get', key: 'k' },
      ],
      failure: [{ op: 'get', key: 'k' }],
    });
  });

  it('an answer lost after the write was applied is unknown; the same request again is the first answer, replayed', async () => {
    const { kv } = await start((n) => (n === 0 ? 'drop-after-apply' : n === 2 ? '504-after-apply' : 'none'));
    const put: KvRequest = { kind: 'put', key: 'k', value: 'v1', condition: { absent: true }, idempotencyKey: 'p1' };
    expect(await kv.send('n1', put)).toMatchObject({ status: 'unknown' });
    // Applied once: the retry would fail its condition if it were applied again.
    expect(await kv.send('n2', put)).toMatchObject({ status: 'ok', succeeded: true, modIndex: 1, replayed: true });
    const txn: KvRequest = { kind: 'txn', key: 'k', expected: 'v1', value: 'v2', idempotencyKey: 'p2' };
    expect(await kv.send('n1', txn)).toMatchObject({ status: 'unknown', reason: '504 outcome_unknown' });
    expect(await kv.send('n2', txn)).toMatchObject({ status: 'ok', succeeded: true, modIndex: 2, replayed: true });
    // Another request under a key already used: 422, unknown and unexpected.
    expect(await kv.send('n1', { kind: 'put', key: 'k', value: 'other', idempotencyKey: 'p1' })).toMatchObject({
      status: 'unknown',
      unexpected: true,
      reason: '422 idempotency_key_reused',
    });
  });
});
