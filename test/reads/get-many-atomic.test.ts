// A multi-key read sees a batch whole or not at all. A Ready's batch lands on a libuv thread while
// the main thread (or a pool worker) reads key after key; without one LevelDB snapshot for the
// whole read, a batch that lands between two keys' reads shows half of its writes (half of a
// transaction). Each round below lands one batch that sets both keys to the round's number, while
// the main thread reads both, again and again, until it sees the batch.
import { describe, expect, it } from 'vitest';
import type { Entry } from '../../src/raft/types.js';
import { getManyQuery } from '../../src/reads/queries.js';
import { encodeCommand } from '../../src/storage/command.js';
import { bytes, entry, useStorageFixture, wrapBatches } from '../storage/helpers.js';

const fixture = useStorageFixture();
const ROUNDS = 150;

describe('getManyQuery', () => {
  it('never shows half of a batch that lands while it reads', async () => {
    const storage = await fixture.open(await fixture.tempDir());
    const keys = [bytes('a'), bytes('b')];
    const bounds = { maxResponseBytes: 1 << 20, inlineBudget: Infinity };
    const torn: string[] = [];
    let reads = 0;
    /** Set once the round's batch is handed to LevelDB (reset each round). */
    let submitted: boolean;
    wrapBatches(storage, (original) => (ops, options) => {
      const written = original(ops, options);
      submitted = true;
      return written;
    });
    for (let round = 1; round <= ROUNDS; round++) {
      const first = storage.lastIndex() + 1;
      const entries: Entry[] = ['a', 'b'].map((key, i) =>
        entry(first + i, 1, encodeCommand({ op: 'put', key: bytes(key), value: bytes(String(round)) })),
      );
      const read = await storage.beginRead();
      submitted = false;
      const landing = storage.writeReady({ term: 1, vote: 'n1', commit: first + 1 }, entries, entries);
      // The batch is handed to LevelDB a few microtasks later: wait for that, not for it to land.
      for (let turns = 0; !submitted && turns < 1000; turns++) await Promise.resolve();
      expect(submitted).toBe(true);
      // Read while the batch is written (the loop blocks this thread, not LevelDB's), until both
      // keys show it, for at most 200 ms.
      const deadline = performance.now() + 200;
      for (let seen = ''; seen !== `${round},${round}` && performance.now() < deadline; reads++) {
        const outcome = getManyQuery(read.kv, keys, bounds);
        if (!('json' in outcome)) throw new Error('unexpected outcome');
        const items = (JSON.parse(Buffer.from(outcome.json).toString()) as { items: { value: string | null }[] }).items;
        seen = items.map((item) => item.value ?? '').join(',');
        const [a, b] = items.map((item) => item.value);
        if (a !== b) torn.push(`round ${round}: a=${a} b=${b}`);
      }
      read.end();
      await landing;
    }
    expect(reads).toBeGreaterThan(ROUNDS);
    expect(torn.slice(0, 5)).toEqual([]);
  });
});
