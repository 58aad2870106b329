// Small units of the transport: token resolution and the development token's refusal, bearer verification, log rate limiting, the
// outbound queue.

import { describe, expect, it } from 'vitest';
import { BearerVerifier } from '../../src/transport/auth.js';
import { LogLimiter } from '../../src/transport/log-limiter.js';
import { estimateMessageBytes, OutboundQueue } from '../../src/transport/outbound-queue.js';
import { DEV_PEER_TOKEN, devTokenRefusal, isLoopbackUrl, resolvePeerToken } from '../../src/transport/token.js';
import { heartbeat } from './helpers.js';

describe('resolvePeerToken', () => {
  it('prefers RAFTKV_PEER_TOKEN, then the config, then the development token', () => {
    expect(resolvePeerToken('from-config', { RAFTKV_PEER_TOKEN: 'from-env' })).toEqual({
      token: 'from-env',
      isDevToken: false,
    });
    expect(resolvePeerToken('from-config', {})).toEqual({ token: 'from-config', isDevToken: false });
    expect(resolvePeerToken(undefined, {})).toEqual({ token: DEV_PEER_TOKEN, isDevToken: true });
  });

  it('treats empty values as unset and flags the development token however it was supplied', () => {
    expect(resolvePeerToken('', { RAFTKV_PEER_TOKEN: ' ' })).toEqual({ token: DEV_PEER_TOKEN, isDevToken: true });
    expect(resolvePeerToken(undefined, { RAFTKV_PEER_TOKEN: DEV_PEER_TOKEN }).isDevToken).toBe(true);
  });
});

describe('isLoopbackUrl', () => {
  it('accepts 127.0.0.0/8, ::1 and localhost, however the URL spells them', () => {
    for (const url of [
      'http://127.0.0.1:7101',
      'http://127.255.3.4:1',
      'http://127.1:7101',
      'http://0x7f.0.0.1:7101',
      'http://[::1]:7101',
      'http://[0:0:0:0:0:0:0:1]:7101',
      'http://localhost:7101',
      'http://LocalHost:7101',
    ]) {
      expect(isLoopbackUrl(url), url).toBe(true);
    }
  });

  it('refuses every other host: other interfaces, the wildcard, names, mapped and malformed addresses', () => {
    for (const url of [
      'http://10.0.0.2:7101',
      'http://0.0.0.0:7101',
      'http://128.0.0.1:7101',
      'http://192.0.2.1:7101',
      'http://[::]:7101',
      'http://[::2]:7101',
      'http://[::ffff:127.0.0.1]:7101',
      'http://db1.example.com:7101',
      'http://localhost.example.com:7101',
      'http://127.0.0.1.example.com:7101',
      'not a url',
    ]) {
      expect(isLoopbackUrl(url), url).toBe(false);
    }
  });
});

describe('devTokenRefusal', () => {
  const dev = resolvePeerToken(undefined, {});
  const secret = resolvePeerToken(undefined, { RAFTKV_PEER_TOKEN: 'a-long-random-secret' });
  const loopback = [
    { id: 'n1', peerUrl: 'http://127.0.0.1:7101' },
    { id: 'n2', peerUrl: 'http://[::1]:7102' },
    { id: 'n3', peerUrl: 'http://localhost:7103' },
  ];

  it('lets a loopback-only cluster run with the development token (npm start)', () => {
    expect(devTokenRefusal(dev, loopback)).toBeUndefined();
  });

  it('refuses the development token when any peer URL is not loopback, naming the nodes and what to do', () => {
    const message = devTokenRefusal(dev, [...loopback.slice(0, 2), { id: 'n3', peerUrl: 'http://10.0.0.3:7103' }]);
    expect(message).toMatch(/development peer token/);
    expect(message).toMatch(/n3 at http:\/\/10\.0\.0\.3:7103/);
    expect(message).not.toMatch(/n1 at/);
    expect(message).toMatch(/Set RAFTKV_PEER_TOKEN to the same long random secret on every node/);
    expect(devTokenRefusal(dev, [{ id: 'n1', peerUrl: 'http://0.0.0.0:7101' }])).toMatch(
      /n1 at http:\/\/0\.0\.0\.0:7101/,
    );
  });

  it('refuses the development token however it was supplied (environment, config file)', () => {
    const exposed = [{ id: 'n1', peerUrl: 'http://192.0.2.1:7101' }];
    expect(devTokenRefusal(resolvePeerToken(undefined, { RAFTKV_PEER_TOKEN: DEV_PEER_TOKEN }), exposed)).toBeDefined();
    expect(devTokenRefusal(resolvePeerToken(DEV_PEER_TOKEN, {}), exposed)).toBeDefined();
  });

  it('never refuses a real secret, wherever the peers are', () => {
    expect(devTokenRefusal(secret, [{ id: 'n1', peerUrl: 'http://192.0.2.1:7101' }, ...loopback])).toBeUndefined();
  });
});

describe('BearerVerifier', () => {
  const verifier = new BearerVerifier('s3cret');

  it('accepts exactly the token, with a case-insensitive scheme', () => {
    expect(verifier.verify('Bearer s3cret')).toBe(true);
    expect(verifier.verify('bearer s3cret')).toBe(true);
  });

  it('rejects everything else', () => {
    for (const header of [
      undefined,
      '',
      's3cret',
      'Bearer',
      'Bearer ',
      'Bearer s3cre',
      'Bearer s3cret2',
      'Basic s3cret',
      ['Bearer s3cret'],
    ]) {
      expect(verifier.verify(header)).toBe(false);
    }
  });

  it('refuses an empty token', () => {
    expect(() => new BearerVerifier('')).toThrow();
  });

  it('accepts only the exact token: not with trailing NULs, not longer or shorter, UTF-8 compared as bytes', () => {
    expect(verifier.verify('Bearer s3cret\u0000')).toBe(false);
    expect(verifier.verify(`Bearer ${'x'.repeat(600)}`)).toBe(false);
    const long = new BearerVerifier('t'.repeat(700));
    expect(long.verify(`Bearer ${'t'.repeat(700)}`)).toBe(true);
    expect(long.verify(`Bearer ${'t'.repeat(699)}`)).toBe(false);
    expect(long.verify(`Bearer ${'t'.repeat(701)}`)).toBe(false);
    const utf8 = new BearerVerifier('sécret-ü');
    expect(utf8.verify('Bearer sécret-ü')).toBe(true);
    expect(utf8.verify('Bearer secret-u')).toBe(false);
  });
});

describe('LogLimiter', () => {
  it('admits one line per key per interval and counts the suppressed ones', () => {
    let now = 0;
    const limiter = new LogLimiter(1000, 2, () => now);
    expect(limiter.admit('a')).toBe(0);
    expect(limiter.admit('a')).toBeNull();
    expect(limiter.admit('a')).toBeNull();
    expect(limiter.admit('b')).toBe(0);
    now = 1000;
    expect(limiter.admit('a')).toBe(2);
    limiter.reset('a');
    expect(limiter.admit('a')).toBe(0);
  });

  it('forgets the oldest keys beyond its bound', () => {
    const limiter = new LogLimiter(1000, 2, () => 0);
    limiter.admit('a');
    limiter.admit('b');
    limiter.admit('c'); // evicts a
    expect(limiter.admit('a')).toBe(0);
    expect(limiter.admit('c')).toBeNull();
  });
});

describe('OutboundQueue', () => {
  it('drops the oldest beyond its message bound and keeps order', () => {
    const queue = new OutboundQueue(3, 1 << 20);
    let dropped = 0;
    for (let round = 1; round <= 5; round++) dropped += queue.push(heartbeat('n1', 'n2', round));
    expect(dropped).toBe(2);
    expect(queue.take(2).map((m) => (m.type === 'heartbeat' ? m.round : 0))).toEqual([3, 4]);
    expect(queue.length).toBe(1);
    expect(queue.clear()).toBe(1);
    expect(queue.bytes).toBe(0);
  });

  it('bounds bytes but always keeps the newest message', () => {
    const big = {
      type: 'app',
      from: 'n1',
      to: 'n2',
      term: 1,
      index: 0,
      logTerm: 0,
      commit: 0,
      entries: [{ index: 1, term: 1, type: 0, data: new Uint8Array(5000) }],
    } as const;
    const queue = new OutboundQueue(100, 4096);
    expect(queue.push(heartbeat('n1', 'n2', 1))).toBe(0);
    expect(queue.push(big)).toBe(1);
    expect(queue.length).toBe(1);
    expect(queue.bytes).toBe(estimateMessageBytes(big));
  });

  it('stays O(1) amortized when a stalled peer keeps it at its bound', () => {
    const queue = new OutboundQueue(1000, 1 << 30);
    const started = Date.now();
    for (let round = 0; round < 200_000; round++) queue.push(heartbeat('n1', 'n2', round));
    expect(Date.now() - started).toBeLessThan(1000);
    expect(queue.length).toBe(1000);
    const batch = queue.take(10_000);
    expect(batch[0]?.type === 'heartbeat' && batch[0].round).toBe(199_000);
  });
});
