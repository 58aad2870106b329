import { describe, expect, it } from 'vitest';
import { RaftInvariantError } from '../../src/raft/assert.js';
import { limitBytes } from '../../src/raft/storage.js';
import { EMPTY_HARD_STATE, type Entry } from '../../src/raft/types.js';
import { CorruptDataError, StorageFatalError } from '../../src/storage/errors.js';
import { encodeCommand } from '../../src/storage/state-machine.js';
import type { NodeStorage } from '../../src/storage/node-storage.js';
import { bytes, entriesFrom, entry, text, useStorageFixture, wrapBatches } from './helpers.js';

const fixture = useStorageFixture();

/** Payloads of growing size, so a small cache holds only the last few entries. */
function sized(i: number, t: number): string {
  return `entry ${i} of term ${t} `.padEnd(10 + (i % 7) * 10, '.');
}

function put(key: string, value: string): Uint8Array {
  return encodeCommand({ op: 'put', key: bytes(key), value: bytes(value) });
}

function del(key: string): Uint8Array {
  return encodeCommand({ op: 'delete', key: bytes(key) });
}

function expectLogEquals(storage: NodeStorage, log: readonly Entry[]): void {
  expect(storage.firstIndex()).toBe(1);
  expect(storage.lastIndex()).toBe(log.length);
  expect(storage.term(0)).toBe(0);
  for (const e of log) expect(storage.term(e.index)).toBe(e.term);
  expect(storage.entries(1, log.length + 1, Infinity)).toEqual(log);
}

describe('NodeStorage: the log and the hard state', () => {
  it('starts empty in a fresh data dir', async () => {
    const storage = await fixture.open(await fixture.tempDir());
    expect(storage.initialHardState()).toEqual(EMPTY_HARD_STATE);
    expect(storage.firstIndex()).toBe(1);
    expect(storage.lastIndex()).toBe(0);
    expect(storage.term(0)).toBe(0);
    expect(storage.entries(1, 1, 100)).toEqual([]);
    expect(storage.applied).toEqual({ index: 0, term: 0 });
    expect(storage.snapshotMeta()).toEqual({ index: 0, term: 0, voters: ['n1', 'n2', 'n3'], learners: [] });
  });

  it('round-trips the hard state and entries through a reopen, across the tail-cache boundary', async () => {
    const options = { cacheBytes: 400 };
    let storage = await fixture.open(await fixture.tempDir(), options);
    const terms = [1, 1, 1, 2, 2, 3, 3, 3, 3, 5, 5, 5, 5, 5, 5, 6, 6, 6, 6, 6];
    const log = entriesFrom(1, terms, sized);
    await storage.persist({ term: 4, vote: 'n2', commit: 0 }, log.slice(0, 8));
    await storage.persist({ term: 6, vote: 'n1', commit: 12 }, log.slice(8));
    const check = (s: NodeStorage): void => {
      expect(s.initialHardState()).toEqual({ term: 6, vote: 'n1', commit: 12 });
      expectLogEquals(s, log);
      // The small cache holds only the tail: older entries come from LevelDB.
      expect(s.stats().cachedEntries).toBeGreaterThan(0);
      expect(s.stats().cachedEntries).toBeLessThan(log.length / 2);
      expect(s.stats().termRuns).toBe(5);
      // Every window, every byte limit: the same as slicing the log in memory.
      for (let lo = 1; lo <= log.length; lo += 3) {
        for (let hi = lo; hi <= log.length + 1; hi += 4) {
          for (const maxBytes of [0, 60, 200, Infinity]) {
            expect(s.entries(lo, hi, maxBytes)).toEqual(limitBytes(log.slice(lo - 1, hi - 1), maxBytes));
          }
        }
      }
    };
    check(storage);
    storage = await fixture.reopen(storage);
    check(storage);
  });

  it('truncates a conflicting suffix in the same write, in the cache and on disk', async () => {
    let storage = await fixture.open(await fixture.tempDir(), { cacheBytes: 200 });
    const original = entriesFrom(1, [1, 1, 1, 1, 1, 1, 1, 1, 1, 1], sized);
    await storage.persist({ term: 1, vote: 'n1', commit: 3 }, original);
    // A new leader of term 2 replaces entries 6.. with two of its own.
    const replacement = entriesFrom(6, [2, 2]);
    await storage.persist({ term: 2, vote: 'n2', commit: 3 }, replacement);
    const expected = [...original.slice(0, 5), ...replacement];
    expectLogEquals(storage, expected);
    storage = await fixture.reopen(storage);
    expectLogEquals(storage, expected);
    // Truncating back into the part only LevelDB holds, then extending past the old end.
    const longer = entriesFrom(4, [3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3]);
    await storage.persist({ term: 3, vote: 'n3', commit: 3 }, longer);
    expectLogEquals(storage, [...original.slice(0, 3), ...longer]);
    storage = await fixture.reopen(storage);
    expectLogEquals(storage, [...original.slice(0, 3), ...longer]);
  });

  it('persists the hard state alone, skips empty persists, and reports each fsync to onPersist', async () => {
    const reports: { ms: number; entries: number; bytes: number }[] = [];
    let storage = await fixture.open(await fixture.tempDir(), {
      onPersist: (ms, entries, bytes) => reports.push({ ms, entries, bytes }),
    });
    await storage.persist({ term: 1, vote: 'n1', commit: 0 }, []);
    await storage.persist(null, []);
    await storage.persist(null, entriesFrom(1, [1, 1, 1]));
    expect(reports.map((r) => r.entries)).toEqual([0, 3]);
    for (const r of reports) {
      expect(r.ms).toBeGreaterThanOrEqual(0);
      expect(r.bytes).toBeGreaterThan(0);
    }
    storage = await fixture.reopen(storage, {});
    expect(storage.initialHardState()).toEqual({ term: 1, vote: 'n1', commit: 0 });
    expect(storage.lastIndex()).toBe(3);
  });

  it('fsyncs entries, term and vote, but writes a change of only the commit index without fsync', async () => {
    let storage = await fixture.open(await fixture.tempDir());
    expect(await storage.persist({ term: 1, vote: 'n1', commit: 0 }, [])).toEqual({ synced: true });
    expect(await storage.persist(null, entriesFrom(1, [1, 1]))).toEqual({ synced: true });
    expect(await storage.persist({ term: 1, vote: 'n1', commit: 2 }, [])).toEqual({ synced: false });
    expect(await storage.persist({ term: 2, vote: '', commit: 2 }, [])).toEqual({ synced: true });
    expect(await storage.persist({ term: 2, vote: 'n2', commit: 2 }, [])).toEqual({ synced: true });
    expect(await storage.persist(null, [])).toEqual({ synced: false });
    // Unsynced is still written: a clean reopen sees it.
    storage = await fixture.reopen(storage, {});
    expect(storage.initialHardState()).toEqual({ term: 2, vote: 'n2', commit: 2 });
  });

  it('refuses persists that would break the log or the hard state, and writes nothing', async () => {
    const storage = await fixture.open(await fixture.tempDir());
    await storage.persist({ term: 2, vote: 'n1', commit: 2 }, entriesFrom(1, [1, 2, 2]));
    const refused: [string, () => Promise<unknown>][] = [
      ['a gap', () => storage.persist(null, [entry(5, 2)])],
      ['overwriting a committed entry', () => storage.persist(null, [entry(2, 2)])],
      ['non-contiguous entries', () => storage.persist(null, [entry(4, 2), entry(6, 2)])],
      ['a term going down', () => storage.persist(null, [entry(4, 1)])],
      ["an entry beyond the node's term", () => storage.persist(null, [entry(4, 3)])],
      ['commit beyond the log', () => storage.persist({ term: 2, vote: 'n1', commit: 4 }, [])],
      ['commit going back', () => storage.persist({ term: 2, vote: 'n1', commit: 1 }, [])],
      ['the term going back', () => storage.persist({ term: 1, vote: 'n1', commit: 2 }, [])],
      ['a second vote in one term', () => storage.persist({ term: 2, vote: 'n3', commit: 2 }, [])],
    ];
    for (const [name, attempt] of refused) {
      await expect(attempt(), name).rejects.toThrow(RaftInvariantError);
    }
    expect(storage.initialHardState()).toEqual({ term: 2, vote: 'n1', commit: 2 });
    expect(storage.lastIndex()).toBe(3);
    // Still usable: contract violations are caught before any write.
    await storage.persist({ term: 3, vote: 'n3', commit: 3 }, [entry(4, 3)]);
    expect(storage.lastIndex()).toBe(4);
  });

  it('fails with StorageFatalError once closed', async () => {
    const storage = await fixture.open(await fixture.tempDir());
    await storage.close();
    await expect(storage.persist({ term: 1, vote: '', commit: 0 }, [])).rejects.toThrow(StorageFatalError);
    await expect(storage.applyEntries([entry(1, 1)])).rejects.toThrow(StorageFatalError);
  });
});

describe('NodeStorage: applying committed entries', () => {
  const commands = [
    entry(1, 1), // a new leader's empty entry
    entry(2, 1, put('a', '1')),
    entry(3, 1, put('b', '2')),
    entry(4, 1, del('a')),
    entry(5, 2),
    entry(6, 2, put('c', '3')),
    entry(7, 2, put('b', '22')),
    entry(8, 2, del('nothing')),
  ];

  async function committedLog(overrides = {}): Promise<NodeStorage> {
    const storage = await fixture.open(await fixture.tempDir(), overrides);
    await storage.persist({ term: 2, vote: 'n1', commit: 8 }, commands);
    return storage;
  }

  it('applies puts and deletes with the applied index in one batch, and keeps both across a reopen', async () => {
    let storage = await committedLog();
    expect(await storage.applyEntries(commands.slice(0, 4))).toEqual([
      { index: 1, term: 1, op: 'noop' },
      { index: 2, term: 1, op: 'put' },
      { index: 3, term: 1, op: 'put' },
      { index: 4, term: 1, op: 'delete' },
    ]);
    expect(storage.applied).toEqual({ index: 4, term: 1 });
    expect(text(storage.getSync(bytes('a')))).toBeUndefined();
    expect(text(storage.getSync(bytes('b')))).toBe('2');
    storage = await fixture.reopen(storage);
    expect(storage.applied).toEqual({ index: 4, term: 1 });
    expect(text(storage.getSync(bytes('b')))).toBe('2');
    const outcomes = await storage.applyEntries(commands.slice(4));
    expect(outcomes.map((o) => o.op)).toEqual(['noop', 'put', 'put', 'delete']);
    storage = await fixture.reopen(storage);
    expect(storage.applied).toEqual({ index: 8, term: 2 });
    expect((await storage.scan({ limit: 10 })).entries.map(([k, v]) => [text(k), text(v)])).toEqual([
      ['b', '22'],
      ['c', '3'],
    ]);
  });

  it('replays from applied + 1 after a restart to exactly the state of an uninterrupted node', async () => {
    const steady = await committedLog();
    await steady.applyEntries(commands);
    // The other node applied half, then "crashed" (closed) and restarted.
    let restarted = await committedLog();
    await restarted.applyEntries(commands.slice(0, 3));
    restarted = await fixture.reopen(restarted);
    const { index } = restarted.applied;
    await restarted.applyEntries(commands.slice(index));
    expect(await restarted.scan({ limit: 100 })).toEqual(await steady.scan({ limit: 100 }));
    expect(restarted.applied).toEqual(steady.applied);
    // Applying an entry twice is refused: exactly once per node.
    await expect(restarted.applyEntries(commands.slice(7))).rejects.toThrow(RaftInvariantError);
  });

  it('an apply that lands before the persist recording its commit reopens with the commit raised to it', async () => {
    // The driver applies committed entries while the next Ready (carrying the new commit) is
    // being persisted; a crash in between leaves applied > the persisted commit.
    const storage = await fixture.open(await fixture.tempDir());
    await storage.persist({ term: 2, vote: 'n1', commit: 2 }, commands.slice(0, 4));
    await storage.applyEntries(commands.slice(0, 4));
    const reopened = await fixture.reopen(storage);
    expect(reopened.applied.index).toBe(4);
    expect(reopened.initialHardState()).toEqual({ term: 2, vote: 'n1', commit: 4 });
  });

  it('refuses entries out of order, beyond the durable log, or not matching the log', async () => {
    const storage = await fixture.open(await fixture.tempDir());
    await storage.persist({ term: 2, vote: 'n1', commit: 4 }, commands.slice(0, 4));
    await expect(storage.applyEntries(commands.slice(1, 3))).rejects.toThrow(/2 given, 1 expected/);
    await expect(storage.applyEntries(commands.slice(0, 6))).rejects.toThrow(/beyond the durable log \(4\)/);
    await expect(storage.applyEntries([entry(1, 2)])).rejects.toThrow(/the log says 1/);
    expect(storage.applied).toEqual({ index: 0, term: 0 });
    expect(await storage.applyEntries([])).toEqual([]);
  });

  it('refuses an entry whose data is not a command with CorruptDataError naming the entry', async () => {
    const storage = await fixture.open(await fixture.tempDir());
    await storage.persist({ term: 1, vote: 'n1', commit: 2 }, [
      entry(1, 1, put('k', 'v')),
      entry(2, 1, 'not a command'),
    ]);
    const failure = storage.applyEntries([entry(1, 1, put('k', 'v')), entry(2, 1, 'not a command')]);
    await expect(failure).rejects.toThrow(CorruptDataError);
    await expect(failure).rejects.toThrow(/entry 2 \(term 1\)/);
    expect(storage.getSync(bytes('k'))).toBeUndefined(); // nothing of the batch was written
  });
});

describe('NodeStorage: one batch per Ready, synced whenever it changes the state machine', () => {
  /**
   * Records the options of every batch written to the storage's database, where every batch ends:
   * classic-level's `_batch` (the public `batch()` calls it too), with the sublevel of each key
   * read from its prefix (`!name!`).
   */
  function spyOnBatches(storage: NodeStorage): { sync: boolean; sublevels: string[] }[] {
    const seen: { sync: boolean; sublevels: string[] }[] = [];
    const sublevelOf = (key: Uint8Array) => /^!([^!]*)!/.exec(Buffer.from(key).toString('latin1'))?.[1] ?? '';
    wrapBatches(storage, (original) => (ops, options) => {
      seen.push({ sync: options.sync, sublevels: [...new Set(ops.map((op) => sublevelOf(op.key)))] });
      return original(ops, options);
    });
    return seen;
  }

  it('writes hard state, entries and the committed entries (arriving in the same Ready) in one synced batch', async () => {
    const storage = await fixture.open(await fixture.tempDir());
    const batches = spyOnBatches(storage);
    const log = [entry(1, 1), entry(2, 1, put('a', '1')), entry(3, 1, put('b', '2'))];
    const result = await storage.writeReady({ term: 1, vote: 'n2', commit: 3 }, log, log);
    expect(result.synced).toBe(true);
    expect(result.outcomes.map((o) => o.op)).toEqual(['noop', 'put', 'put']);
    expect(batches).toHaveLength(1);
    expect(batches[0]?.sync).toBe(true);
    const reopened = await fixture.reopen(storage);
    expect(reopened.applied).toEqual({ index: 3, term: 1 });
    expect(text(reopened.getSync(bytes('b')))).toBe('2');
  });

  it('never writes a state-machine change or the applied index without fsync (power loss must not lose an earlier apply while a later one survives)', async () => {
    const storage = await fixture.open(await fixture.tempDir());
    const batches = spyOnBatches(storage);
    const log = [entry(1, 1), entry(2, 1, put('a', '1')), entry(3, 1, del('a')), entry(4, 1, put('c', '3'))];
    await storage.persist({ term: 1, vote: 'n1', commit: 0 }, log);
    await storage.persist({ term: 1, vote: 'n1', commit: 4 }, []); // only the commit moved: unsynced is fine
    // Readies that only apply are held in memory (held-apply.test.ts), not written unsynced...
    await storage.applyEntries(log.slice(0, 2));
    await storage.writeReady(null, [], log.slice(2, 3));
    await storage.writeReady({ term: 1, vote: 'n1', commit: 4 }, [], log.slice(3));
    expect(batches).toHaveLength(2);
    // ...and written in one synced batch.
    await storage.flushHeld();
    const touchesStateMachine = batches.filter((b) => b.sublevels.some((p) => p.includes('kv') || p.includes('sm')));
    expect(touchesStateMachine).toHaveLength(1);
    for (const b of touchesStateMachine) expect(b.sync).toBe(true);
    expect(batches.filter((b) => !b.sync)).toHaveLength(1);
  });

  it('refuses to apply an entry that neither the log nor the batch holds', async () => {
    const storage = await fixture.open(await fixture.tempDir());
    await storage.persist({ term: 1, vote: 'n1', commit: 0 }, [entry(1, 1)]);
    await expect(storage.writeReady(null, [], [entry(1, 1), entry(2, 1)])).rejects.toThrow(/beyond the durable log/);
    await expect(storage.writeReady(null, [entry(2, 1)], [entry(1, 1), entry(2, 2)])).rejects.toThrow(/the log says 1/);
    expect(storage.applied).toEqual({ index: 0, term: 0 });
  });
});

describe('NodeStorage: entries for a follower far behind are loaded off the loop', () => {
  it('answers from the tail cache at once; older entries come from a background load, then from memory', async () => {
    const storage = await fixture.open(await fixture.tempDir(), { cacheBytes: 4000, readAheadBytes: 3000 });
    const log = entriesFrom(
      1,
      Array.from({ length: 300 }, () => 1),
      sized,
    );
    await storage.persist({ term: 1, vote: 'n1', commit: 0 }, log);
    let loaded = 0;
    storage.setLoadListener({ loaded: () => loaded++, failed: (error) => expect.fail(String(error)) });
    // Recent entries: in the cache.
    expect(storage.entriesToSend(295, 301, Infinity)).toEqual(log.slice(294));
    // Old ones: not yet.
    expect(storage.entriesToSend(10, 301, 500)).toBeNull();
    expect(storage.entriesToSend(10, 301, 500)).toBeNull(); // one load, not two
    await waitUntil(() => loaded === 1);
    const first = storage.entriesToSend(10, 301, 500);
    expect(first).not.toBeNull();
    expect(first).toEqual(storage.entries(10, 301, 500));
    // Walking forward through the segment loads the next one ahead.
    let next = 10 + first!.length;
    for (let guard = 0; next < 200 && guard < 1000; guard++) {
      const got = storage.entriesToSend(next, 301, 500);
      if (got === null) {
        await new Promise((r) => setTimeout(r, 1));
        continue;
      }
      expect(got).toEqual(storage.entries(next, next + got.length, Infinity));
      next += got.length;
    }
    expect(next).toBeGreaterThanOrEqual(200);
    expect(loaded).toBeGreaterThan(1);
  });

  it('drops what it loaded for entries a later persist replaced', async () => {
    const storage = await fixture.open(await fixture.tempDir(), { cacheBytes: 2000 });
    await storage.persist(
      { term: 2, vote: 'n1', commit: 0 },
      entriesFrom(
        1,
        Array.from({ length: 100 }, () => 1),
        sized,
      ),
    );
    let loaded = 0;
    storage.setLoadListener({ loaded: () => loaded++, failed: (error) => expect.fail(String(error)) });
    expect(storage.entriesToSend(20, 101, Infinity)).toBeNull();
    await waitUntil(() => loaded === 1);
    // A new leader replaces entries from 30 on.
    const replacement = entriesFrom(30, [2, 2, 2], (i) => `new ${i}`);
    await storage.persist(null, replacement);
    const got = storage.entriesToSend(20, storage.lastIndex() + 1, Infinity);
    expect(got).not.toBeNull();
    expect(got!.at(-1)!.index).toBeLessThan(30); // nothing of the replaced suffix
    expect(got).toEqual(storage.entries(20, 20 + got!.length, Infinity));
  });
});

async function waitUntil(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}
