// A Ready that only applies entries is held in memory (NodeStorage.writeReady): no batch is written
// for it, every read sees its changes, the next synced batch carries them ahead of its own, and a
// crash loses exactly them, so replaying the log from the stored applied index answers the same.
// A crash is a copy of the data dir taken while the storage is open: what the OS was given, no more.
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Entry } from '../../src/raft/types.js';
import { encodeCommand, type Command } from '../../src/storage/command.js';
import { StorageFatalError } from '../../src/storage/errors.js';
import { decodeStored } from '../../src/storage/key-meta.js';
import type { NodeStorage } from '../../src/storage/node-storage.js';
import { bytes, entry, text, useStorageFixture, wrapBatches } from './helpers.js';

const fixture = useStorageFixture();

const put = (key: string, value: string): Command => ({ op: 'put', key: bytes(key), value: bytes(value) });
const putIf = (key: string, value: string, modIndex: number): Command => ({
  op: 'request',
  request: { kind: 'put', key: bytes(key), value: bytes(value), condition: { modIndex } },
});

/** Persists `commands` as entries after the log's end (one synced Ready), applying nothing. */
async function append(storage: NodeStorage, commands: readonly Command[]): Promise<Entry[]> {
  const first = storage.lastIndex() + 1;
  const entries = commands.map((c, i) => entry(first + i, 1, encodeCommand(c)));
  await storage.writeReady({ term: 1, vote: 'n1', commit: 0 }, entries, []);
  return entries;
}

/** Counts the batches written to LevelDB, and whether each was synced. */
function spyOnBatches(storage: NodeStorage): { sync: boolean; ops: number }[] {
  const seen: { sync: boolean; ops: number }[] = [];
  wrapBatches(storage, (original) => (ops, options) => {
    seen.push({ sync: options.sync, ops: ops.length });
    return original(ops, options);
  });
  return seen;
}

/** What a crash of the process would leave: a copy of the data dir as the OS has it now. */
async function crashImage(storage: NodeStorage): Promise<string> {
  const copy = path.join(await fixture.tempDir(), 'crashed');
  await fs.cp(storage.location, copy, { recursive: true });
  return copy;
}

describe('NodeStorage: a Ready that only applies is held in memory', () => {
  it('writes nothing for it, yet every read and the next apply see it; the next synced batch carries it first', async () => {
    const storage = await fixture.open(await fixture.tempDir());
    const [e1, e2, e3] = await append(storage, [put('k', 'a'), put('k', 'b'), put('j', 'x')]);
    const batches = spyOnBatches(storage);

    const held = await storage.writeReady({ term: 1, vote: 'n1', commit: 2 }, [], [e1!, e2!]);
    expect(held.synced).toBe(false);
    expect(batches).toEqual([]);
    expect(storage.applied).toEqual({ index: 2, term: 1 });
    expect(storage.getEntrySync(bytes('k'))).toEqual({
      value: bytes('b'),
      meta: { createIndex: 1, modIndex: 2, version: 2 },
    });

    // The next Ready persists an entry: one synced batch, the held operations first. The applied
    // entry sees the held version of `k` (version 3, not 1).
    const [e4] = [entry(4, 1, encodeCommand(put('k', 'c')))];
    await storage.writeReady({ term: 1, vote: 'n1', commit: 4 }, [e4!], [e3!, e4!]);
    expect(batches).toHaveLength(1);
    expect(batches[0]?.sync).toBe(true);
    expect(storage.getEntrySync(bytes('k'))?.meta).toEqual({ createIndex: 1, modIndex: 4, version: 3 });

    const image = await fixture.open(await crashImage(storage));
    expect(image.applied).toEqual({ index: 4, term: 1 });
    expect(text(image.getSync(bytes('k')))).toBe('c');
    expect(text(image.getSync(bytes('j')))).toBe('x');
  });

  it('while a batch that carries held changes is written, a read sees the state after the whole batch', async () => {
    const storage = await fixture.open(await fixture.tempDir());
    const [e1, e2, e3] = await append(storage, [put('k', 'v1'), put('k', 'v2'), put('j', 'x')]);
    await storage.applyEntries([e1!]); // held: k = v1
    // LevelDB shows a batch to getSync before its callback runs: keep the callback waiting after
    // the real write, and read in between (review of this change: k answered v1 next to j = x).
    let written = false;
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    wrapBatches(storage, (original) => async (ops, options) => {
      await original(ops, options);
      written = true;
      await released;
    });
    const e4 = entry(4, 1, encodeCommand(put('z', 'z')));
    const writing = storage.writeReady({ term: 1, vote: 'n1', commit: 4 }, [e4], [e2!, e3!]);
    try {
      for (let turns = 0; !written && turns < 10_000; turns++) await new Promise((resolve) => setImmediate(resolve));
      expect(written).toBe(true);
      expect(text(storage.getSync(bytes('j')))).toBe('x');
      expect(text(storage.getSync(bytes('k')))).toBe('v2');
    } finally {
      release();
      await writing;
    }
    expect(text(storage.getSync(bytes('k')))).toBe('v2');
    expect(storage.heldStamp).toBeNull();
  });

  it('a crash loses exactly what is held: the replay from the stored applied index answers the same', async () => {
    const storage = await fixture.open(await fixture.tempDir());
    const entries = await append(storage, [put('k', 'a'), putIf('k', 'b', 1), putIf('k', 'c', 1)]);
    const first = await storage.applyEntries(entries.slice(0, 1));
    const rest = await storage.applyEntries(entries.slice(1));
    expect(rest.map((o) => (o.op === 'request' ? o.answer.kind === 'applied' && o.answer.result.kind : o.op))).toEqual([
      'written',
      'failed',
    ]);

    const image = await fixture.open(await crashImage(storage));
    expect(image.applied).toEqual({ index: 0, term: 0 });
    expect(image.getSync(bytes('k'))).toBeUndefined();
    expect(image.lastIndex()).toBe(3);
    // The driver replays committed entries from applied + 1: the same answers, the same state.
    expect(await image.applyEntries(entries.slice(0, 1))).toEqual(first);
    expect(await image.applyEntries(entries.slice(1))).toEqual(rest);
    expect(image.getEntrySync(bytes('k'))).toEqual(storage.getEntrySync(bytes('k')));
  });

  it('reads of LevelDB itself (scan, the read pool, a snapshot to send) write what is held first', async () => {
    const storage = await fixture.open(await fixture.tempDir());
    const entries = await append(storage, [put('a', '1'), put('b', '2'), put('c', '3')]);
    const batches = spyOnBatches(storage);

    await storage.applyEntries(entries.slice(0, 1));
    expect((await storage.scan({ limit: 10 })).entries.map(([k]) => text(k))).toEqual(['a']);
    expect(batches).toEqual([{ sync: true, ops: expect.any(Number) }]);

    await storage.applyEntries(entries.slice(1, 2));
    const read = await storage.beginRead();
    try {
      const stored = read.kv.getSync(bytes('b'));
      expect(stored && text(decodeStored(stored).value)).toBe('2');
    } finally {
      read.end();
    }

    await storage.applyEntries(entries.slice(2));
    const source = await storage.openSnapshotSource();
    try {
      expect(source.index).toBe(3);
      expect((await source.next(1 << 20))?.length).toBe(3);
    } finally {
      await source.close();
    }
    expect(batches.map((b) => b.sync)).toEqual([true, true, true]);
    // Nothing held, nothing to write.
    await storage.flushHeld();
    expect(batches).toHaveLength(3);
  });

  it('compaction writes what is held before it records the snapshot point', async () => {
    const storage = await fixture.open(await fixture.tempDir());
    const entries = await append(storage, [put('a', '1'), put('b', '2'), put('c', '3')]);
    await storage.applyEntries(entries);
    const batches = spyOnBatches(storage);
    await storage.compactLog(2);
    expect(storage.heldStamp).toBeNull();
    // The held apply (3 puts and the applied index), then the snapshot point and the log start.
    expect(batches.slice(0, 2)).toEqual([
      { sync: true, ops: 4 },
      { sync: true, ops: expect.any(Number) },
    ]);
    expect(storage.latestSnapshot().index).toBe(3);
    const reopened = await fixture.reopen(storage);
    expect(reopened.applied).toEqual({ index: 3, term: 1 });
  });

  it('holds at most its bounds: a larger Ready is written, synced, with everything held', async () => {
    const storage = await fixture.open(await fixture.tempDir());
    const entries = await append(
      storage,
      Array.from({ length: 4500 }, (_, i) => put(`key-${i}`, 'v')),
    );
    const batches = spyOnBatches(storage);
    expect((await storage.writeReady(null, [], entries.slice(0, 1000))).synced).toBe(false);
    expect(storage.heldStamp).not.toBeNull();
    // 1,001 operations held and 3,501 more would pass 4,096.
    expect((await storage.writeReady(null, [], entries.slice(1000))).synced).toBe(true);
    expect(batches).toEqual([{ sync: true, ops: 4502 }]);
    expect(storage.heldStamp).toBeNull();
  });

  it('a clean close writes what is held', async () => {
    const storage = await fixture.open(await fixture.tempDir());
    const entries = await append(storage, [put('a', '1')]);
    await storage.applyEntries(entries);
    const reopened = await fixture.reopen(storage);
    expect(reopened.applied).toEqual({ index: 1, term: 1 });
    expect(text(reopened.getSync(bytes('a')))).toBe('1');
  });

  it('a write queued behind a failed one refuses and writes nothing, the held changes included', async () => {
    const storage = await fixture.open(await fixture.tempDir());
    const [e1, e2] = await append(storage, [put('k', 'a'), put('j', 'b')]);
    await storage.writeReady({ term: 1, vote: 'n1', commit: 1 }, [], [e1!]);
    expect(storage.heldStamp).not.toBeNull();
    const tried: number[] = [];
    let fail!: (error: Error) => void;
    const failing = new Promise<void>((_, reject) => (fail = reject));
    wrapBatches(storage, (original) => (ops, options) => {
      tried.push(ops.length);
      return tried.length === 1 ? failing : original(ops, options);
    });
    const e3 = entry(3, 1, encodeCommand(put('z', 'z')));
    const first = storage.writeReady({ term: 1, vote: 'n1', commit: 2 }, [e3], [e2!]);
    // Queued while the first is still being written: they wait for it, then must not run.
    const queued = storage.writeReady({ term: 1, vote: 'n1', commit: 1 }, [e3], []);
    const flush = storage.flushHeld();
    // Every expectation is made before the failure, so no rejection is ever without a handler.
    const refusals = Promise.all([
      expect(first).rejects.toThrow(StorageFatalError),
      expect(first).rejects.toThrow(/disk on fire/),
      expect(queued).rejects.toThrow(/write refused: an earlier storage operation failed/),
      expect(flush).rejects.toThrow(StorageFatalError),
    ]);
    fail(new Error('disk on fire'));
    await refusals;
    expect(tried).toHaveLength(1);
    await expect(storage.writeReady({ term: 1, vote: 'n1', commit: 1 }, [e3], [])).rejects.toThrow(
      /writeReady refused/,
    );
  });
});
