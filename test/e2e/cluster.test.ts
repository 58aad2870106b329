// End-to-end: real node processes on free loopback ports, talked to over HTTP as users do.
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProcessCluster, waitFor } from '../../scripts/harness/cluster/process-cluster.js';

describe('a three-node cluster', () => {
  let cluster: ProcessCluster;

  beforeAll(async () => {
    cluster = await ProcessCluster.create();
    cluster.startAll();
    await cluster.waitForLeader();
  });
  afterAll(async () => {
    await cluster?.destroy();
  });

  const followersOf = async (leader: string): Promise<string[]> =>
    cluster.nodes.map((n) => n.id).filter((id) => id !== leader);

  it('a write sent to a follower is forwarded to the leader and readable from another node', async () => {
    const leader = await cluster.waitForLeader();
    const [a, b] = await followersOf(leader);
    const put = await cluster.put(a!, 'city', 'Lisbon');
    expect(put.status).toBe(200);
    const { index } = (await put.json()) as { index: number };
    expect(index).toBeGreaterThan(0);
    const get = await cluster.get(b!, 'city');
    expect(get.status).toBe(200);
    expect(await get.text()).toBe('Lisbon');
    expect(Number(get.headers.get('x-raft-read-index'))).toBeGreaterThanOrEqual(index);
  });

  it('appends are acknowledged in their answers: followers send next to no requests of their own, as /metrics counts', async () => {
    const leader = await cluster.waitForLeader();
    /** A counter in a /metrics text, summed over the series whose labels include `match`. */
    const sum = (text: string, name: string, match = ''): number =>
      text
        .split('\n')
        .filter((l) => l.startsWith(`${name}{`) && l.includes(match))
        .reduce((total, l) => total + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
    const metrics = async (id: string): Promise<string> =>
      (await fetch(`${cluster.node(id).clientUrl}/metrics`)).text();
    /** raftkv_peer_requests_total of node `id`, summed over the series whose labels include `match`. */
    const requests = async (id: string, match = ''): Promise<number> =>
      sum(await metrics(id), 'raftkv_peer_requests_total', match);
    const followers = await followersOf(leader);
    const before = await Promise.all(followers.map((id) => requests(id)));
    const appendsBefore = await requests(leader, 'lane="append"');
    // One write at a time: each goes out in an append request of its own.
    for (let i = 0; i < 40; i++) expect((await cluster.put(leader, `acked/${i}`, String(i))).status).toBe(200);
    const appends = (await requests(leader, 'lane="append"')) - appendsBefore;
    expect(appends).toBeGreaterThanOrEqual(40);
    const sent = (await Promise.all(followers.map((id) => requests(id)))).map((n, i) => n - before[i]!);
    // Without the acknowledgements in the answers, each follower sent one request per append.
    for (const n of sent) expect(n).toBeLessThan(appends / 4);
    // Every node of one version takes message streams: no batch was posted.
    const text = await metrics(leader);
    expect(sum(text, 'raftkv_peer_streamed_requests_total')).toBeGreaterThan(0);
    expect(sum(text, 'raftkv_peer_streamed_requests_total')).toBe(sum(text, 'raftkv_peer_requests_total'));
  });

  it('after kill -9 of the leader, a new leader is elected and writes continue', async () => {
    const oldLeader = await cluster.waitForLeader();
    expect((await cluster.put(oldLeader, 'before', '1')).status).toBe(200);
    await cluster.kill(oldLeader, 'SIGKILL');
    const survivors = cluster.runningIds();
    const newLeader = await cluster.waitForLeader(15_000, survivors);
    expect(newLeader).not.toBe(oldLeader);
    expect((await cluster.put(survivors[0]!, 'after', '2')).status).toBe(200);
    expect(await (await cluster.get(survivors[1]!, 'before')).text()).toBe('1');
    // The old leader comes back as a follower and catches up.
    cluster.start(oldLeader);
    await waitFor(
      `${oldLeader} to catch up`,
      async () => {
        const res = await cluster.get(oldLeader, 'after');
        return res.status === 200 && (await res.text()) === '2' ? true : undefined;
      },
      15_000,
    );
  });

  it('a follower that was down for many writes catches up when it restarts', async () => {
    const leader = await cluster.waitForLeader();
    const [down] = await followersOf(leader);
    await cluster.kill(down!, 'SIGKILL');
    for (let i = 0; i < 50; i++) expect((await cluster.put(leader, `missed-${i}`, `v${i}`)).status).toBe(200);
    cluster.start(down!);
    await waitFor(
      `${down} to apply the writes it missed`,
      async () => {
        const res = await cluster.get(down!, 'missed-49', '?consistency=stale');
        return res.status === 200 ? true : undefined;
      },
      15_000,
    );
    const all = await fetch(`${cluster.node(down!).clientUrl}/kv?prefix=missed-&limit=100&consistency=stale`);
    const body = (await all.json()) as { items: { key: string; value: string }[] };
    expect(body.items).toHaveLength(50);
  });

  it('refuses garbage on the peer port, a wrong token and a wrong cluster id, logs them, and keeps serving', async () => {
    const leader = await cluster.waitForLeader();
    const target = cluster.node(leader);
    const peer = new URL(target.peerUrl);
    // Not even HTTP.
    await new Promise<void>((resolve) => {
      const socket = connect(Number(peer.port), peer.hostname, () =>
        socket.end(Buffer.from('\x00\xff garbage \r\n\r\n not http at all')),
      );
      socket.on('close', () => resolve());
      socket.on('error', () => resolve());
    });
    const post = (headers: Record<string, string>, body: Uint8Array | string = new Uint8Array([0x90])) =>
      fetch(`${target.peerUrl}/raft/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/msgpack', ...headers },
        body,
      });
    const noToken = await post({ 'x-raftkv-cluster': cluster.clusterId, 'x-raftkv-from': 'n2' });
    expect(noToken.status).toBe(401);
    expect(await noToken.json()).toMatchObject({ error: expect.any(String), message: expect.any(String) });
    const wrongToken = await post({
      authorization: 'Bearer wrong',
      'x-raftkv-cluster': cluster.clusterId,
      'x-raftkv-from': 'n2',
    });
    expect(wrongToken.status).toBe(401);
    const wrongCluster = await post({
      authorization: `Bearer ${cluster.token}`,
      'x-raftkv-cluster': 'someone-else',
      'x-raftkv-from': 'n2',
    });
    expect(wrongCluster.status).toBe(403);
    const garbageBody = await post(
      { authorization: `Bearer ${cluster.token}`, 'x-raftkv-cluster': cluster.clusterId, 'x-raftkv-from': 'n2' },
      'not msgpack at all',
    );
    expect(garbageBody.status).toBe(400);
    // Still serving.
    expect((await cluster.put(leader, 'still', 'alive')).status).toBe(200);
    expect(await (await cluster.get(leader, 'still')).text()).toBe('alive');
    expect(cluster.node(leader).process).not.toBeNull();
    // And it said so in its log.
    await waitFor(
      'the refusals in the log',
      () => {
        const log = readFileSync(target.logFile, 'utf8');
        return /401/.test(log) && /403/.test(log) && /400/.test(log) ? true : undefined;
      },
      5000,
    );
  });
});

describe('data dir identity', () => {
  it("a node pointed at another node's data dir refuses to start and says why", async () => {
    const cluster = await ProcessCluster.create();
    try {
      cluster.start('n1');
      await waitFor('n1 to be up', () => cluster.status('n1').then((s) => s ?? undefined), 10_000);
      await cluster.kill('n1', 'SIGTERM');
      const n2 = cluster.start('n2', {}, ['--data-dir', cluster.node('n1').dataDir]);
      const exit = await waitFor('n2 to exit', () => n2.exit ?? undefined, 10_000);
      expect(exit.code).toBe(2);
      const log = readFileSync(n2.logFile, 'utf8');
      expect(log).toMatch(/n1/);
      expect(log).toMatch(/n2/);
    } finally {
      await cluster.destroy();
    }
  });
});
