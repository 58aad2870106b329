// The read pool: worker threads with their own handle on the node's LevelDB answer scans and
// multi-key reads exactly as the main thread does, and see writes as soon as they are applied.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../../src/log.js';
import type * as Format from '../../src/reads/format.js';
import { itemJson } from '../../src/reads/format.js';
import {
  createReadQueries,
  INLINE_BUDGET_BYTES,
  startReadQueries,
  type ManyAnswer,
  type ReadPoolOptions,
  type ReadQueries,
} from '../../src/reads/read-pool.js';
import { INLINE_ITEM_CHARGE } from '../../src/reads/queries.js';
import type { NodeStorage } from '../../src/storage/node-storage.js';
import { bytes, useStorageFixture } from '../storage/helpers.js';
import { applyPuts } from './helpers.js';

// The formatter, counted on the main thread: a query over the inline budget must format nothing
// there (queries.ts reads ahead within the budget before formatting).
vi.mock('../../src/reads/format.js', async (importOriginal) => {
  const actual = await importOriginal<typeof Format>();
  return { ...actual, itemJson: vi.fn(actual.itemJson) };
});

const fixture = useStorageFixture();
const logger = createLogger({ level: 'silent', pretty: false });
let queries: ReadQueries | null = null;

afterEach(async () => {
  // Workers first: they hold handles on the database the fixture closes after the test.
  await queries?.close();
  queries = null;
});

const json = (body: Uint8Array): unknown => JSON.parse(new TextDecoder().decode(body));
const many = (answer: ManyAnswer): unknown => {
  if (!('json' in answer)) throw new Error(`refused: ${JSON.stringify(answer)}`);
  return json(answer.json);
};
const CAP = 16 * 1024 * 1024;

/** The options of a read pool of one worker on `storage`'s database, with `overrides`. */
function poolOptions(storage: NodeStorage, overrides: Partial<ReadPoolOptions> = {}): ReadPoolOptions {
  return { location: storage.location, state: storage, threads: 1, logger, maxResponseBytes: CAP, ...overrides };
}

/** A read pool of one worker on `storage`'s database (the caller keeps it in `queries`, closed after the test). */
function openPool(storage: NodeStorage, maxResponseBytes = CAP): Promise<ReadQueries> {
  return createReadQueries(poolOptions(storage, { maxResponseBytes }));
}

/**
 * 40 keys `s/00`... of one-byte values in a pool of one worker (in `queries`), and how many of
 * them fit the inline budget: `fit` items stay inline, one more goes to the pool.
 */
async function smallKeys(): Promise<{ keys: string[]; fit: number; pool: ReadQueries }> {
  const storage = await fixture.open(await fixture.tempDir());
  const keys = Array.from({ length: 40 }, (_, i) => `s/${String(i).padStart(2, '0')}`);
  await applyPuts(
    storage,
    keys.map((key): [string, string] => [key, 'v']),
  );
  const pool = (queries = await openPool(storage));
  const fit = Math.floor(INLINE_BUDGET_BYTES / (INLINE_ITEM_CHARGE + 's/00'.length + 'v'.length));
  expect(fit).toBeLessThan(keys.length - 1);
  return { keys, fit, pool };
}

describe('read pool', () => {
  it('starts without being waited for, and its start fails past its deadline instead of leaving queries queued for ever', async () => {
    const storage = await fixture.open(await fixture.tempDir());
    await applyPuts(storage, [['k', 'v']]);
    // A worker cannot start in a millisecond: the start is refused, saying why.
    const late = startReadQueries(poolOptions(storage, { startTimeoutMs: 1 }));
    queries = late.queries;
    await expect(late.ready).rejects.toThrow(/did not start within 1 ms/);
    await late.queries.close();
    // Without a deadline passing, a query asked before the workers are ready waits for them.
    const started = startReadQueries(poolOptions(storage, { inlineBudgetBytes: 0 }));
    queries = started.queries;
    const answer = started.queries.getManyJson([bytes('k')]);
    await started.ready;
    expect(many(await answer)).toMatchObject({ items: [{ key: 'k', value: 'v' }] });
    expect(started.queries.pooled).toBe(1);
  });

  it('answers large scans and multi-key reads in a worker exactly as the main thread does', async () => {
    const storage = await fixture.open(await fixture.tempDir());
    const pairs: [string, string][] = Array.from({ length: 500 }, (_, i) => [
      `key/${String(i).padStart(4, '0')}`,
      `value-${i}`,
    ]);
    await applyPuts(storage, pairs);
    queries = await openPool(storage);
    const inline = await createReadQueries(poolOptions(storage, { threads: 0 }));
    expect(queries.threads).toBe(1);

    const big = { prefix: bytes('key/'), limit: 300 }; // 300 items: past the inline budget, so the worker answers
    const fromPool = json(await queries.scanJson(big)) as {
      items: { key: string; value: string }[];
      next: string | null;
    };
    expect(fromPool).toEqual(json(await inline.scanJson(big)));
    expect(fromPool.items).toHaveLength(300);
    // Each item with its key's metadata: key/0000 was the first write, at index 1.
    expect(fromPool.items[0]).toEqual({ key: 'key/0000', value: 'value-0', createIndex: 1, modIndex: 1, version: 1 });
    expect(fromPool.next).toBe('key/0300');
    expect(queries.pooled).toBe(1);

    const keys = [...pairs.slice(0, 100).map(([k]) => bytes(k)), bytes('absent')];
    expect(many(await queries.getManyJson(keys))).toEqual(many(await inline.getManyJson(keys)));
    expect((many(await queries.getManyJson(keys)) as { items: unknown[] }).items.at(-1)).toEqual({
      key: 'absent',
      value: null,
    });
    expect(queries.pooled).toBe(3);
  });

  it('a worker sees a write as soon as it is applied', async () => {
    const storage = await fixture.open(await fixture.tempDir());
    // No inline budget: every query goes to the worker.
    queries = await createReadQueries(poolOptions(storage, { inlineBudgetBytes: 0 }));
    for (let round = 0; round < 20; round++) {
      await applyPuts(storage, [[`fresh/${round}`, `v${round}`]]);
      const page = json(await queries.scanJson({ prefix: bytes('fresh/'), limit: 100 })) as { items: unknown[] };
      expect(page.items).toHaveLength(round + 1);
    }
    expect(queries.pooled).toBe(20);
  });

  it('decides by bytes: few big values go to the pool, many small ones up to the budget stay inline', async () => {
    // Regression: the old rule counted keys (scans up to 100, multi-gets up to 16 ran inline), so
    // 100 values of 1 MiB were formatted on the main thread for seconds, and the cluster lost its leader.
    const storage = await fixture.open(await fixture.tempDir());
    const big = 'B'.repeat(INLINE_BUDGET_BYTES); // one alone passes the budget
    await applyPuts(storage, [
      ...Array.from({ length: 3 }, (_, i): [string, string] => [`big/${i}`, big]),
      ...Array.from({ length: 8 }, (_, i): [string, string] => [`small/${i}`, `v${i}`]),
    ]);
    queries = await openPool(storage);
    const page = json(await queries.scanJson({ prefix: bytes('big/'), limit: 3 })) as { items: { value: string }[] };
    expect(page.items.map((i) => i.value.length)).toEqual([big.length, big.length, big.length]);
    expect(queries.pooled).toBe(1);
    expect(many(await queries.getManyJson([bytes('big/0'), bytes('big/1')]))).toMatchObject({
      items: [{ key: 'big/0' }, { key: 'big/1' }],
    });
    expect(queries.pooled).toBe(2);
    // Eight small items are well inside the budget: no round trip to a worker.
    expect(
      (json(await queries.scanJson({ prefix: bytes('small/'), limit: 8 })) as { items: unknown[] }).items,
    ).toHaveLength(8);
    expect(
      (
        many(await queries.getManyJson(Array.from({ length: 8 }, (_, i) => bytes(`small/${i}`)))) as {
          items: unknown[];
        }
      ).items,
    ).toHaveLength(8);
    expect(queries.pooled).toBe(2);
  });

  it('a scan stays inline while its page is within the budget, the cursor entry uncharged, and goes to the pool one item past it', async () => {
    // Each item is charged its key and value bytes plus INLINE_ITEM_CHARGE; the inline attempt reads
    // the page before formatting any of it, and its iterator steps bring only what the budget can
    // use, so these edges are where the budget arithmetic shows.
    const { keys, fit, pool } = await smallKeys();
    const page = async (limit: number) =>
      json(await pool.scanJson({ prefix: bytes('s/'), limit })) as { items: { key: string }[]; next: string };

    const inline = await page(fit);
    expect(inline.items.map((i) => i.key)).toEqual(keys.slice(0, fit));
    expect(inline.next).toBe(keys[fit]);
    expect(pool.pooled).toBe(0);

    const pooled = await page(fit + 1);
    expect(pooled.items.map((i) => i.key)).toEqual(keys.slice(0, fit + 1));
    expect(pooled.next).toBe(keys[fit + 1]);
    expect(pool.pooled).toBe(1);

    // A page that ends before the budget (the range runs out) stays inline whatever its limit.
    const tail = json(await pool.scanJson({ start: bytes(keys[keys.length - 3]!), prefix: bytes('s/'), limit: 100 }));
    expect(tail).toEqual({ items: keys.slice(-3).map((key) => expect.objectContaining({ key })), next: null });
    expect(pool.pooled).toBe(1);
  });

  it('a scan or multi-key read that the answer cap ends or refuses within the budget stays inline', async () => {
    // Reading ahead stops once the entries' raw bytes pass the cap: the cap decides the answer by
    // then, so charging the entries after it would send a query the cap settles to the pool.
    const storage = await fixture.open(await fixture.tempDir());
    const keys = Array.from({ length: 100 }, (_, i) => `c/${String(i).padStart(3, '0')}`);
    await applyPuts(
      storage,
      keys.map((key): [string, string] => [key, 'v'.repeat(100)]),
    );
    const cap = 2048;
    queries = await openPool(storage, cap);
    const body = await queries.scanJson({ prefix: bytes('c/'), limit: 100 });
    const page = json(body) as { items: { key: string }[]; next: string };
    expect(body.byteLength).toBeLessThanOrEqual(cap);
    expect(page.items.length).toBeGreaterThan(1);
    expect(page.items.map((i) => i.key)).toEqual(keys.slice(0, page.items.length));
    expect(page.next).toBe(keys[page.items.length]);
    expect(await queries.getManyJson(keys.slice(0, 50).map((k) => bytes(k)))).toMatchObject({
      tooLarge: { keys: 50, fit: page.items.length },
    });
    expect(queries.pooled).toBe(0);
  });

  it('an inline scan whose first iterator step a big value cuts short reads on in small steps, and answers whole', async () => {
    // An iterator step also ends after 16 KiB: a 20 KiB value first, then small ones, all within the budget.
    const storage = await fixture.open(await fixture.tempDir());
    const small = Array.from({ length: 8 }, (_, i) => `s/${i}`);
    await applyPuts(storage, [['s/', 'B'.repeat(20 * 1024)], ...small.map((key): [string, string] => [key, 'v'])]);
    queries = await openPool(storage);
    const page = json(await queries.scanJson({ prefix: bytes('s/'), limit: 8 })) as {
      items: { key: string; value: string }[];
      next: string;
    };
    expect(page.items.map((i) => i.key)).toEqual(['s/', ...small.slice(0, 7)]);
    expect(page.items[0]!.value).toHaveLength(20 * 1024);
    expect(page.next).toBe(small[7]);
    expect(queries.pooled).toBe(0);
  });

  it('a query over the budget formats nothing on the main thread, scan or multi-key read: the pool does it all', async () => {
    // The main thread's formatter is counted through the mock of format.js above (the worker loads
    // its own, unmocked copy).
    const { keys, fit, pool } = await smallKeys();
    const formatted = vi.mocked(itemJson);
    // Within the budget: answered inline, so the main thread formats (the spy sees it).
    formatted.mockClear();
    await pool.scanJson({ prefix: bytes('s/'), limit: fit });
    expect(pool.pooled).toBe(0);
    expect(formatted.mock.calls.length).toBeGreaterThanOrEqual(fit);
    // One item past it: the pool answers, and the main thread formatted none of it.
    formatted.mockClear();
    await pool.scanJson({ prefix: bytes('s/'), limit: fit + 1 });
    expect(pool.pooled).toBe(1);
    expect(formatted).not.toHaveBeenCalled();
    // The same for a multi-key read.
    formatted.mockClear();
    await pool.getManyJson(keys.slice(0, fit).map(bytes));
    expect(pool.pooled).toBe(1);
    expect(formatted.mock.calls.length).toBe(fit);
    formatted.mockClear();
    await pool.getManyJson(keys.slice(0, fit + 1).map(bytes));
    expect(pool.pooled).toBe(2);
    expect(formatted).not.toHaveBeenCalled();
  });
});
