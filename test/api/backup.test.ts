// GET /backup (src/api/backup.ts) over a fake snapshot source on a real loopback listener: the
// answer is a backup file that readBackupFile accepts; the route is admin-only; it streams with
// back-pressure (a client that reads nothing holds it back), and whatever ends it (the client
// leaving, a stall, the node stopping) closes the snapshot source.
import { SNAPSHOT_FORMAT } from '../../src/snapshot/format.js';
import { connect, type Socket } from 'node:net';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { backupFileName, registerBackupRoute } from '../../src/api/backup.js';
import { createLogger } from '../../src/log.js';
import { readBackupFile } from '../../src/snapshot/backup-file.js';
import type { Pair } from '../../src/snapshot/format.js';
import type { SnapshotSource } from '../../src/storage/node-storage.js';
import { waitFor } from '../../scripts/harness/cluster/process-cluster.js';

const encoder = new TextEncoder();
const TOKEN = 'backup-test-admin-token-0123456789abcdef';

const MEMBERSHIP = {
  members: ['n1', 'n2', 'n3'].map((id) => ({ id, clientUrl: '', peerUrl: '', role: 'voter' as const })),
  removed: [],
};

interface FakeSource extends SnapshotSource {
  readonly nextCalls: number;
  readonly closed: boolean;
}

/** `chunks` chunks, each from `chunk(i)`; counts next() calls and records close(). */
function fakeSource(chunks: number, chunk: (i: number) => Pair[], index = 42, term = 3): FakeSource {
  let calls = 0;
  let closed = false;
  return {
    index,
    term,
    membership: MEMBERSHIP,
    get nextCalls() {
      return calls;
    },
    get closed() {
      return closed;
    },
    async next() {
      const i = calls++;
      return i < chunks ? chunk(i) : null;
    },
    async close() {
      closed = true;
    },
  };
}

const small = (i: number): Pair[] => [[encoder.encode(`key-${i}`), encoder.encode(`value-${i}`)]];
/** One pair of 1 MiB: a source of these outgrows any socket buffer quickly. */
const BIG_VALUE = new Uint8Array(1 << 20).fill(7);
const big = (i: number): Pair[] => [[encoder.encode(`big-${String(i).padStart(6, '0')}`), BIG_VALUE]];

let app: FastifyInstance | undefined;
const sockets: Socket[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  await app?.close();
  app = undefined;
  for (const dir of dirs.splice(0)) await fs.rm(dir, { recursive: true, force: true });
});

async function serve(
  openSource: () => Promise<SnapshotSource>,
  options: { adminToken?: string; stallTimeoutMs?: number } = {},
): Promise<{ app: FastifyInstance; url: string }> {
  app = Fastify();
  registerBackupRoute(app, {
    clusterId: 'prod/eu 1',
    openSource,
    adminToken: options.adminToken,
    logger: createLogger({ level: 'silent', pretty: false }),
    ...(options.stallTimeoutMs === undefined ? {} : { stallTimeoutMs: options.stallTimeoutMs }),
  });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return { app, url };
}

/** Sends GET /backup on a raw socket that reads nothing (paused): the server sees a client that takes no data. */
function stalledClient(url: string): Socket {
  const { port } = new URL(url);
  const socket = connect(Number(port), '127.0.0.1', () => socket.write('GET /backup HTTP/1.1\r\nhost: x\r\n\r\n'));
  socket.pause();
  socket.on('error', () => undefined);
  sockets.push(socket);
  return socket;
}

/** Waits until `value()` stays the same across a few checks 100 ms apart, and returns it. */
async function settled(what: string, value: () => number): Promise<number> {
  let last = -1;
  let same = 0;
  return waitFor(
    what,
    () => {
      const now = value();
      same = now === last ? same + 1 : 0;
      last = now;
      return same >= 3 ? now : undefined;
    },
    30_000,
    100,
  );
}

describe('GET /backup', () => {
  it('streams a backup file of the source: headers, every pair, and a trailer that checks out; the source is closed', async () => {
    const source = fakeSource(5, small);
    const { url } = await serve(async () => source);
    const res = await fetch(`${url}/backup`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    expect(res.headers.get('content-disposition')).toBe('attachment; filename="raftkv-prod_eu_1-42.snap"');
    expect(res.headers.get('x-raft-index')).toBe('42');
    expect(res.headers.get('x-raft-term')).toBe('3');
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'raftkv-backup-route-'));
    dirs.push(dir);
    const file = path.join(dir, 'b.snap');
    await fs.writeFile(file, Buffer.from(await res.arrayBuffer()));
    const keys: string[] = [];
    const summary = await readBackupFile(
      file,
      async (pairs) => void keys.push(...pairs.map(([k]) => new TextDecoder().decode(k))),
    );
    expect(summary.header).toEqual({
      format: SNAPSHOT_FORMAT,
      clusterId: 'prod/eu 1',
      index: 42,
      term: 3,
      membership: MEMBERSHIP,
    });
    expect(keys).toEqual(['key-0', 'key-1', 'key-2', 'key-3', 'key-4']);
    await waitFor('the source to be closed', () => (source.closed ? true : undefined), 5000);
  });

  it('is admin-only: 401 without the token when RAFTKV_ADMIN_TOKEN is set (even on loopback), and nothing is opened', async () => {
    let opened = 0;
    const { url } = await serve(
      async () => {
        opened++;
        return fakeSource(1, small);
      },
      { adminToken: TOKEN },
    );
    const refused = await fetch(`${url}/backup`);
    expect(refused.status).toBe(401);
    expect(await refused.json()).toEqual({ error: 'unauthorized', message: expect.any(String) });
    expect(opened).toBe(0);
    const ok = await fetch(`${url}/backup`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(ok.status).toBe(200);
    await ok.arrayBuffer();
    expect(opened).toBe(1);
  });

  it('is admin-only: 403 from a non-loopback address without a token', async () => {
    let opened = 0;
    const { app } = await serve(async () => {
      opened++;
      return fakeSource(1, small);
    });
    const res = await app.inject({ method: 'GET', url: '/backup', remoteAddress: '203.0.113.9' });
    expect(res.statusCode).toBe(403);
    expect(res.json()).toMatchObject({ error: 'forbidden' });
    expect(opened).toBe(0);
  });

  it('holds back while the client reads nothing (back-pressure), and closes the source when the client leaves', async () => {
    const total = 200;
    const source = fakeSource(total, big);
    const { url } = await serve(async () => source);
    const socket = stalledClient(url);
    await waitFor('the backup to start', () => (source.nextCalls > 0 ? true : undefined), 10_000);
    const reached = await settled('the backup to stop reading ahead of the client', () => source.nextCalls);
    // Only what fits the socket buffers was read (a few MiB), not the 200 MiB of the source.
    expect(reached).toBeLessThan(40);
    expect(source.closed).toBe(false);
    socket.destroy();
    await waitFor('the source to be closed after the client left', () => (source.closed ? true : undefined), 10_000);
    expect(source.nextCalls).toBeLessThan(total);
  });

  it('gives up on a client that takes nothing for stallTimeoutMs, and closes the source', async () => {
    const source = fakeSource(200, big);
    const { url } = await serve(async () => source, { stallTimeoutMs: 300 });
    stalledClient(url);
    await waitFor('the stalled backup to be abandoned', () => (source.closed ? true : undefined), 20_000);
    expect(source.nextCalls).toBeLessThan(200);
  });

  it('one backup at a time: a second request meanwhile is 503 backup_in_progress; afterwards one may start again', async () => {
    const first = fakeSource(200, big);
    const sources = [first, fakeSource(1, small)];
    const { url } = await serve(async () => sources.shift()!);
    const socket = stalledClient(url);
    await waitFor('the first backup to start', () => (first.nextCalls > 0 ? true : undefined), 10_000);
    const busy = await fetch(`${url}/backup`);
    expect(busy.status).toBe(503);
    expect(busy.headers.get('retry-after')).toBe('10');
    expect(await busy.json()).toMatchObject({ error: 'backup_in_progress' });
    socket.destroy();
    await waitFor('the first backup to end', () => (first.closed ? true : undefined), 10_000);
    const again = await fetch(`${url}/backup`);
    expect(again.status).toBe(200);
    await again.arrayBuffer();
  });

  it('one at a time from the moment a backup is admitted: a request while the first source still opens is refused', async () => {
    let opens = 0;
    let release: (source: SnapshotSource) => void = () => undefined;
    // Only the first open is held; any other (there must be none) opens at once.
    const { url } = await serve(() => {
      opens++;
      return opens === 1
        ? new Promise<SnapshotSource>((resolve) => (release = resolve))
        : Promise.resolve(fakeSource(1, small));
    });
    const first = fetch(`${url}/backup`);
    const source = fakeSource(2, small);
    try {
      await waitFor('the first backup to open its source', () => (opens === 1 ? true : undefined), 10_000);
      const second = await fetch(`${url}/backup`);
      expect(second.status).toBe(503);
      expect(await second.json()).toMatchObject({ error: 'backup_in_progress' });
      expect(opens).toBe(1);
    } finally {
      // Released whatever happened, so the first request (and the server's close) can end.
      release(source);
    }
    const res = await first;
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    await waitFor('the source to be closed', () => (source.closed ? true : undefined), 5000);
  });

  it('has no HEAD route (a HEAD answer takes no body, so nothing would hold the reading back)', async () => {
    let opens = 0;
    const { url } = await serve(async () => {
      opens++;
      return fakeSource(1, small);
    });
    const res = await fetch(`${url}/backup`, { method: 'HEAD' });
    expect(res.status).toBe(404);
    expect(opens).toBe(0);
  });

  it('answers 503 JSON when the state cannot be read', async () => {
    const { url } = await serve(async () => {
      throw new Error('storage is closed');
    });
    const res = await fetch(`${url}/backup`);
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ error: 'unavailable', message: expect.stringContaining('storage is closed') });
  });

  it('a node that stops ends a backup in flight and closes the source, without waiting for the client', async () => {
    const source = fakeSource(200, big);
    const { app, url } = await serve(async () => source);
    stalledClient(url);
    await waitFor('the backup to start', () => (source.nextCalls > 0 ? true : undefined), 10_000);
    const started = Date.now();
    await app.close();
    expect(Date.now() - started).toBeLessThan(10_000);
    await waitFor('the source to be closed', () => (source.closed ? true : undefined), 10_000);
  });
});

describe('backupFileName', () => {
  it('is raftkv-<clusterId>-<index>.snap, with the cluster id made safe for a header and a file name', () => {
    expect(backupFileName('demo', 17)).toBe('raftkv-demo-17.snap');
    expect(backupFileName('a"b/c\\d\r\n', 1)).toBe('raftkv-a_b_c_d__-1.snap');
  });
});
