// End-to-end: versioned keys through the client API of real node processes. ETags, conditional
// writes, transactions and idempotent retries, each request sent to a different node than the one
// before (a follower forwards writes to the leader; every read is linearizable on any node).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProcessCluster } from '../../scripts/harness/cluster/process-cluster.js';

let cluster: ProcessCluster;
/** The nodes, leader first: requests rotate through them. */
let order: string[];

beforeAll(async () => {
  cluster = await ProcessCluster.create();
  cluster.startAll();
  const leader = await cluster.waitForLeader();
  order = [leader, ...cluster.nodes.map((n) => n.id).filter((id) => id !== leader)];
});
afterAll(async () => {
  await cluster?.destroy();
});

let turn = 0;
/** The next node's client URL, round robin: most requests land on a follower. */
function nextNode(): string {
  return cluster.node(order[turn++ % order.length]!).clientUrl;
}

function put(key: string, value: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${nextNode()}/kv/${encodeURIComponent(key)}`, {
    method: 'PUT',
    body: value,
    headers,
    signal: AbortSignal.timeout(10_000),
  });
}

function del(key: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${nextNode()}/kv/${encodeURIComponent(key)}`, {
    method: 'DELETE',
    headers,
    signal: AbortSignal.timeout(10_000),
  });
}

function get(key: string): Promise<Response> {
  return fetch(`${nextNode()}/kv/${encodeURIComponent(key)}`, { signal: AbortSignal.timeout(10_000) });
}

function txn(body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${nextNode()}/txn`, {
    method: 'POST',
    body: JSON.stringify(body),
    headers,
    signal: AbortSignal.timeout(10_000),
  });
}

/** A key's value and metadata as GET answers them (null: 404). */
async function read(key: string): Promise<{ value: string; etag: string; modIndex: number; version: number } | null> {
  const res = await get(key);
  if (res.status === 404) return null;
  expect(res.status).toBe(200);
  return {
    value: await res.text(),
    etag: res.headers.get('etag') ?? '',
    modIndex: Number(res.headers.get('x-raft-mod-index')),
    version: Number(res.headers.get('x-raft-version')),
  };
}

describe('versioned keys on a three-node cluster', () => {
  it('If-Match: the current ETag writes (200, new ETag), a stale one is refused (412) on every node', async () => {
    const first = await put('counter', '1');
    expect(first.status).toBe(200);
    const etag1 = first.headers.get('etag')!;
    const { index } = (await first.json()) as { index: number };
    expect(etag1).toBe(`"${index}"`);
    expect(await read('counter')).toEqual({ value: '1', etag: etag1, modIndex: index, version: 1 });

    const second = await put('counter', '2', { 'if-match': etag1 });
    expect(second.status).toBe(200);
    const etag2 = second.headers.get('etag')!;
    expect(etag2).not.toBe(etag1);

    const stale = await put('counter', '3', { 'if-match': etag1 });
    expect(stale.status).toBe(412);
    expect(await stale.json()).toMatchObject({
      error: 'precondition_failed',
      current: { modIndex: Number(JSON.parse(etag2)), version: 2 },
    });
    expect(await read('counter')).toMatchObject({ value: '2', etag: etag2, version: 2 });
  });

  it('If-None-Match: * creates a new key, and is refused (412) on an existing one', async () => {
    expect((await put('unique', 'first', { 'if-none-match': '*' })).status).toBe(200);
    const again = await put('unique', 'second', { 'if-none-match': '*' });
    expect(again.status).toBe(412);
    expect(await again.json()).toMatchObject({ error: 'precondition_failed', current: { version: 1 } });
    expect((await read('unique'))?.value).toBe('first');
  });

  it('a conditional DELETE deletes only the version it names', async () => {
    const created = await put('doomed', 'x');
    const etag = created.headers.get('etag')!;
    expect((await put('doomed', 'y', { 'if-match': etag })).status).toBe(200);
    const stale = await del('doomed', { 'if-match': etag });
    expect(stale.status).toBe(412);
    expect((await read('doomed'))?.value).toBe('y');
    const current = (await read('doomed'))!.etag;
    expect((await del('doomed', { 'if-match': current })).status).toBe(200);
    expect(await read('doomed')).toBeNull();
  });

  it('a transaction takes one branch as a whole: both writes visible, or neither', async () => {
    const a = await put('acct/a', '100');
    const aIndex = Number(JSON.parse(a.headers.get('etag')!));
    expect((await put('acct/b', '0')).status).toBe(200);

    const transfer = (modIndex: number) =>
      txn({
        compare: [{ key: 'acct/a', modIndex }],
        success: [
          { op: 'put', key: 'acct/a', value: '70' },
          { op: 'put', key: 'acct/b', value: '30' },
        ],
        failure: [{ op: 'get', key: 'acct/a' }],
      });
    const done = await transfer(aIndex);
    expect(done.status).toBe(200);
    const answer = (await done.json()) as { succeeded: boolean; results: unknown[]; index: number };
    expect(answer).toMatchObject({
      succeeded: true,
      results: [
        { op: 'put', key: 'acct/a', modIndex: answer.index },
        { op: 'put', key: 'acct/b', modIndex: answer.index },
      ],
    });
    expect(await read('acct/a')).toMatchObject({ value: '70', modIndex: answer.index });
    expect(await read('acct/b')).toMatchObject({ value: '30', modIndex: answer.index });

    // The same transaction again: a's modIndex moved, so the failure branch runs and nothing is written.
    const refused = await transfer(aIndex);
    expect(refused.status).toBe(200);
    expect(await refused.json()).toMatchObject({
      succeeded: false,
      results: [{ op: 'get', key: 'acct/a', value: '70', modIndex: answer.index, version: 2 }],
    });
    expect(await read('acct/a')).toMatchObject({ value: '70', modIndex: answer.index });
    expect(await read('acct/b')).toMatchObject({ value: '30', modIndex: answer.index });
  });

  it('an idempotent retry gets the first answer and is not applied again; another request under its key gets 422', async () => {
    const headers = { 'idempotency-key': 'e2e-retry-1' };
    const first = await put('once', 'v', headers);
    expect(first.status).toBe(200);
    const firstAnswer = (await first.json()) as { index: number; term: number };
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    expect((await put('unrelated', 'x')).status).toBe(200);

    for (let i = 0; i < 2; i++) {
      const retry = await put('once', 'v', headers); // another node each time
      expect(retry.status).toBe(200);
      expect(await retry.json()).toEqual(firstAnswer);
      expect(retry.headers.get('idempotent-replayed')).toBe('true');
      expect(retry.headers.get('etag')).toBe(`"${firstAnswer.index}"`);
    }
    expect(await read('once')).toMatchObject({ value: 'v', modIndex: firstAnswer.index, version: 1 });

    const reused = await put('once', 'other', headers);
    expect(reused.status).toBe(422);
    expect(await reused.json()).toMatchObject({
      error: 'idempotency_key_reused',
      message: expect.stringContaining(`was used at index ${firstAnswer.index} for a different request`),
    });
    expect(await read('once')).toMatchObject({ value: 'v', modIndex: firstAnswer.index });
  });

  it('an idempotent transaction retried on other nodes answers the same results', async () => {
    const body = {
      success: [
        { op: 'put', key: 'txn-once', value: '1' },
        { op: 'get', key: 'txn-once' },
      ],
    };
    const headers = { 'idempotency-key': 'e2e-txn-1' };
    const first = await txn(body, headers);
    expect(first.status).toBe(200);
    const answer = await first.json();
    const retry = await txn(body, headers);
    expect(retry.status).toBe(200);
    expect(await retry.json()).toEqual(answer);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect((await read('txn-once'))?.version).toBe(1);
  });
});
