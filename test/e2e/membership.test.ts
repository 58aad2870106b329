// End-to-end membership changes (issue 13) on real processes, while a client keeps writing: a new
// node joins as a learner (`--join`), catches up, is promoted and takes over leadership, and the
// original leader is removed; the cluster grows from 3 to 5 voters and back to 3; and the README's
// procedure for replacing a node that lost its disk. Every acknowledged write must survive all of it.
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { ProcessCluster, waitFor } from '../../scripts/harness/cluster/process-cluster.js';

const clusters: ProcessCluster[] = [];
afterEach(async () => {
  for (const c of clusters.splice(0)) await c.destroy();
});

async function cluster(): Promise<ProcessCluster> {
  const c = await ProcessCluster.create({
    nodes: 3,
    limits: { promoteMaxLagEntries: 200 },
    keepDir: process.env['KEEP'] === '1',
  });
  if (process.env['KEEP'] === '1') console.log('cluster dir', c.dir);
  clusters.push(c);
  c.startAll();
  await c.waitForLeader();
  return c;
}

interface Answer {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

/** An admin request from loopback (admin routes need no token there). */
async function admin(c: ProcessCluster, at: string, method: string, path: string, body?: unknown): Promise<Answer> {
  const res = await fetch(`${c.node(at).clientUrl}${path}`, {
    method,
    ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await res.text();
  return { status: res.status, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
}

/** Retries an admin change until it succeeds: 409 change_in_progress / not_caught_up and 503s are "later". */
async function change(c: ProcessCluster, at: () => string, method: string, path: string, body?: unknown) {
  return waitFor(
    `${method} ${path} to succeed`,
    async () => {
      const answer = await admin(c, at(), method, path, body).catch(() => null);
      if (answer === null || answer.status === 409 || answer.status >= 500) return undefined;
      expect(answer.status, JSON.stringify(answer.body)).toBe(200);
      return answer.body;
    },
    30_000,
  );
}

async function roles(c: ProcessCluster, at: string): Promise<Record<string, string>> {
  const answer = await admin(c, at, 'GET', '/members');
  expect(answer.status).toBe(200);
  const members = answer.body['members'] as { id: string; role: string }[];
  return Object.fromEntries(members.map((m) => [m.id, m.role]));
}

/**
 * A client that keeps writing `key<i>` = `v<i>` through whichever node it is pointed at, one write
 * at a time, and remembers each write acknowledged with 200. Writes answered otherwise may or may
 * not have happened; they are retried under a new key.
 */
class Writer {
  readonly acknowledged = new Map<string, string>();
  private stopped = false;
  private running: Promise<void> | null = null;
  private next = 0;

  constructor(
    private readonly c: ProcessCluster,
    private readonly target: () => string,
    private readonly prefix = 'key',
  ) {}

  start(): void {
    this.running = (async () => {
      while (!this.stopped) {
        const key = `${this.prefix}${this.next++}`;
        const value = `v${this.next}`;
        const res = await this.c.put(this.target(), key, value).catch(() => null);
        await res?.arrayBuffer().catch(() => undefined);
        if (res?.status === 200) this.acknowledged.set(key, value);
        else await new Promise((r) => setTimeout(r, 20));
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.running;
  }

  /** Waits until `n` more writes than now are acknowledged: the cluster is taking writes. */
  async progress(n = 20): Promise<void> {
    const target = this.acknowledged.size + n;
    await waitFor(`${n} more acknowledged writes`, async () => this.acknowledged.size >= target || undefined, 20_000);
  }
}

/** Every acknowledged write reads back, linearizably, from `at`. */
async function expectAllRead(c: ProcessCluster, at: string, writes: Map<string, string>): Promise<void> {
  expect(writes.size).toBeGreaterThan(0);
  const keys = [...writes.keys()];
  for (let i = 0; i < keys.length; i += 500) {
    const batch = keys.slice(i, i + 500);
    const res = await fetch(`${c.node(at).clientUrl}/mget`, {
      method: 'POST',
      body: JSON.stringify({ keys: batch }),
      signal: AbortSignal.timeout(10_000),
    });
    expect(res.status).toBe(200);
    const { items } = (await res.json()) as { items: { key: string; value: string | null }[] };
    for (const item of items) expect(item.value, `${item.key} on ${at}`).toBe(writes.get(item.key));
  }
}

async function leaderOf(c: ProcessCluster, among: readonly string[]): Promise<string> {
  return c.waitForLeader(20_000, among);
}

describe('membership changes on a running cluster', () => {
  it('a node joins as a learner, catches up, is promoted, takes over, and the old leader is removed: no acknowledged write lost', async () => {
    const c = await cluster();
    let members = ['n1', 'n2', 'n3'];
    const first = await leaderOf(c, members);
    const follower = members.find((id) => id !== first)!;
    const writer = new Writer(c, () => members.find((id) => id !== 'n1') ?? 'n2');
    writer.start();
    await writer.progress();

    // Added through a follower (it forwards to the leader), then started with --join.
    const n4 = await c.addJoiner('n4', follower);
    const added = await change(c, () => follower, 'POST', '/members', {
      id: 'n4',
      clientUrl: n4.clientUrl,
      peerUrl: n4.peerUrl,
    });
    expect((added['members'] as { id: string; role: string }[]).find((m) => m.id === 'n4')?.role).toBe('learner');
    c.start('n4');
    members = [...members, 'n4'];
    // It catches up (a snapshot, then the log) and serves reads of what was written before it came.
    await waitFor(
      'n4 to apply what the leader committed',
      async () => {
        const [s4, sl] = await Promise.all([c.status('n4'), c.status(await leaderOf(c, ['n1', 'n2', 'n3']))]);
        return s4 !== null && sl !== null && s4.applied >= sl.commit - 50 ? true : undefined;
      },
      30_000,
    );
    await change(c, () => follower, 'POST', '/members/n4/promote');
    expect(await roles(c, 'n4')).toEqual({ n1: 'voter', n2: 'voter', n3: 'voter', n4: 'voter' });
    await writer.progress();

    // n4 leads; then n1 is removed while writes go on.
    const transfer = await change(c, () => 'n2', 'POST', '/leader/transfer', { to: 'n4' });
    expect(transfer['leader']).toBe('n4');
    await change(c, () => 'n4', 'DELETE', '/members/n1');
    members = ['n2', 'n3', 'n4'];
    expect(await roles(c, 'n3')).toEqual({ n2: 'voter', n3: 'voter', n4: 'voter' });
    // The removed node says so and serves nothing.
    await waitFor(
      'n1 to know it was removed',
      async () => {
        const res = await c.get('n1', 'key0').catch(() => null);
        const body = res === null ? null : ((await res.json()) as { error?: string });
        return body?.error === 'removed' ? true : undefined;
      },
      20_000,
    );
    await c.kill('n1');
    // Its data dir refuses to start, saying why and what to do instead.
    c.start('n1');
    const exit = await waitFor('n1 to refuse to start', async () => c.node('n1').exit ?? undefined, 20_000);
    expect(exit.code).toBe(2);
    expect(readFileSync(c.node('n1').logFile, 'utf8')).toContain('was removed from the cluster');
    await writer.progress();
    await writer.stop();

    expect(await leaderOf(c, members)).toMatch(/^n[234]$/);
    for (const id of members) await expectAllRead(c, id, writer.acknowledged);

    // A node that joined restarts from its data dir (its addresses and members are there; the
    // cluster file gives the settings), even though the member it joined through is gone.
    await c.kill('n4');
    c.node('n4').extraArgs = ['--data-dir', c.node('n4').dataDir];
    c.start('n4');
    await leaderOf(c, members);
    const res = await c.put('n4', 'after-restart', 'ok');
    expect(res.status).toBe(200);
  }, 120_000);

  it('grows from 3 voters to 5 and back to 3 while taking writes', async () => {
    const c = await cluster();
    let voters = ['n1', 'n2', 'n3'];
    const writer = new Writer(c, () => voters[voters.length - 1]!);
    writer.start();
    await writer.progress();
    for (const id of ['n4', 'n5']) {
      const node = await c.addJoiner(id, 'n1');
      await change(c, () => 'n1', 'POST', '/members', { id, clientUrl: node.clientUrl, peerUrl: node.peerUrl });
      c.start(id);
      await change(c, () => 'n2', 'POST', `/members/${id}/promote`);
      voters = [...voters, id];
      await writer.progress();
    }
    expect(Object.values(await roles(c, 'n3'))).toEqual(['voter', 'voter', 'voter', 'voter', 'voter']);
    // Five voters: any two may fail.
    await c.kill('n1');
    await c.kill('n2');
    await leaderOf(c, ['n3', 'n4', 'n5']);
    await writer.progress();
    c.start('n1');
    c.start('n2');
    await leaderOf(c, voters);

    for (const id of ['n4', 'n5']) {
      await change(c, () => 'n1', 'DELETE', `/members/${id}`);
      await c.kill(id);
      voters = voters.filter((v) => v !== id);
      await writer.progress();
    }
    expect(await roles(c, 'n2')).toEqual({ n1: 'voter', n2: 'voter', n3: 'voter' });
    await writer.stop();
    for (const id of voters) await expectAllRead(c, id, writer.acknowledged);
  }, 120_000);

  it('replaces a node that lost its disk, as the README says: remove it, join a new node under a new id, promote it', async () => {
    const c = await cluster();
    const writer = new Writer(c, () => 'n1');
    writer.start();
    await writer.progress();
    // n3's disk is gone: it is stopped for good (its id is never used again).
    await c.kill('n3');
    await writer.progress();
    await change(c, () => 'n1', 'DELETE', '/members/n3');
    const n4 = await c.addJoiner('n4', 'n1');
    await change(c, () => 'n2', 'POST', '/members', { id: 'n4', clientUrl: n4.clientUrl, peerUrl: n4.peerUrl });
    c.start('n4');
    await change(c, () => 'n1', 'POST', '/members/n4/promote');
    expect(await roles(c, 'n4')).toEqual({ n1: 'voter', n2: 'voter', n4: 'voter' });
    // The old id is refused for good.
    const reuse = await admin(c, 'n1', 'POST', '/members', {
      id: 'n3',
      clientUrl: c.node('n3').clientUrl,
      peerUrl: c.node('n3').peerUrl,
    });
    expect(reuse.status).toBe(409);
    // Now any one of the three may fail again.
    await c.kill('n1');
    const writer2 = new Writer(c, () => 'n2', 'after-');
    writer2.start();
    await writer2.progress();
    await writer.stop();
    await writer2.stop();
    for (const id of ['n2', 'n4']) {
      await expectAllRead(c, id, writer.acknowledged);
      await expectAllRead(c, id, writer2.acknowledged);
    }
  }, 120_000);
});
