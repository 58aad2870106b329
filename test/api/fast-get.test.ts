// The point-read fast path (src/api/fast-get.ts) must answer exactly as the Fastify route does. Each
// request is sent twice to a real listener: as is (the fast path takes it) and with an extra query
// parameter the route ignores (so Fastify takes it); status, headers and body must be identical.
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClientApi } from '../../src/api/client-api.js';
import { NotLeaderError, ReadTimeoutError } from '../../src/node/errors.js';
import { buildTestApi, FakeKv, FakeNode } from './fakes.js';
import { rawRequest } from './raw-http.js';

/** The header lines of a GET's answer as sent (names lower-cased, `date` left out), in order. */
async function rawHead(base: string, target: string): Promise<string[]> {
  const { hostname, port } = new URL(base);
  const text = await new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = connect(Number(port), hostname, () =>
      socket.write(`GET ${target} HTTP/1.1\r\nhost: ${hostname}\r\nconnection: close\r\n\r\n`),
    );
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('end', () => resolve(Buffer.concat(chunks).toString('latin1')));
  });
  return text
    .slice(0, text.indexOf('\r\n\r\n'))
    .split('\r\n')
    .map((line) => line.replace(/^[^:]+/, (name) => name.toLowerCase()))
    .filter((line) => !line.startsWith('date:'));
}

let app: ClientApi;
let base: string;
const node = new FakeNode();
const kv = new FakeKv();

beforeAll(async () => {
  app = buildTestApi(node, kv);
  base = await app.listen({ host: '127.0.0.1', port: 0 });
  kv.data.set('colour', new TextEncoder().encode('blue'));
  kv.data.set('empty', new Uint8Array(0));
  kv.data.set('x', new TextEncoder().encode('the key x'));
  kv.data.set('x#y', new TextEncoder().encode('the key x#y'));
  kv.meta.set('colour', { createIndex: 12, modIndex: 345, version: 6 });
  // 'empty', 'x' and 'x#y' carry no metadata: keys written before versioned keys (LEGACY_META).
});
afterAll(async () => {
  await app?.close();
});

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

async function get(path: string): Promise<Answer> {
  const res = await fetch(`${base}${path}`);
  const headers: Record<string, string> = {};
  res.headers.forEach((value, name) => {
    if (name !== 'date') headers[name] = value;
  });
  return { status: res.status, headers, body: await res.text() };
}

/** The same request through the fast path and through Fastify. */
async function both(path: string): Promise<{ fast: Answer; fastify: Answer }> {
  const barriers = node.barriers;
  const fast = await get(path);
  const fastify = await get(`${path}${path.includes('?') ? '&' : '?'}via=fastify`);
  // Both made the same number of ReadIndex requests (one each for a linearizable read).
  expect(node.barriers - barriers).toBe(path.includes('stale') ? 0 : 2);
  return { fast, fastify };
}

describe('the point-read fast path answers exactly as Fastify does', () => {
  for (const path of [
    '/kv/colour',
    '/kv/colour?consistency=stale',
    '/kv/colour?consistency=linearizable',
    '/kv/missing',
    '/kv/missing?consistency=stale',
    '/kv/empty',
  ]) {
    it(`GET ${path}`, async () => {
      const { fast, fastify } = await both(path);
      expect(fast).toEqual(fastify);
      expect(fast.status).toBe(path.includes('missing') ? 404 : 200);
    });
  }

  it("both send a found key's ETag (its modIndex, quoted) and metadata; a missing key has none", async () => {
    for (const path of ['/kv/colour', '/kv/colour?consistency=stale']) {
      const { fast, fastify } = await both(path);
      expect(fast).toEqual(fastify);
      expect(fast.headers, path).toMatchObject({
        etag: '"345"',
        'x-raft-mod-index': '345',
        'x-raft-create-index': '12',
        'x-raft-version': '6',
      });
    }
    const legacy = await both('/kv/x');
    expect(legacy.fast).toEqual(legacy.fastify);
    expect(legacy.fast.headers).toMatchObject({
      etag: '"0"',
      'x-raft-mod-index': '0',
      'x-raft-create-index': '0',
      'x-raft-version': '1',
    });
    const missing = await both('/kv/missing');
    expect(missing.fast).toEqual(missing.fastify);
    expect(missing.fast.headers['etag']).toBeUndefined();
    expect(missing.fast.headers['x-raft-mod-index']).toBeUndefined();
  });

  it('the raw heads are the same, header for header, in the same order', async () => {
    const fast = await rawHead(base, '/kv/colour');
    const fastify = await rawHead(base, '/kv/colour?via=fastify');
    expect(fast).toEqual(fastify);
    expect(fast).toContain('etag: "345"');
  });

  it('a failed linearizable read: no leader, or no read index in time', async () => {
    const saved = node.readOutcome;
    try {
      node.readOutcome = async () => {
        throw new NotLeaderError('');
      };
      const noLeader = await both('/kv/colour');
      expect(noLeader.fast).toEqual(noLeader.fastify);
      expect(noLeader.fast.status).toBe(503);
      node.readOutcome = async () => {
        throw new ReadTimeoutError('no read index was confirmed in time');
      };
      const timeout = await both('/kv/colour');
      expect(timeout.fast).toEqual(timeout.fastify);
      expect(JSON.parse(timeout.fast.body)).toEqual({
        error: 'read_timeout',
        message: 'no read index was confirmed in time',
      });
    } finally {
      node.readOutcome = saved;
    }
  });

  it('leaves everything else to Fastify (bad keys, encoded keys, other queries and methods)', async () => {
    expect((await get('/kv/' + 'k'.repeat(17))).status).toBe(400); // too long: Fastify's error, with its message
    expect(JSON.parse((await get('/kv/' + 'k'.repeat(17))).body).error).toBe('bad_key');
    const encoded = await get('/kv/col%6Fur');
    expect(encoded.status).toBe(200);
    expect(encoded.body).toBe('blue');
    expect((await get('/kv/colour?consistency=stale&max_lag_ms=-1')).status).toBe(400);
    expect((await get('/kv/colour?consistency=nonsense')).status).toBe(400);
  });

  it("a raw '#' is refused with 400 bad_key by both paths alike; %23 reads the key with '#'", async () => {
    // Regression: the fast path read key "x#y" while Fastify's router (find-my-way) read key "x".
    for (const path of ['/kv/x#y', '/kv/x#y?consistency=stale', '/kv/x#']) {
      const barriers = node.barriers;
      const fast = await rawRequest(base, 'GET', path);
      const fastify = await rawRequest(base, 'GET', `${path}${path.includes('?') ? '&' : '?'}via=fastify`);
      expect(fast, path).toEqual(fastify);
      expect(fast.status, path).toBe(400);
      expect(JSON.parse(fast.body)).toMatchObject({ error: 'bad_key', message: expect.stringContaining('%23') });
      expect(node.barriers - barriers, 'refused before any read barrier').toBe(0);
    }
    const { fast, fastify } = await both('/kv/x%23y');
    expect(fast).toEqual(fastify);
    expect(fast.body).toBe('the key x#y');
  });
});
