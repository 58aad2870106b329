import { describe, expect, it } from 'vitest';
import { encodeCommand } from '../../src/storage/state-machine.js';
import { scanBounds } from '../../src/storage/kv-scan.js';
import type { NodeStorage } from '../../src/storage/node-storage.js';
import { bytes, entry, text, useStorageFixture } from './helpers.js';

const fixture = useStorageFixture();

/** A storage whose state machine holds `keys` (value = key uppercased). */
async function withKeys(keys: readonly (string | Uint8Array)[]): Promise<NodeStorage> {
  const storage = await fixture.open(await fixture.tempDir());
  const entries = keys.map((k, i) => {
    const key = typeof k === 'string' ? bytes(k) : k;
    const value = typeof k === 'string' ? bytes(k.toUpperCase()) : bytes('bin');
    return entry(i + 1, 1, encodeCommand({ op: 'put', key, value }));
  });
  await storage.persist({ term: 1, vote: 'n1', commit: entries.length }, entries);
  await storage.applyEntries(entries);
  return storage;
}

/** Every page of a scan, following nextStart, as lists of key strings. */
async function pages(
  storage: NodeStorage,
  options: { prefix?: string; start?: string; limit: number },
): Promise<string[][]> {
  const out: string[][] = [];
  let start = options.start === undefined ? undefined : bytes(options.start);
  for (let guard = 0; guard < 100; guard++) {
    const page = await storage.scan({
      limit: options.limit,
      ...(options.prefix === undefined ? {} : { prefix: bytes(options.prefix) }),
      ...(start === undefined ? {} : { start }),
    });
    out.push(page.entries.map(([k]) => text(k) ?? ''));
    if (page.nextStart === null) return out;
    start = page.nextStart;
  }
  throw new Error('scan never ended');
}

describe('NodeStorage.scan', () => {
  const keys = ['a', 'ab', 'abc', 'abd', 'abz', 'ac', 'b', 'ba', 'c'];

  it('pages through every key in order, each page ending with the cursor of the next', async () => {
    const storage = await withKeys(keys);
    expect(await pages(storage, { limit: 4 })).toEqual([['a', 'ab', 'abc', 'abd'], ['abz', 'ac', 'b', 'ba'], ['c']]);
    expect(await pages(storage, { limit: 9 })).toEqual([keys]);
    expect(await pages(storage, { limit: 100 })).toEqual([keys]);
    const first = await storage.scan({ limit: 2 });
    expect(first.entries.map(([k, v]) => [text(k), text(v)])).toEqual([
      ['a', 'A'],
      ['ab', 'AB'],
    ]);
    expect(text(first.nextStart ?? undefined)).toBe('abc');
  });

  it('keeps to the prefix, and treats start as an inclusive cursor within it', async () => {
    const storage = await withKeys(keys);
    expect(await pages(storage, { prefix: 'ab', limit: 2 })).toEqual([
      ['ab', 'abc'],
      ['abd', 'abz'],
    ]);
    expect(await pages(storage, { prefix: 'ab', start: 'abd', limit: 10 })).toEqual([['abd', 'abz']]);
    // A cursor before the prefix starts at the prefix; one after it finds nothing.
    expect(await pages(storage, { prefix: 'ab', start: 'a', limit: 10 })).toEqual([['ab', 'abc', 'abd', 'abz']]);
    expect(await pages(storage, { prefix: 'ab', start: 'ac', limit: 10 })).toEqual([[]]);
    expect(await pages(storage, { prefix: 'b', limit: 1 })).toEqual([['b'], ['ba']]);
    expect(await pages(storage, { prefix: 'zz', limit: 5 })).toEqual([[]]);
    expect(await pages(storage, { start: 'b', limit: 5 })).toEqual([['b', 'ba', 'c']]);
  });

  it('handles prefixes of 0xff bytes, which have no upper bound', async () => {
    const storage = await withKeys([
      'a',
      new Uint8Array([0xff]),
      new Uint8Array([0xff, 0xff, 1]),
      new Uint8Array([0xff, 0xff]),
    ]);
    const page = await storage.scan({ prefix: new Uint8Array([0xff, 0xff]), limit: 10 });
    expect(page.entries.map(([k]) => [...k])).toEqual([
      [0xff, 0xff],
      [0xff, 0xff, 1],
    ]);
    expect(scanBounds(new Uint8Array([0x61, 0xff]), undefined)).toEqual({
      gte: new Uint8Array([0x61, 0xff]),
      lt: new Uint8Array([0x62]),
    });
    expect(scanBounds(new Uint8Array([0xff]), undefined)).toEqual({ gte: new Uint8Array([0xff]), lt: undefined });
  });

  it('a Buffer prefix is left as it was, and scans its range', async () => {
    // Regression: prefixEnd used `slice`, a view on a Buffer, and incremented its last byte: the
    // caller's prefix became its own end and the scan found nothing.
    const storage = await withKeys(keys);
    const prefix = Buffer.from('ab');
    const bounds = scanBounds(prefix, undefined);
    expect([bounds?.gte, bounds?.lt].map((b) => text(b))).toEqual(['ab', 'ac']);
    expect(prefix.toString()).toBe('ab');
    const page = await storage.scan({ prefix: Buffer.from('ab'), limit: 10 });
    expect(page.entries.map(([k]) => text(k))).toEqual(['ab', 'abc', 'abd', 'abz']);
  });

  it('reads large pages in chunks without losing or repeating keys', async () => {
    const many = Array.from({ length: 700 }, (_, i) => `key${String(i).padStart(4, '0')}`);
    const storage = await withKeys(many);
    const result = await pages(storage, { prefix: 'key', limit: 300 });
    expect(result.map((p) => p.length)).toEqual([300, 300, 100]);
    expect(result.flat()).toEqual(many);
  });

  it('refuses a limit below 1', async () => {
    const storage = await withKeys(['a']);
    await expect(storage.scan({ limit: 0 })).rejects.toThrow(RangeError);
    await expect(storage.scan({ limit: 1.5 })).rejects.toThrow(RangeError);
  });
});
