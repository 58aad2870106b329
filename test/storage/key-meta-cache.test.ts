import { describe, expect, it } from 'vitest';
import { KeyMetaCache } from '../../src/storage/key-meta-cache.js';

const meta = (n: number) => ({ createIndex: n, modIndex: n + 1, version: n + 2 });

describe('KeyMetaCache', () => {
  it('holds what was set, forgets what was deleted, and clear empties it', () => {
    const cache = new KeyMetaCache(4, 100);
    cache.set('a', meta(1));
    cache.set('b', meta(2));
    cache.set('a', meta(7));
    expect(cache.get('a')).toEqual(meta(7));
    expect(cache.get('b')).toEqual(meta(2));
    expect(cache.size).toBe(2);
    cache.delete('a');
    expect(cache.get('a')).toBeUndefined();
    cache.clear();
    expect(cache.size).toBe(0);
    expect(cache.get('b')).toBeUndefined();
    cache.set('c', meta(3));
    expect(cache.get('c')).toEqual(meta(3));
  });

  it('is bounded in entries: a full cache evicts a key not used since the hand passed it', () => {
    const cache = new KeyMetaCache(3, 100);
    for (const k of ['a', 'b', 'c']) cache.set(k, meta(1));
    // Every reference bit is set: one full turn clears them, then 'a' (first under the hand) goes.
    cache.set('d', meta(4));
    expect(cache.size).toBe(3);
    expect(cache.get('a')).toBeUndefined();
    // 'b' is used again; the hand is at 'b' now: it skips 'b' (clearing its bit) and evicts 'c'.
    expect(cache.get('b')).toEqual(meta(1));
    cache.set('e', meta(5));
    expect(cache.get('c')).toBeUndefined();
    expect(cache.get('b')).toEqual(meta(1));
    expect(cache.get('d')).toEqual(meta(4));
    expect(cache.get('e')).toEqual(meta(5));
  });

  it('is bounded in key bytes, and never keeps a key longer than the budget', () => {
    const cache = new KeyMetaCache(100, 10);
    cache.set('aaaa', meta(1));
    cache.set('bbbb', meta(2));
    cache.set('cccc', meta(3)); // 12 bytes: one of the others must go
    expect(cache.size).toBe(2);
    expect(cache.get('cccc')).toEqual(meta(3));
    cache.set('x'.repeat(11), meta(9));
    expect(cache.get('x'.repeat(11))).toBeUndefined();
    expect(cache.size).toBe(2);
  });

  it('survives many more keys than it holds without losing its bounds', () => {
    const cache = new KeyMetaCache(64, 1_000);
    for (let i = 0; i < 10_000; i++) {
      cache.set(`key-${i}`, meta(i));
      if (i % 3 === 0) cache.delete(`key-${i - 1}`);
      expect(cache.get(`key-${i}`)).toEqual(meta(i));
    }
    expect(cache.size).toBeLessThanOrEqual(64);
  });
});
