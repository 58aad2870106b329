// peer-post.ts: one POST through undici's dispatch, settled once with at most `keep` bytes of the
// answer. Each case talks to a bare node:http server on 127.0.0.1 that this file starts and closes.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';
import { describe, expect, it } from 'vitest';
import { DISCARD_LIMIT, post, type PostOptions, type PostResult } from '../../src/transport/peer-post.js';
import { freePort, useClosers } from './helpers.js';

const closers = useClosers();

/** A server answering every request with `answer`, and the pool that talks to it. */
async function serve(answer: (req: IncomingMessage, res: ServerResponse) => void): Promise<Pool> {
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => answer(req, res));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  const pool = new Pool(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, { connections: 1 });
  closers.push(() => pool.destroy());
  return pool;
}

const options = (keep: PostOptions['keep'], timeoutMs = 2_000): PostOptions => ({
  path: '/raft/messages',
  headers: { 'content-type': 'application/msgpack' },
  body: new Uint8Array([1, 2, 3]),
  timeoutMs,
  keep,
});

type Answered = Extract<PostResult, { kind: 'answered' }>;
type Failed = Extract<PostResult, { kind: 'failed' }>;

/** Posts on `pool` and expects the peer to have answered (whatever its status). */
async function answered(pool: Pool, keep: PostOptions['keep']): Promise<Answered> {
  const result = await post(pool, options(keep));
  expect(result.kind).toBe('answered');
  return result as Answered;
}

/** Posts on `pool` and expects the request to fail. */
async function failed(pool: Pool, timeoutMs?: number): Promise<Failed> {
  const result = await post(
    pool,
    options(() => 0, timeoutMs),
  );
  expect(result.kind).toBe('failed');
  return result as Failed;
}

describe('post (peer-post.ts)', () => {
  it('keeps the whole answer when it fits, with its status and content type', async () => {
    const pool = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/msgpack' });
      res.end(Buffer.from('hello'));
    });
    const result = await answered(pool, () => 100);
    expect(result).toMatchObject({ statusCode: 200, contentType: 'application/msgpack', incomplete: undefined });
    expect(result.body.toString()).toBe('hello');
  });

  it('drains an answer it keeps 0 bytes of (the socket stays usable), and cuts off one over DISCARD_LIMIT', async () => {
    let size = 100 * 1024;
    const pool = await serve((_req, res) => {
      res.writeHead(200);
      res.end(Buffer.alloc(size, 7));
    });
    for (let i = 0; i < 3; i++) {
      const result = await answered(pool, () => 0);
      expect(result).toMatchObject({ statusCode: 200, incomplete: undefined });
      expect(result.body.length).toBe(0);
    }
    size = DISCARD_LIMIT * 4;
    const result = await answered(pool, () => 0);
    expect(result).toMatchObject({ statusCode: 200, incomplete: `an answer over ${DISCARD_LIMIT} bytes` });
    expect(result.body.length).toBe(0);
  });

  it('cuts off an answer larger than its limit and keeps exactly the first `limit` bytes', async () => {
    const big = Buffer.alloc(200 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = i % 251;
    const pool = await serve((_req, res) => {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(big);
    });
    const keptFor: Array<[number, string | undefined]> = [];
    const result = await answered(pool, (status, type) => {
      keptFor.push([status, type]);
      return 1000;
    });
    expect(keptFor).toEqual([[500, 'text/plain']]);
    expect(result).toMatchObject({ statusCode: 500, incomplete: 'an answer over 1000 bytes' });
    expect(result.body.equals(big.subarray(0, 1000))).toBe(true);
  });

  it('keeps the status of an answer whose body the connection lost: the peer did answer', async () => {
    const pool = await serve((_req, res) => {
      res.writeHead(403, { 'content-type': 'application/json', 'content-length': '1000' });
      // Cut the connection once the start of the body has left, 986 bytes short of its length.
      res.write('{"error":"rem', () => res.destroy());
    });
    const result = await answered(pool, () => 256);
    expect(result).toMatchObject({ statusCode: 403 });
    expect(result.body.toString()).toBe('{"error":"rem');
    expect(result.incomplete).toBeTruthy();
  });

  it('fails at its deadline when the answer never comes, and aborts the request', async () => {
    let pending: ServerResponse | undefined;
    const pool = await serve((_req, res) => {
      pending = res; // never answered
    });
    const started = Date.now();
    const result = await failed(pool, 150);
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    expect(result.error.message).toMatch(/no answer within 150 ms/);
    expect(pending).toBeDefined();
  });

  it('fails at its deadline also when it never started (queued behind a request that hangs)', async () => {
    const pool = await serve(() => {
      /* never answers */
    });
    let firstSettled = false;
    const first = post(
      pool,
      options(() => 0, 10_000),
    ).finally(() => (firstSettled = true));
    const started = Date.now();
    const second = await failed(pool, 150); // the pool's one connection is taken
    const elapsed = Date.now() - started;
    expect(second.error.message).toMatch(/no answer within 150 ms/);
    expect(elapsed).toBeGreaterThanOrEqual(140);
    expect(elapsed).toBeLessThan(9_000); // not when the first one gives up
    expect(firstSettled).toBe(false);
    await pool.destroy(); // settles the first, in flight
    expect((await first).kind).toBe('failed');
  });

  it('fails (does not throw or hang) when nothing listens', async () => {
    const pool = await serve((_req, res) => res.end());
    const refused = new Pool(`http://127.0.0.1:${await freePort()}`, { connections: 1 });
    closers.push(() => refused.destroy());
    const result = await failed(refused);
    expect((result.error as { code?: string }).code).toBe('ECONNREFUSED');
    // The working pool next to it is unaffected.
    expect(await answered(pool, () => 0)).toMatchObject({ kind: 'answered', statusCode: 200 });
  });
});
