// Who may call admin routes (src/api/admin-auth.ts): loopback only without RAFTKV_ADMIN_TOKEN, the
// bearer token from anywhere (and only it) with one; refusals are 401/403 JSON {error, message}.
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN_ENV, AdminAuth, adminTokenFromEnv, isLoopbackAddress } from '../../src/api/admin-auth.js';
import { ADMIN_VOUCH_HEADER, FORWARDED_HEADER } from '../../src/api/forward.js';

const TOKEN = 'a-long-random-admin-secret-0123456789';

describe('isLoopbackAddress', () => {
  it('is true for 127.0.0.0/8 and ::1, also IPv4-mapped, and false for anything else', () => {
    for (const address of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1', '::FFFF:127.0.0.9'])
      expect(isLoopbackAddress(address), address).toBe(true);
    for (const address of [
      undefined,
      '',
      '10.0.0.1',
      '128.0.0.1',
      '0.0.0.0',
      '::',
      '::ffff:10.0.0.1',
      'fe80::1',
      '127.0.0.1.evil',
      'localhost',
    ]) {
      expect(isLoopbackAddress(address), String(address)).toBe(false);
    }
  });
});

describe('adminTokenFromEnv', () => {
  it(`reads ${ADMIN_TOKEN_ENV}; unset or blank means no token (a blank token would be an open door)`, () => {
    expect(adminTokenFromEnv({})).toBeUndefined();
    expect(adminTokenFromEnv({ [ADMIN_TOKEN_ENV]: '' })).toBeUndefined();
    expect(adminTokenFromEnv({ [ADMIN_TOKEN_ENV]: '  ' })).toBeUndefined();
    expect(adminTokenFromEnv({ [ADMIN_TOKEN_ENV]: TOKEN })).toBe(TOKEN);
  });
});

describe('AdminAuth without a token: loopback only', () => {
  const auth = new AdminAuth(undefined);

  it('lets loopback requests through', () => {
    expect(auth.tokenRequired).toBe(false);
    expect(auth.refusal({ remoteAddress: '127.0.0.1', authorization: undefined })).toBeUndefined();
    expect(auth.refusal({ remoteAddress: '::1', authorization: undefined })).toBeUndefined();
  });

  it('refuses any other address with 403, saying how to get in; a bearer header does not help when the node has no token', () => {
    for (const authorization of [undefined, `Bearer ${TOKEN}`]) {
      const refusal = auth.refusal({ remoteAddress: '10.1.2.3', authorization });
      expect(refusal).toMatchObject({ status: 403, error: 'forbidden' });
      expect(refusal?.message).toContain('10.1.2.3');
      expect(refusal?.message).toContain(ADMIN_TOKEN_ENV);
    }
    expect(auth.refusal({ remoteAddress: undefined, authorization: undefined })?.status).toBe(403);
  });
});

describe('AdminAuth with a token: the token is required, even on loopback', () => {
  const auth = new AdminAuth(TOKEN);

  it('lets a request with the right bearer token through, from anywhere; the scheme is case-insensitive', () => {
    expect(auth.tokenRequired).toBe(true);
    expect(auth.refusal({ remoteAddress: '10.1.2.3', authorization: `Bearer ${TOKEN}` })).toBeUndefined();
    expect(auth.refusal({ remoteAddress: '127.0.0.1', authorization: `bearer ${TOKEN}` })).toBeUndefined();
  });

  it('refuses a loopback request without a token with 401 and a WWW-Authenticate challenge', () => {
    const refusal = auth.refusal({ remoteAddress: '127.0.0.1', authorization: undefined });
    expect(refusal).toMatchObject({ status: 401, error: 'unauthorized' });
    expect(refusal?.message).toContain(ADMIN_TOKEN_ENV);
    expect(refusal?.headers?.['www-authenticate']).toMatch(/^Bearer /);
  });

  it('refuses a wrong token, another scheme, an empty token or repeated headers with 401', () => {
    for (const authorization of [
      `Bearer ${TOKEN}x`,
      `Bearer ${TOKEN.slice(1)}`,
      `Basic ${TOKEN}`,
      'Bearer ',
      'Bearer',
      TOKEN,
      [`Bearer ${TOKEN}`, `Bearer ${TOKEN}`],
    ]) {
      expect(auth.refusal({ remoteAddress: '127.0.0.1', authorization })?.status, String(authorization)).toBe(401);
    }
  });
});

describe('AdminAuth and forwarded requests: the forwarding node vouches with the peer token', () => {
  const PEER = 'the-cluster-peer-token-0123456789';
  const far = '10.1.2.3';

  it('without a token of its own: a valid vouching stands in for the loopback check, from any address', () => {
    const auth = new AdminAuth(undefined, { token: PEER, isDevToken: false });
    expect(
      auth.refusal({ remoteAddress: far, authorization: undefined, forwardedBy: 'n2', vouch: PEER }),
    ).toBeUndefined();
  });

  it('refuses (403) a request that says it was forwarded without a valid vouching, from loopback too', () => {
    const auth = new AdminAuth(undefined, { token: PEER, isDevToken: false });
    for (const vouch of [undefined, '', 'wrong', `${PEER} `, PEER.slice(1), [PEER, PEER]]) {
      for (const remoteAddress of [far, '127.0.0.1']) {
        const refusal = auth.refusal({ remoteAddress, authorization: undefined, forwardedBy: 'n2', vouch });
        expect(refusal, `${String(vouch)} from ${remoteAddress}`).toMatchObject({ status: 403, error: 'forbidden' });
        expect(refusal?.message).toContain(ADMIN_VOUCH_HEADER);
        expect(refusal?.message).toContain(FORWARDED_HEADER);
      }
    }
  });

  it('a vouching without the forwarded claim changes nothing: the ordinary checks apply', () => {
    const auth = new AdminAuth(undefined, { token: PEER, isDevToken: false });
    expect(auth.refusal({ remoteAddress: far, authorization: undefined, vouch: PEER })?.status).toBe(403);
    expect(auth.refusal({ remoteAddress: '127.0.0.1', authorization: undefined, vouch: 'x' })).toBeUndefined();
  });

  it('with a token of its own, the node still requires it: the vouching replaces only the address check', () => {
    const auth = new AdminAuth(TOKEN, { token: PEER, isDevToken: false });
    const vouched = { remoteAddress: far, forwardedBy: 'n2', vouch: PEER };
    expect(auth.refusal({ ...vouched, authorization: undefined })?.status).toBe(401);
    expect(auth.refusal({ ...vouched, authorization: 'Bearer wrong' })?.status).toBe(401);
    expect(auth.refusal({ ...vouched, authorization: `Bearer ${TOKEN}` })).toBeUndefined();
  });

  it('the public development token vouches for nothing; a route without a peer token accepts no forwarded request', () => {
    const dev = new AdminAuth(undefined, { token: PEER, isDevToken: true });
    expect(dev.refusal({ remoteAddress: far, authorization: undefined, forwardedBy: 'n2', vouch: PEER })?.status).toBe(
      403,
    );
    expect(
      dev.refusal({ remoteAddress: '127.0.0.1', authorization: undefined, forwardedBy: 'n2', vouch: PEER }),
    ).toBeUndefined();
    const backupLike = new AdminAuth(undefined);
    expect(
      backupLike.refusal({ remoteAddress: '127.0.0.1', authorization: undefined, forwardedBy: 'n2', vouch: PEER })
        ?.status,
    ).toBe(403);
  });
});

describe('AdminAuth.hook on a Fastify route', () => {
  let app: FastifyInstance | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  function build(token: string | undefined): { app: FastifyInstance; calls: () => number } {
    let calls = 0;
    app = Fastify();
    app.get('/admin', { onRequest: new AdminAuth(token).hook() }, async () => {
      calls++;
      return { ok: true };
    });
    return { app, calls: () => calls };
  }

  it('answers a refused request with JSON {error, message} and never runs the route', async () => {
    const { app, calls } = build(undefined);
    // X-Forwarded-For is a client's word: only the socket's address counts.
    const res = await app.inject({
      method: 'GET',
      url: '/admin',
      remoteAddress: '10.1.2.3',
      headers: { 'x-forwarded-for': '127.0.0.1' },
    });
    expect(res.statusCode).toBe(403);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.json()).toEqual({ error: 'forbidden', message: expect.stringContaining(ADMIN_TOKEN_ENV) });
    expect(calls()).toBe(0);
    const ok = await app.inject({ method: 'GET', url: '/admin', remoteAddress: '127.0.0.1' });
    expect(ok.statusCode).toBe(200);
    expect(calls()).toBe(1);
  });

  it('with a token: 401 JSON without it (loopback too), 200 with it', async () => {
    const { app, calls } = build(TOKEN);
    const res = await app.inject({ method: 'GET', url: '/admin', remoteAddress: '127.0.0.1' });
    expect(res.statusCode).toBe(401);
    expect(res.headers['www-authenticate']).toMatch(/^Bearer /);
    expect(res.json()).toEqual({ error: 'unauthorized', message: expect.any(String) });
    const wrong = await app.inject({
      method: 'GET',
      url: '/admin',
      remoteAddress: '127.0.0.1',
      headers: { authorization: 'Bearer nope' },
    });
    expect(wrong.statusCode).toBe(401);
    expect(calls()).toBe(0);
    const ok = await app.inject({
      method: 'GET',
      url: '/admin',
      remoteAddress: '192.0.2.7',
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(ok.statusCode).toBe(200);
    expect(calls()).toBe(1);
  });
});
