// The PUT fast path (src/api/fast-put.ts) must answer exactly as the Fastify route does. Two APIs
// start from the same state (a leader applying writes with the real apply code): every request goes
// to one as is (the fast path takes it) and to the other with `?redirect=false`, which the route
// ignores on a leader but which sends it through Fastify. Status, headers and body must be identical,
// and so must the commands each proposed; a hook counts the requests that reached Fastify.
import { afterEach, describe, expect, it } from 'vitest';
import type { ClientApi } from '../../src/api/client-api.js';
import {
  LeaderTransferError,
  NotLeaderError,
  OverloadedError,
  StoppedError,
  WriteUnknownError,
} from '../../src/node/errors.js';
import { decodeCommand } from '../../src/storage/command.js';
import { ApplyingNode, buildTestApi, FakeKv } from './fakes.js';
import { rawRequest, type RawAnswer } from './raw-http.js';

interface Side {
  app: ClientApi;
  node: ApplyingNode;
  kv: FakeKv;
  base: string;
  /** Requests that reached Fastify (its onRequest hook). */
  viaFastify: number;
}

const started: ClientApi[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((app) => app.close()));
});

async function side(setup: (node: ApplyingNode, kv: FakeKv) => void = () => undefined): Promise<Side> {
  const kv = new FakeKv();
  const node = new ApplyingNode(kv);
  setup(node, kv);
  const app = buildTestApi(node, kv);
  started.push(app);
  const s: Side = { app, node, kv, base: '', viaFastify: 0 };
  app.addHook('onRequest', (_request, _reply, done) => {
    s.viaFastify++;
    done();
  });
  s.base = await app.listen({ host: '127.0.0.1', port: 0 });
  return s;
}

/** Two sides in the same state: `fast` takes requests as sent, `slow` through Fastify. */
async function pair(setup?: (node: ApplyingNode, kv: FakeKv) => void): Promise<{ fast: Side; slow: Side }> {
  return { fast: await side(setup), slow: await side(setup) };
}

interface Sent {
  status: number;
  headers: Record<string, string>;
  body: string;
}

async function put(base: string, path: string, body: string, headers: Record<string, string> = {}): Promise<Sent> {
  const res = await fetch(`${base}${path}`, { method: 'PUT', body, headers });
  const seen: Record<string, string> = {};
  res.headers.forEach((value, name) => {
    if (name !== 'date') seen[name] = value;
  });
  return { status: res.status, headers: seen, body: await res.text() };
}

/** The same PUT both ways; expects the same answer and returns it. */
async function both(
  sides: { fast: Side; slow: Side },
  key: string,
  body: string,
  headers: Record<string, string> = {},
): Promise<Sent> {
  const before = { fast: sides.fast.viaFastify, slow: sides.slow.viaFastify };
  const fast = await put(sides.fast.base, `/kv/${key}`, body, headers);
  const slow = await put(sides.slow.base, `/kv/${key}?redirect=false`, body, headers);
  expect(fast, `PUT /kv/${key}`).toEqual(slow);
  expect(sides.fast.viaFastify - before.fast, 'the fast side answered without Fastify').toBe(0);
  expect(sides.slow.viaFastify - before.slow, 'the slow side went through Fastify').toBe(1);
  return fast;
}

/** The commands each side proposed, decoded, without the idempotency record's clock reading. */
function proposed(s: Side): unknown[] {
  return s.node.writes.map((bytes) => {
    const command = decodeCommand(bytes);
    if (command.op !== 'request' || command.idempotency === undefined) return command;
    return { ...command, idempotency: { ...command.idempotency, at: 0 } };
  });
}

describe('the PUT fast path answers exactly as Fastify does', () => {
  it('plain puts, an empty value, any content type: 200 with the ETag, the same command proposed', async () => {
    const sides = await pair();
    const first = await both(sides, 'colour', 'blue');
    expect(first.status).toBe(200);
    expect(first.headers['etag']).toBe('"11"');
    expect(JSON.parse(first.body)).toEqual({ index: 11, term: 2 });
    await both(sides, 'colour', 'green', { 'content-type': 'text/plain' });
    await both(sides, 'empty', '');
    await both(sides, 'bytes', 'é\u0000x', { 'content-type': 'application/octet-stream' });
    expect(proposed(sides.fast)).toEqual(proposed(sides.slow));
    expect(sides.fast.node.writes).toHaveLength(4);
    expect(new TextDecoder().decode(sides.fast.kv.data.get('colour'))).toBe('green');
  });

  it('preconditions: If-Match current and stale, If-None-Match on a new and an existing key, a bad one', async () => {
    const sides = await pair();
    await both(sides, 'k', 'v1');
    expect((await both(sides, 'k', 'v2', { 'if-match': '"11"' })).status).toBe(200);
    const stale = await both(sides, 'k', 'v3', { 'if-match': '"11"' });
    expect(stale.status).toBe(412);
    expect(JSON.parse(stale.body)).toMatchObject({ error: 'precondition_failed' });
    expect((await both(sides, 'new', 'n', { 'if-none-match': '*' })).status).toBe(200);
    expect((await both(sides, 'new', 'n', { 'if-none-match': '*' })).status).toBe(412);
    const bad = await both(sides, 'k', 'v', { 'if-match': 'eleven' });
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body)).toMatchObject({ error: 'bad_precondition' });
    expect(proposed(sides.fast)).toEqual(proposed(sides.slow));
  });

  it('Idempotency-Key: the retry replays the first answer, another request under the key gets 422', async () => {
    const sides = await pair();
    const first = await both(sides, 'k', 'v', { 'idempotency-key': 'once' });
    const retry = await both(sides, 'k', 'v', { 'idempotency-key': 'once' });
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(JSON.parse(retry.body)).toEqual(JSON.parse(first.body));
    expect((await both(sides, 'k', 'other', { 'idempotency-key': 'once' })).status).toBe(422);
    expect((await both(sides, 'k', 'v', { 'idempotency-key': '' })).status).toBe(400);
    expect(proposed(sides.fast)).toEqual(proposed(sides.slow));
  });

  it('write failures: unknown outcome, overloaded, a leader handing over, a stopping node, a bug', async () => {
    for (const error of [
      new WriteUnknownError(12, 'was not applied in time'),
      new OverloadedError('too many writes are waiting to be proposed; retry shortly'),
      new LeaderTransferError(),
      new StoppedError(),
      new Error('a bug'),
    ]) {
      const sides = await pair((node) => {
        node.write = (command) => {
          node.writes.push(command);
          return Promise.reject(error);
        };
      });
      const answer = await both(sides, 'k', 'v');
      expect(answer.status, error.message).toBeGreaterThanOrEqual(500);
    }
  });

  it('leadership moved while the write waited: forwarded to the new leader, or 503 no_leader / not_leader', async () => {
    /** A leader that stopped leading while the write waited; n2, serving at `n2Url`, leads now (or `who`). */
    const moved = (who: string, n2Url: string) => (node: ApplyingNode) => {
      node.membership = {
        ...node.membership,
        members: node.membership.members.map((m) => (m.id === 'n2' ? { ...m, clientUrl: n2Url } : m)),
      };
      node.write = (command) => {
        node.writes.push(command);
        return Promise.reject(new NotLeaderError(who));
      };
    };
    // Each side forwards to a new leader of its own, in the same state.
    const n2 = await pair();
    const sides = { fast: await side(moved('n2', n2.fast.base)), slow: await side(moved('n2', n2.slow.base)) };
    const forwarded = await both(sides, 'k', 'v');
    expect(forwarded.status).toBe(200);
    expect(proposed(n2.fast)).toEqual(proposed(n2.slow));
    expect(n2.fast.node.writes).toHaveLength(1);
    expect(JSON.parse((await both(await pair(moved('', n2.fast.base)), 'k', 'v')).body)).toMatchObject({
      error: 'no_leader',
    });
    const once = await both(await pair(moved('n2', n2.fast.base)), 'k', 'v', { 'x-raftkv-forwarded-by': 'n3' });
    expect(once.status).toBe(503);
    expect(JSON.parse(once.body)).toMatchObject({ error: 'not_leader' });
    expect(n2.fast.node.writes).toHaveLength(1);
  });

  it('the raw heads are the same, header for header, in the same order', async () => {
    const sides = await pair();
    const fast = await rawRequest(sides.fast.base, 'PUT', '/kv/k', 'v');
    const slow = await rawRequest(sides.slow.base, 'PUT', '/kv/k?redirect=false', 'v');
    expect(fast).toEqual(slow);
    expect(rawHeadOrder(fast)).toEqual(rawHeadOrder(slow));
    expect(sides.fast.viaFastify).toBe(0);
  });
});

describe('the PUT fast path leaves everything else to Fastify', () => {
  it('a follower (forwarding), a query, an encoded or bad key, a too-large or chunked body', async () => {
    const s = await side();
    const cases: Array<[string, string, RequestInit, number]> = [
      ['too large', '/kv/k', { method: 'PUT', body: 'x'.repeat(65) }, 413],
      ['bad key', `/kv/${'k'.repeat(17)}`, { method: 'PUT', body: 'v' }, 400],
      ['encoded key', '/kv/c%6Flour', { method: 'PUT', body: 'v' }, 200],
      ['redirect query', '/kv/k?redirect=true', { method: 'PUT', body: 'v' }, 200],
      ['bad query', '/kv/k?redirect=maybe', { method: 'PUT', body: 'v' }, 400],
      ['a key with a slash', '/kv/a/b', { method: 'PUT', body: 'v' }, 200],
    ];
    for (const [what, path, init, status] of cases) {
      const before = s.viaFastify;
      const res = await fetch(`${s.base}${path}`, init);
      expect(res.status, what).toBe(status);
      expect(s.viaFastify - before, what).toBe(1);
    }
    let before = s.viaFastify;
    const chunked = await fetch(`${s.base}/kv/chunked`, {
      method: 'PUT',
      body: new Blob(['v']).stream(),
      duplex: 'half',
    } as RequestInit);
    expect(chunked.status).toBe(200);
    expect(s.viaFastify - before, 'chunked').toBe(1);
    expect(new TextDecoder().decode(s.kv.data.get('chunked'))).toBe('v');
    s.node.softState = { role: 'follower', leader: '', term: 2 };
    s.node.write = () => Promise.reject(new NotLeaderError(''));
    before = s.viaFastify;
    const follower = await fetch(`${s.base}/kv/k`, { method: 'PUT', body: 'v' });
    expect(follower.status).toBe(503); // no leader known: Fastify's route answers
    expect(s.viaFastify - before).toBe(1);
  });
});

function rawHeadOrder(answer: RawAnswer): string[] {
  return Object.keys(answer.headers);
}
