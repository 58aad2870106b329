// Small units of the transport: token resolution, bearer verification, log rate limiting, the
// outbound queue.

import { describe, expect, it } from 'vitest';
import { BearerVerifier } from '../../src/transport/auth.js';
import { LogLimiter } from '../../src/transport/log-limiter.js';
import { estimateMessageBytes, OutboundQueue } from '../../src/transport/outbound-queue.js';
import { DEV_PEER_TOKEN, resolvePeerToken } from '../../src/transport/token.js';
import { heartbeat } from './helpers.js';

describe('resolvePeerToken', () => {
  it('prefers RAFTKV_PEER_TOKEN, then the config, then the development token', () => {
    expect(resolvePeerToken('from-config', { RAFTKV_PEER_TOKEN: 'from-env' })).toEqual({ token: 'from-env', isDevToken: false });
    expect(resolvePeerToken('from-config', {})).toEqual({ token: 'from-config', isDevToken: false });
    expect(resolvePeerToken(undefined, {})).toEqual({ token: DEV_PEER_TOKEN, isDevToken: true });
  });

  it('treats empty values as unset and flags the development token however it was supplied', () => {
    expect(resolvePeerToken('', { RAFTKV_PEER_TOKEN: ' ' })).toEqual({ token: DEV_PEER_TOKEN, isDevToken: true });
    expect(resolvePeerToken(undefined, { RAFTKV_PEER_TOKEN: DEV_PEER_TOKEN }).isDevToken).toBe(true);
  });
});

describe('BearerVerifier', () => {
  const verifier = new BearerVerifier('s3cret');

  it('accepts exactly the token, with a case-insensitive scheme', () => {
    expect(verifier.verify('Bearer s3cret')).toBe(true);
    expect(verifier.verify('bearer s3cret')).toBe(true);
  });

  it('rejects everything else', () => {
    for (const header of [undefined, '', 's3cret', 'Bearer', 'Bearer ', 'Bearer s3cre', 'Bearer s3cret2', 'Basic s3cret', ['Bearer s3cret']]) {
      expect(verifier.verify(header)).toBe(false);
    }
  });

  it('refuses an empty token', () => {
    expect(() => new BearerVerifier('')).toThrow();
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
    const big = { type: 'app', from: 'n1', to: 'n2', term: 1, index: 0, logTerm: 0, commit: 0, entries: [{ index: 1, term: 1, type: 0, data: new Uint8Array(5000) }] } as const;
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
