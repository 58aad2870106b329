// A multi-key read sees a batch whole or not at all. A Ready's batch lands on a libuv thread while
// the main thread (or a pool worker) reads key after key; without one LevelDB snapshot for the
// whole read, a batch that lands between two keys' reads shows half of its writes (half of a
// transaction). Each round below makes that happen every time, not by chance: the round's batch
// (both keys set to the round's number) is held back until the read's first `getSync` has
// returned, then handed to LevelDB, and the main thread waits until it is visible before the read
// goes on to the second key.
import { describe, expect, it } from 'vitest';
import type { Entry } from '../../src/raft/types.js';
import { getManyQuery } from '../../src/reads/queries.js';
import { encodeCommand } from '../../src/storage/command.js';
import { bytes, entry, useStorageFixture, wrapBatches } from '../storage/helpers.js';

const fixture = useStorageFixture();
const ROUNDS = 5;
/** How long the held read waits for the batch to land, at most (it lands in milliseconds). */
const LANDING_DEADLINE_MS = 5000;

/** getSync as the test calls it: a key and, from getManyQuery, its snapshot options. */
type GetSync = (key: Uint8Array, options?: object) => Uint8Array | undefined;

const same = (a: Uint8Array | undefined, b: Uint8Array | undefined): boolean =>
  a === undefined || b === undefined ? a === b : Buffer.compare(a, b) === 0;

describe('getManyQuery', () => {
  it('never shows half of a batch that lands between two keys of its read', async () => {
    const storage = await fixture.open(await fixture.tempDir());
    const keys = [bytes('a'), bytes('b')] as const;
    const bounds = { maxResponseBytes: 1 << 20, inlineBudget: Infinity };
    const values = (json: Uint8Array): (string | null)[] =>
      (JSON.parse(Buffer.from(json).toString()) as { items: { value: string | null }[] }).items.map((i) => i.value);
    /** Hands the held batch to LevelDB; set when a batch is held back. */
    let release: (() => void) | undefined;
    const pendingRelease = (): (() => void) | undefined => release;
    wrapBatches(
      storage,
      (original) => (ops, options) =>
        new Promise<void>((resolve, reject) => {
          release = () => void original(ops, options).then(resolve, reject);
        }),
    );

    for (let round = 1; round <= ROUNDS; round++) {
      const first = storage.lastIndex() + 1;
      const entries: Entry[] = ['a', 'b'].map((key, i) =>
        entry(first + i, 1, encodeCommand({ op: 'put', key: bytes(key), value: bytes(String(round)) })),
      );
      const read = await storage.beginRead();
      const kv = read.kv;
      const plainGet: GetSync = (kv.getSync as GetSync).bind(kv);
      const before = plainGet(keys[1]);
      release = undefined;
      const landing = storage.writeReady({ term: 1, vote: 'n1', commit: first + 1 }, entries, entries);
      // The batch reaches LevelDB's write a few microtasks later: wait until it is held there.
      for (let turns = 0; pendingRelease() === undefined && turns < 1000; turns++) await Promise.resolve();
      const releaseBatch = pendingRelease();
      if (releaseBatch === undefined) throw new Error(`round ${round}: the batch was never written`);
      let landed = false;
      let calls = 0;
      // An own property over the prototype's method, for this read only (deleted below).
      const heldGet: GetSync = (key, options) => {
        const value = plainGet(key, options);
        if (++calls === 1) {
          // Between the two keys: let the batch go, and hold this thread until it shows (LevelDB
          // writes it on its own thread).
          releaseBatch();
          const deadline = performance.now() + LANDING_DEADLINE_MS;
          while (!landed && performance.now() < deadline) landed = !same(plainGet(keys[1]), before);
        }
        return value;
      };
      Object.defineProperty(kv, 'getSync', { value: heldGet, configurable: true, writable: true });
      let outcome: ReturnType<typeof getManyQuery>;
      try {
        outcome = getManyQuery(kv, keys, bounds);
      } finally {
        delete (kv as { getSync?: unknown }).getSync;
        read.end();
        // A read that never came through the instance's getSync never let the batch go: let it go
        // here, so the round fails on the expectation below instead of hanging on `landing`.
        if (calls === 0) releaseBatch();
      }
      await landing;
      expect(calls, `round ${round}: the read did not go through getSync`).toBe(keys.length);
      expect(landed, `round ${round}: the batch did not land within ${LANDING_DEADLINE_MS} ms`).toBe(true);
      if (!('json' in outcome)) throw new Error('unexpected outcome');
      // Both keys as they were before the batch, which landed after the read began.
      const previous = round === 1 ? null : String(round - 1);
      expect(values(outcome.json), `round ${round}`).toEqual([previous, previous]);
      const after = getManyQuery(kv, keys, bounds);
      if (!('json' in after)) throw new Error('unexpected outcome');
      expect(values(after.json)).toEqual([String(round), String(round)]);
    }
  });
});
