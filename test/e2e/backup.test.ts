// Backup and restore end to end (issue 12): keys written to a three-node cluster, a backup taken from
// a follower right after a linearizable read there, the cluster killed and its data wiped, the
// restore CLI run with the cluster's config, and the restarted cluster serving every acknowledged
// key (linearizable reads) and taking new writes under a new leader in a later term. A corrupted
// copy of the backup is refused before anything is written.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ProcessCluster, REPO_ROOT, waitFor } from '../../scripts/harness/cluster/process-cluster.js';

const RESTORE_JS = join(REPO_ROOT, 'dist/cli/restore.js');
const ADMIN_TOKEN = 'e2e-admin-token-for-backups-0123456789';
const KEYS = 3000;

const clusters: ProcessCluster[] = [];
afterEach(async () => {
  for (const c of clusters.splice(0)) await c.destroy();
});

function runRestore(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [RESTORE_JS, ...args], { timeout: 120_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : null, stdout, stderr });
    });
  });
}

/** PUTs `key/<i>` = `value <i>` for i < count, `concurrency` at a time, each retried until acknowledged; returns the highest index acknowledged. */
async function writeKeys(c: ProcessCluster, count: number, concurrency = 16): Promise<number> {
  let next = 0;
  let highest = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < count; i = next++) {
      for (let attempt = 0; ; attempt++) {
        const at = c.nodes[i % c.nodes.length]!.id;
        const res = await c.put(at, `key/${i}`, `value ${i}`).catch(() => null);
        const body = res === null ? null : await res.json().catch(() => null);
        if (res?.status === 200) {
          highest = Math.max(highest, (body as { index: number }).index);
          break;
        }
        if (attempt > 50) throw new Error(`PUT key/${i} kept failing (${res?.status})`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return highest;
}

/** Every key under `prefix` on `id` with linearizable reads (the default), page by page. */
async function readAll(c: ProcessCluster, id: string, prefix: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  let start: string | null = null;
  for (let page = 0; page < 1000; page++) {
    const query = new URLSearchParams({ prefix, limit: '1000', ...(start === null ? {} : { start }) });
    const res = await fetch(`${c.node(id).clientUrl}/kv?${query}`, { signal: AbortSignal.timeout(10_000) });
    expect(res.status, `scan on ${id}`).toBe(200);
    const body = (await res.json()) as { items: { key: string; value: string }[]; next: string | null };
    for (const item of body.items) out.set(item.key, item.value);
    if (body.next === null) return out;
    start = body.next;
  }
  throw new Error('the scan did not end');
}

describe('backup and restore', () => {
  it('a backup from a follower restores a cluster that serves every acknowledged key and takes new writes in a later term', async () => {
    // Compaction on: the backup is taken from a compacted node, as it would be in production.
    const c = await ProcessCluster.create({
      raft: { snapshotEveryEntries: 1000, snapshotKeepEntries: 100 },
      nodeEnv: { RAFTKV_ADMIN_TOKEN: ADMIN_TOKEN },
    });
    clusters.push(c);
    c.startAll();
    const leader = await c.waitForLeader();
    const acknowledged = await writeKeys(c, KEYS);
    const follower = c.nodes.find((n) => n.id !== leader)!.id;
    const url = `${c.node(follower).clientUrl}/backup`;

    // Admin-only: the node has RAFTKV_ADMIN_TOKEN, so even a loopback client needs it.
    const refused = await fetch(url);
    expect(refused.status).toBe(401);
    expect(await refused.json()).toMatchObject({ error: 'unauthorized' });

    // A linearizable read on the follower first: its applied state then holds every acknowledged write.
    const read = await c.get(follower, `key/${KEYS - 1}`);
    expect(read.status).toBe(200);
    expect(await read.text()).toBe(`value ${KEYS - 1}`);
    const res = await fetch(url, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    const index = Number(res.headers.get('x-raft-index'));
    const term = Number(res.headers.get('x-raft-term'));
    expect(index).toBeGreaterThanOrEqual(acknowledged);
    expect(res.headers.get('content-disposition')).toBe(`attachment; filename="raftkv-${c.clusterId}-${index}.snap"`);
    const backup = join(c.dir, 'cluster.snap');
    const content = Buffer.from(await res.arrayBuffer());
    await fs.writeFile(backup, content);

    await c.killAll('SIGKILL');
    for (const n of c.nodes) await fs.rm(n.dataDir, { recursive: true, force: true });

    // A corrupted copy is refused, and nothing is written.
    const corrupt = join(c.dir, 'corrupt.snap');
    const flipped = Buffer.from(content);
    const middle = Math.floor(flipped.byteLength / 2);
    flipped[middle] = (flipped[middle] ?? 0) ^ 0x5a;
    await fs.writeFile(corrupt, flipped);
    const bad = await runRestore(['--from', corrupt, '--config', c.configPath]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('Nothing was written');
    for (const n of c.nodes) expect(existsSync(n.dataDir), n.dataDir).toBe(false);

    const restored = await runRestore(['--from', backup, '--config', c.configPath]);
    expect(restored.stderr).toBe('');
    expect(restored.code).toBe(0);
    expect(restored.stdout).toContain(`index ${index}, term ${term}, ${KEYS} keys`);

    c.startAll();
    const newLeader = await c.waitForLeader(30_000);
    const status = (await c.status(newLeader))!;
    expect(status.term).toBeGreaterThan(term);
    for (const n of c.nodes) {
      const s = await waitFor(
        `${n.id} to apply past the backup point`,
        async () => {
          const st = await c.status(n.id);
          return st !== null && st.applied > index ? st : undefined;
        },
        30_000,
      );
      expect(s.term).toBe(status.term);
    }

    // Every acknowledged key, read linearizably, on every node.
    for (const n of c.nodes) {
      const all = await readAll(c, n.id, 'key/');
      expect(all.size, `keys on ${n.id}`).toBe(KEYS);
      for (let i = 0; i < KEYS; i++) expect(all.get(`key/${i}`), `key/${i} on ${n.id}`).toBe(`value ${i}`);
    }

    // New writes work, after the restored index.
    const put = await c.put(newLeader, 'after/restore', 'yes');
    expect(put.status).toBe(200);
    expect(((await put.json()) as { index: number }).index).toBeGreaterThan(index);
    for (const n of c.nodes) {
      const got = await c.get(n.id, 'after/restore');
      expect(got.status).toBe(200);
      expect(await got.text()).toBe('yes');
    }
  });
});
