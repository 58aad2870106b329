// End-to-end compaction and InstallSnapshot (issue 12): real processes compact their logs, a
// follower that was down meanwhile comes back through a snapshot, and one killed in the middle of
// installing a large snapshot completes it after a restart.
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { ProcessCluster, waitFor, type NodeStatus } from '../../scripts/harness/cluster/process-cluster.js';

const clusters: ProcessCluster[] = [];
afterEach(async () => {
  for (const c of clusters.splice(0)) await c.destroy();
});

interface SnapshotStatus extends NodeStatus {
  readonly firstIndex: number;
  readonly snapshot: { index: number; term: number } | null;
}

async function status(c: ProcessCluster, id: string): Promise<SnapshotStatus | null> {
  return (await c.status(id)) as SnapshotStatus | null;
}

async function metric(c: ProcessCluster, id: string, name: string): Promise<number> {
  const text = await (await fetch(`${c.node(id).clientUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

/** PUTs `count` keys `${prefix}<i>`, `concurrency` at a time, each until it succeeds (bounded). */
async function writeKeys(
  c: ProcessCluster,
  at: string,
  prefix: string,
  count: number,
  value: (i: number) => string,
  concurrency = 16,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < count; i = next++) {
      for (let attempt = 0; ; attempt++) {
        const res = await c.put(at, `${prefix}${i}`, value(i)).catch(() => null);
        await res?.arrayBuffer();
        if (res?.status === 200) break;
        if (attempt > 50) throw new Error(`PUT ${prefix}${i} kept failing (${res?.status})`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

/** Every key under `prefix` on `id` (stale reads: its own state), page by page. */
async function scanAll(c: ProcessCluster, id: string, prefix: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  let start: string | null = null;
  for (let page = 0; page < 10_000; page++) {
    const query = new URLSearchParams({
      prefix,
      limit: '1000',
      consistency: 'stale',
      ...(start === null ? {} : { start }),
    });
    const res = await fetch(`${c.node(id).clientUrl}/kv?${query}`);
    const body = (await res.json()) as {
      items: { key: string; value?: string; valueBase64?: string }[];
      next: string | null;
    };
    for (const item of body.items) out.set(item.key, item.value ?? item.valueBase64 ?? '');
    if (body.next === null) return out;
    start = body.next;
  }
  throw new Error('scan did not end');
}

describe('compaction and InstallSnapshot', () => {
  it('logs are compacted, and a follower that was down comes back through a snapshot with no term change and the same data', async () => {
    // The shipped timing (50 ms ticks; the harness's default of 20 puts the election timeout within
    // reach of a loaded CI machine's stalls): "no term change" is a claim about it.
    const c = await ProcessCluster.create({
      tickMs: 50,
      raft: { snapshotEveryEntries: 1000, snapshotKeepEntries: 100 },
    });
    clusters.push(c);
    c.startAll();
    const leader = await c.waitForLeader();
    const follower = c.nodes.map((n) => n.id).find((id) => id !== leader)!;
    await c.kill(follower, 'SIGKILL');
    await writeKeys(c, leader, 'k/', 20_000, (i) => `value-${i}`, 32);
    const before = (await status(c, leader))!;
    expect(before.firstIndex).toBeGreaterThan(1000);
    expect(before.snapshot?.index).toBeGreaterThan(1000);
    const term = before.term;

    c.start(follower);
    await waitFor(
      `${follower} to catch up`,
      async () => (((await status(c, follower))?.applied ?? 0) >= before.commit ? true : undefined),
      60_000,
    );
    expect(await metric(c, follower, 'raftkv_snapshots_installed_total')).toBeGreaterThanOrEqual(1);
    expect(await metric(c, leader, 'raftkv_snapshots_sent_total')).toBeGreaterThanOrEqual(1);
    for (const id of c.runningIds()) expect((await status(c, id))?.term, `term of ${id}`).toBe(term);
    const onFollower = await scanAll(c, follower, 'k/');
    expect(onFollower.size).toBe(20_000);
    expect(onFollower).toEqual(await scanAll(c, leader, 'k/'));
    // And it keeps up from the log afterwards.
    expect((await c.put(leader, 'after', 'snapshot')).status).toBe(200);
    await waitFor(
      'the write after the snapshot',
      async () => {
        const res = await c.get(follower, 'after', '?consistency=stale');
        return res.status === 200 && (await res.text()) === 'snapshot' ? true : undefined;
      },
      10_000,
    );
  });

  it('a follower killed -9 in the middle of installing a large snapshot completes it after a restart', async () => {
    const c = await ProcessCluster.create({ raft: { snapshotEveryEntries: 500, snapshotKeepEntries: 50 } });
    clusters.push(c);
    c.startAll();
    const leader = await c.waitForLeader();
    const follower = c.nodes.map((n) => n.id).find((id) => id !== leader)!;
    await c.kill(follower, 'SIGKILL');
    // ~40 MB of state: the transfer takes dozens of frames.
    const big = (i: number): string => `${i}:`.padEnd(20_000, String.fromCharCode(97 + (i % 26)));
    await writeKeys(c, leader, 'big/', 2000, big, 16);
    const target = (await status(c, leader))!.commit;
    c.start(follower);
    // Kill it once the transfer is under way: frames have arrived, nothing is installed yet.
    await waitFor(
      'the snapshot transfer to begin',
      () => (/receiving a snapshot/.test(readLog(c, follower)) ? true : undefined),
      30_000,
      5,
    );
    await c.kill(follower, 'SIGKILL');
    expect(readLog(c, follower)).not.toMatch(/installed a snapshot/);
    c.start(follower);
    await waitFor(
      `${follower} to catch up after the restart`,
      async () => (((await status(c, follower))?.applied ?? 0) >= target ? true : undefined),
      60_000,
    );
    const onFollower = await scanAll(c, follower, 'big/');
    expect(onFollower.size).toBe(2000);
    for (const [key, value] of onFollower) expect(value, key).toBe(big(Number(key.slice(4))));
  });
});

function readLog(c: ProcessCluster, id: string): string {
  return readFileSync(c.node(id).logFile, 'utf8');
}
