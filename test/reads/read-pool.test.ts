// The read pool: worker threads with their own handle on the node's LevelDB answer scans and
// multi-key reads exactly as the main thread does, and see writes as soon as they are applied.
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { EntryType, type Entry } from '../../src/raft/types.js';
import { createReadQueries, INLINE_GET_MANY_MAX, INLINE_SCAN_MAX, type ReadQueries } from '../../src/reads/read-pool.js';
import { encodeCommand } from '../../src/storage/command.js';
import type { NodeStorage } from '../../src/storage/index.js';
import { bytes, useStorageFixture } from '../storage/helpers.js';

const fixture = useStorageFixture();
const logger = createLogger({ level: 'silent', pretty: false });
let queries: ReadQueries | null = null;

afterEach(async () => {
  // Workers first: they hold handles on the database the fixture closes after the test.
  await queries?.close();
  queries = null;
});

/** Commits and applies puts of `pairs` through the storage, as the Raft driver does. */
async function applyPuts(storage: NodeStorage, pairs: [string, string][]): Promise<void> {
  const first = storage.lastIndex() + 1;
  const entries: Entry[] = pairs.map(([k, v], i) => ({
    index: first + i,
    term: 1,
    type: EntryType.Normal,
    data: encodeCommand({ op: 'put', key: bytes(k), value: bytes(v) }),
  }));
  const last = first + entries.length - 1;
  await storage.persist({ term: 1, vote: 'n1', commit: last }, entries);
  await storage.applyEntries(entries);
}

const json = (body: Uint8Array): unknown => JSON.parse(new TextDecoder().decode(body));

describe('read pool', () => {
  it('answers large scans and multi-key reads in a worker exactly as the main thread does', async () => {
    const storage = await fixture.open(await fixture.tempDir());
    const pairs: [string, string][] = Array.from({ length: 500 }, (_, i) => [`key/${String(i).padStart(4, '0')}`, `value-${i}`]);
    await applyPuts(storage, pairs);
    queries = await createReadQueries({ location: storage.location, kv: storage.kv, threads: 1, logger });
    const inline = await createReadQueries({ location: storage.location, kv: storage.kv, threads: 0, logger });
    expect(queries.threads).toBe(1);

    const big = { prefix: bytes('key/'), limit: INLINE_SCAN_MAX + 200 }; // goes to the worker
    const fromPool = json(await queries.scanJson(big)) as { items: { key: string; value: string }[]; next: string | null };
    expect(fromPool).toEqual(json(await inline.scanJson(big)));
    expect(fromPool.items).toHaveLength(300);
    expect(fromPool.items[0]).toEqual({ key: 'key/0000', value: 'value-0' });
    expect(fromPool.next).toBe('key/0300');

    const keys = [...pairs.slice(0, INLINE_GET_MANY_MAX + 10).map(([k]) => bytes(k)), bytes('absent')];
    expect(json(await queries.getManyJson(keys))).toEqual(json(await inline.getManyJson(keys)));
    expect((json(await queries.getManyJson(keys)) as { items: unknown[] }).items.at(-1)).toEqual({ key: 'absent', value: null });
  });

  it('a worker sees a write as soon as it is applied', async () => {
    const storage = await fixture.open(await fixture.tempDir());
    queries = await createReadQueries({ location: storage.location, kv: storage.kv, threads: 1, logger });
    for (let round = 0; round < 20; round++) {
      await applyPuts(storage, [[`fresh/${round}`, `v${round}`]]);
      const page = json(await queries.scanJson({ prefix: bytes('fresh/'), limit: INLINE_SCAN_MAX + 1 })) as { items: unknown[] };
      expect(page.items).toHaveLength(round + 1);
    }
  });
});
