// limits.maxResponseBytes: a scan page stops before the item that would pass the cap (with that
// item's key as `next`, and never with fewer than one item); a multi-key read beyond it is refused.
// The same on the main thread and in a worker, whichever runs the query.
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { formatPage, formatValues } from '../../src/reads/format.js';
import { createReadQueries, type ReadQueries } from '../../src/reads/read-pool.js';
import type { KeyMeta } from '../../src/storage/key-meta.js';
import type { NodeStorage } from '../../src/storage/node-storage.js';
import { bytes, useStorageFixture } from '../storage/helpers.js';
import { applyPuts } from './helpers.js';

const fixture = useStorageFixture();
const logger = createLogger({ level: 'silent', pretty: false });
let queries: ReadQueries | null = null;

afterEach(async () => {
  await queries?.close();
  queries = null;
});

const CAP = 12 * 1024;
/** 0xff is never valid UTF-8: these values come back in base64, 4/3 of their size. */
const binary = (n: number): Uint8Array => new Uint8Array(n).fill(0xff);
const SIZES = [3000, 10, 5000, 7000, 1, 20_000, 2500, 2500, 2500, 900, 4000, 8000];
const DATA: [string, Uint8Array][] = [
  ...SIZES.map((n, i): [string, Uint8Array] => [`v/${String(i).padStart(2, '0')}`, binary(n)]),
  // Text that JSON escapes (quotes, backslashes, newlines) and that is more bytes than characters.
  ['v/text', bytes(`"\\\n\u00e9\u20ac\u{1f600}`.repeat(300))],
];
/** storageWithData puts DATA[i] at log index i + 1: the key's metadata. */
const metaOf = (i: number): KeyMeta => ({ createIndex: i + 1, modIndex: i + 1, version: 1 });
/** DATA[from, to) as items (key, value, metadata), for the expected answers. */
const entries = (from: number, to: number): [Uint8Array, Uint8Array, KeyMeta][] =>
  DATA.slice(from, to).map(([k, v], i) => [bytes(k), v, metaOf(from + i)]);
/** DATA[from, to) as found values, for formatValues. */
const found = (from: number, to: number): { value: Uint8Array; meta: KeyMeta }[] =>
  DATA.slice(from, to).map(([, value], i) => ({ value, meta: metaOf(from + i) }));
const decode = (body: Uint8Array): unknown => JSON.parse(new TextDecoder().decode(body));

async function storageWithData(): Promise<NodeStorage> {
  const storage = await fixture.open(await fixture.tempDir());
  await applyPuts(storage, DATA);
  return storage;
}

const modes: [string, number, number | undefined][] = [
  ['on the main thread (no pool)', 0, undefined],
  ['in a worker (no inline budget)', 1, 0],
  ['inline first, then a worker (the default budget)', 1, undefined],
];

describe.each(modes)('the answer cap, %s', (_name, threads, inlineBudgetBytes) => {
  const open = async (): Promise<ReadQueries> => {
    const storage = await storageWithData();
    return createReadQueries({
      location: storage.location,
      state: storage,
      threads,
      logger,
      maxResponseBytes: CAP,
      ...(inlineBudgetBytes === undefined ? {} : { inlineBudgetBytes }),
    });
  };

  for (const limit of [1, 3, 100]) {
    it(`scan pages (limit ${limit}) stop at the cap, each as full as it can be, and together hold every item once`, async () => {
      queries = await open();
      let at = 0; // index into DATA of the page's first item
      let start: Uint8Array | undefined;
      for (let guard = 0; guard < 100; guard++) {
        const body = await queries.scanJson({ prefix: bytes('v/'), limit, ...(start === undefined ? {} : { start }) });
        const page = decode(body) as { items: unknown[]; next: string | null };
        const count = page.items.length;
        expect(count).toBeGreaterThanOrEqual(1);
        const nextIndex = at + count;
        // The very bytes JSON.stringify would give for exactly these items and this cursor.
        const expected = formatPage(
          entries(at, nextIndex),
          DATA[nextIndex]?.[0] === undefined ? null : bytes(DATA[nextIndex]![0]),
        );
        expect(Buffer.from(body).equals(Buffer.from(expected))).toBe(true);
        if (count > 1) expect(body.byteLength).toBeLessThanOrEqual(CAP);
        if (nextIndex < DATA.length && count < limit) {
          // Stopped by the cap: one more item would not have fitted.
          const more = DATA[nextIndex + 1];
          const bigger = formatPage(entries(at, nextIndex + 1), more === undefined ? null : bytes(more[0]));
          expect(bigger.byteLength).toBeGreaterThan(CAP);
        }
        if (page.next === null) {
          expect(nextIndex).toBe(DATA.length);
          return;
        }
        at = nextIndex;
        start = bytes(page.next);
      }
      throw new Error('the scan never ended');
    });
  }

  it('the cap is exact: an answer of exactly maxResponseBytes is given, one byte less takes an item fewer', async () => {
    const storage = await storageWithData();
    const keys = DATA.map(([k]) => bytes(k));
    for (const count of [2, 4]) {
      // The page of `count` items, whose cursor is the next key; the multi-key answer of `count` keys.
      const pageBytes = formatPage(entries(0, count), keys[count]!).byteLength;
      const manyBytes = formatValues(keys.slice(0, count), found(0, count)).byteLength;
      for (const [cap, expected] of [
        [pageBytes, count],
        [pageBytes - 1, count - 1],
      ] as const) {
        const reads = await createReadQueries({
          location: storage.location,
          state: storage,
          threads,
          logger,
          maxResponseBytes: cap,
          ...(inlineBudgetBytes === undefined ? {} : { inlineBudgetBytes }),
        });
        try {
          const body = await reads.scanJson({ prefix: bytes('v/'), limit: 100 });
          expect((decode(body) as { items: unknown[] }).items, `cap ${cap}`).toHaveLength(expected);
          expect(body.byteLength).toBeLessThanOrEqual(cap);
        } finally {
          await reads.close();
        }
      }
      for (const [cap, answered] of [
        [manyBytes, true],
        [manyBytes - 1, false],
      ] as const) {
        const reads = await createReadQueries({
          location: storage.location,
          state: storage,
          threads,
          logger,
          maxResponseBytes: cap,
          ...(inlineBudgetBytes === undefined ? {} : { inlineBudgetBytes }),
        });
        try {
          const answer = await reads.getManyJson(keys.slice(0, count));
          expect(answer, `cap ${cap}`).toEqual(
            answered ? { json: expect.anything() } : { tooLarge: { keys: count, fit: count - 1 } },
          );
          if ('json' in answer) expect(answer.json.byteLength).toBe(cap);
        } finally {
          await reads.close();
        }
      }
    }
  });

  it('a value bigger than the cap comes alone in its page, so a scan over it still makes progress', async () => {
    queries = await open();
    const page = decode(await queries.scanJson({ prefix: bytes('v/05'), limit: 10 })) as {
      items: { keyBase64?: string; key?: string }[];
      next: string | null;
    };
    expect(page.items.map((i) => i.key)).toEqual(['v/05']);
    const from = decode(await queries.scanJson({ prefix: bytes('v/'), start: bytes('v/05'), limit: 10 })) as {
      items: unknown[];
      next: string | null;
    };
    expect(from.items).toHaveLength(1);
    expect(from.next).toBe('v/06');
  });

  it('a multi-key read whose answer would pass the cap is refused, saying how many keys fit', async () => {
    queries = await open();
    const keys = DATA.map(([k]) => bytes(k));
    // Keys 0-4 come to ~20 KB in base64: more than the cap.
    let fit = 0;
    while (formatValues(keys.slice(0, fit + 1), found(0, fit + 1)).byteLength <= CAP) fit++;
    expect(await queries.getManyJson(keys)).toEqual({ tooLarge: { keys: keys.length, fit } });
    const fitting = keys.slice(0, fit);
    const answer = await queries.getManyJson(fitting);
    expect('json' in answer && Buffer.from(answer.json).equals(Buffer.from(formatValues(fitting, found(0, fit))))).toBe(
      true,
    );
    // Alone, a value bigger than the cap is answered: there is nothing smaller to ask for.
    const alone = await queries.getManyJson([bytes('v/05')]);
    expect('json' in alone && alone.json.byteLength).toBeGreaterThan(CAP);
    // Ahead of others, it is refused with nothing that fits.
    expect(await queries.getManyJson([bytes('v/05'), bytes('v/01')])).toEqual({ tooLarge: { keys: 2, fit: 0 } });
  });
});
