// NodeStorage with the Raft log in segment files (logInFiles, format 4; docs/log-file-proposal.md):
// what a reopen and a crash leave, installs and compaction through the files, the writes that may
// not wait for a flush (membership), catch-up reads of entries older than the tail cache, and a
// flush that fails. The held-apply model test (held-apply-model.test.ts) runs in this mode too.
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { EntryType, type Entry, type SnapshotMeta } from '../../src/raft/types.js';
import { LOG_FILES_DIR } from '../../src/storage/codec.js';
import { StorageFatalError } from '../../src/storage/errors.js';
import { SegmentFiles } from '../../src/storage/log-file/segment-files.js';
import { encodeMemberChange } from '../../src/storage/members.js';
import type { NodeStorage, NodeStorageOptions } from '../../src/storage/node-storage.js';
import { encodeCommand } from '../../src/storage/state-machine.js';
import { allPairs, bytes, entry, readSnapshot, text, useStorageFixture, wrapBatches } from './helpers.js';

const fixture = useStorageFixture();
const VOTERS = ['n1', 'n2', 'n3'];
/** Small segments, so that a test crosses several. */
const FILES: Partial<NodeStorageOptions> = { logInFiles: true, segmentBytes: 16 * 1024, flushAfterMs: 60_000 };

afterEach(() => {
  vi.restoreAllMocks();
});

function put(key: string, value: string): Uint8Array {
  return encodeCommand({ op: 'put', key: bytes(key), value: bytes(value) });
}

function puts(count: number, from = 1, term = 1): Entry[] {
  return Array.from({ length: count }, (_, i) => entry(from + i, term, put(`k${from + i}`, `v${from + i}`)));
}

async function open(options: Partial<NodeStorageOptions> = {}, dir?: string): Promise<NodeStorage> {
  return fixture.open(dir ?? (await fixture.tempDir()), { ...FILES, ...options });
}

/** A copy of `storage`'s data dir as a crash would leave it now (no flush in flight), opened. */
async function crashImage(storage: NodeStorage, options: Partial<NodeStorageOptions> = {}): Promise<NodeStorage> {
  await storage.flushesIdle();
  const copy = path.join(await fixture.tempDir(), 'crashed');
  await fs.cp(storage.location, copy, { recursive: true });
  return open(options, copy);
}

async function segmentCount(storage: NodeStorage): Promise<number> {
  return (await fs.readdir(path.join(storage.location, LOG_FILES_DIR))).filter((n) => n.endsWith('.seg')).length;
}

describe('NodeStorage with the log in files', () => {
  it('keeps the term, vote and entries across a reopen; the commit comes back at the applied index', async () => {
    const storage = await open();
    expect(storage.logInFiles).toBe(true);
    const log = puts(40);
    await storage.writeReady({ term: 3, vote: 'n2', commit: 30 }, log, log.slice(0, 30));
    // Held, not written: a reopen after a flush finds the applies; the commit is not written at all.
    await storage.flushHeld();
    const again = await fixture.reopen(storage);
    expect(again.initialHardState()).toEqual({ term: 3, vote: 'n2', commit: 30 });
    expect(again.applied).toEqual({ index: 30, term: 1 });
    expect(again.entries(1, 41, Infinity).map((e) => e.index)).toEqual(log.map((e) => e.index));
    expect(text(again.getSync(bytes('k30')))).toBe('v30');
    expect(again.getSync(bytes('k31'))).toBeUndefined();
  });

  it('a crash loses the applies held since the last flush, never an entry or a vote, and the replay brings them back', async () => {
    const storage = await open();
    const first = puts(10);
    await storage.writeReady({ term: 2, vote: 'n1', commit: 10 }, first, first);
    await storage.flushHeld();
    const second = puts(10, 11, 2);
    await storage.writeReady({ term: 2, vote: 'n1', commit: 20 }, second, second);
    expect(text(storage.getSync(bytes('k20')))).toBe('v20');
    const image = await crashImage(storage);
    expect(image.initialHardState()).toMatchObject({ term: 2, vote: 'n1' });
    expect(image.applied.index).toBe(10);
    expect(image.lastIndex()).toBe(20);
    expect(image.getSync(bytes('k20'))).toBeUndefined();
    await image.writeReady({ term: 2, vote: 'n1', commit: 20 }, [], image.entries(11, 21, Infinity));
    expect(text(image.getSync(bytes('k20')))).toBe('v20');
  });

  it('a membership change is written with what is held before the Ready answers, so a crash after it keeps it', async () => {
    const storage = await open();
    const log = [
      ...puts(3),
      {
        index: 4,
        term: 1,
        type: EntryType.ConfChange,
        data: encodeMemberChange({ type: 'addLearner', node: 'n4', clientUrl: 'http://a', peerUrl: 'http://b' }),
      },
    ];
    await storage.writeReady({ term: 1, vote: 'n1', commit: 4 }, log, log);
    const image = await crashImage(storage);
    expect(image.applied.index).toBe(4);
    expect(image.membership.members.map((m) => m.id)).toContain('n4');
    expect(text(image.getSync(bytes('k3')))).toBe('v3');
  });

  it('compaction deletes whole segments behind the durable applied index, and a reopen starts at the oldest kept', async () => {
    const storage = await open({ segmentBytes: 8 * 1024 });
    for (let from = 1; from <= 1200; from += 20) {
      const log = puts(20, from);
      await storage.writeReady({ term: 1, vote: 'n1', commit: from + 19 }, log, log);
    }
    const before = await segmentCount(storage);
    expect(before).toBeGreaterThan(4);
    await storage.compactLog(1190);
    expect(storage.firstIndex()).toBe(1191);
    // The deletion runs in the background; a reopen waits for it (close settles it).
    const again = await fixture.reopen(storage);
    expect(await segmentCount(again)).toBeLessThanOrEqual(2);
    expect(again.firstIndex()).toBeLessThanOrEqual(1191);
    expect(again.applied).toEqual({ index: 1200, term: 1 });
    expect(again.entries(1191, 1201, Infinity)).toHaveLength(10);
    expect(text(again.getSync(bytes('k1')))).toBe('v1');
    expect(again.latestSnapshot()).toMatchObject({ index: 1200, term: 1 });
  });

  it('a follower far behind is sent entries older than the tail cache, read from the files off the loop', async () => {
    const storage = await open({ cacheBytes: 2_000 });
    for (let from = 1; from <= 200; from += 20) {
      const log = puts(20, from);
      await storage.writeReady({ term: 1, vote: 'n1', commit: from + 19 }, log, log);
    }
    let loaded = 0;
    storage.setLoadListener({ loaded: () => loaded++, failed: (error) => expect.fail(error.message) });
    expect(storage.entriesToSend(5, 50, 1 << 20)).toBeNull();
    await vi.waitFor(() => expect(loaded).toBeGreaterThan(0), { timeout: 5_000 });
    const sent = storage.entriesToSend(5, 50, 1 << 20);
    expect(sent?.map((e) => e.index)).toEqual(Array.from({ length: 45 }, (_, i) => 5 + i));
    // The core's synchronous read of old entries gives the same, unit by unit.
    expect(storage.entries(5, 50, 1 << 20)).toEqual(sent);
    expect(storage.entries(5, 50, 300).length).toBeLessThan(45);
  });

  it('installs a snapshot: the state machine switches and the log starts over after it, across a reopen', async () => {
    const leader = await open();
    const log = puts(50);
    await leader.writeReady({ term: 1, vote: 'n1', commit: 50 }, log, log);
    const follower = await open({ nodeId: 'n2' });
    const own = puts(5, 1, 1).map((e) => ({ ...e, data: put(`own${e.index}`, 'x') }));
    await follower.writeReady({ term: 1, vote: 'n1', commit: 2 }, own, own.slice(0, 2));
    const meta = await transfer(leader, follower);
    const next = puts(2, 51, 2);
    await follower.writeReady({ term: 2, vote: 'n3', commit: 50 }, next, [], meta);
    expect(follower.firstIndex()).toBe(51);
    expect(follower.lastIndex()).toBe(52);
    const again = await fixture.reopen(follower);
    expect(again.initialHardState()).toMatchObject({ term: 2, vote: 'n3' });
    expect(again.firstIndex()).toBe(51);
    expect(again.entries(51, 53, Infinity).map((e) => e.term)).toEqual([2, 2]);
    expect(await allPairs(again)).toEqual(await allPairs(leader));
  });

  it('a crash after the state machine switched and before the log started over: open starts it over after the snapshot', async () => {
    const leader = await open();
    const log = puts(30);
    await leader.writeReady({ term: 1, vote: 'n1', commit: 30 }, log, log);
    const follower = await open({ nodeId: 'n2' });
    const own = puts(5).map((e) => ({ ...e, data: put(`own${e.index}`, 'x') }));
    await follower.writeReady({ term: 1, vote: 'n1', commit: 1 }, own, own.slice(0, 1));
    const meta = await transfer(leader, follower);
    // The new segment's write fails: the store is failed from there on, as after a crash.
    vi.spyOn(SegmentFiles.prototype, 'startSegment').mockRejectedValueOnce(new Error('power lost'));
    await expect(follower.writeReady({ term: 2, vote: 'n3', commit: 30 }, [], [], meta)).rejects.toThrow(/power lost/);
    const again = await fixture.reopen(follower);
    // The term and vote were written before the switch; the old entries 1..5 are gone.
    expect(again.initialHardState()).toMatchObject({ term: 2, vote: 'n3', commit: 30 });
    expect(again.firstIndex()).toBe(31);
    expect(again.lastIndex()).toBe(30);
    expect(again.applied).toEqual({ index: 30, term: 1 });
    expect(await allPairs(again)).toEqual(await allPairs(leader));
  });

  it("an install's term and vote reach the files before the state machine switches: a crash at either write leaves a dir that opens", async () => {
    for (const failing of ['append', 'startSegment'] as const) {
      const leader = await open();
      const log = puts(30, 1, 2);
      await leader.writeReady({ term: 2, vote: 'n1', commit: 30 }, log, log);
      const follower = await open({ nodeId: 'n2' });
      const own = puts(3).map((e) => ({ ...e, data: put(`own${e.index}`, 'x') }));
      await follower.writeReady({ term: 1, vote: 'n1', commit: 1 }, own, own.slice(0, 1));
      await follower.flushHeld();
      const meta = await transfer(leader, follower);
      // The install Ready brings term 2: the snapshot's term is beyond the follower's.
      vi.spyOn(SegmentFiles.prototype, failing).mockRejectedValueOnce(new Error('power lost'));
      await expect(follower.writeReady({ term: 2, vote: 'n1', commit: 30 }, [], [], meta)).rejects.toThrow(
        /power lost/,
      );
      vi.restoreAllMocks();
      const again = await fixture.reopen(follower);
      expect(again.initialHardState().term).toBeGreaterThanOrEqual(again.applied.term);
      // Before the switch: the old state; after it: the snapshot's.
      expect(again.applied).toEqual(failing === 'append' ? { index: 1, term: 1 } : { index: 30, term: 2 });
    }
  });

  it('refuses to open a dir of this format whose log directory is gone', async () => {
    const storage = await open();
    await storage.writeReady({ term: 2, vote: 'n2', commit: 0 }, puts(3), []);
    await storage.close();
    await fs.rm(path.join(storage.location, LOG_FILES_DIR), { recursive: true });
    await expect(open({}, storage.location)).rejects.toThrow(
      /holds no log segment: this node's log, term and vote are lost/,
    );
  });

  it('a flush that fails marks the store failed and reaches the driver; nothing is written after it', async () => {
    const storage = await open({ flushAfterMs: 0 });
    const failures: Error[] = [];
    storage.setLoadListener({ loaded: () => undefined, failed: (error) => failures.push(error) });
    wrapBatches(storage, () => () => Promise.reject(new Error('disk gone')));
    const log = puts(3);
    // The append lands (files), the apply is held, and the flush beside it fails.
    await storage.writeReady({ term: 1, vote: 'n1', commit: 3 }, log, log);
    await storage.flushesIdle();
    await vi.waitFor(() => expect(failures).toHaveLength(1), { timeout: 5_000 });
    expect(failures[0]).toBeInstanceOf(StorageFatalError);
    await expect(storage.writeReady(null, puts(1, 4), [])).rejects.toThrow(/refused|unknown state/);
  });
});

/** Sends `from`'s state to `to` as the driver does: stage every pair, complete. */
async function transfer(from: NodeStorage, to: NodeStorage): Promise<SnapshotMeta> {
  const staging = await to.beginStaging();
  const source = await readSnapshot(from, 1000, (pairs) => staging.write(pairs));
  const meta = { index: source.index, term: source.term, voters: VOTERS };
  staging.complete(meta, source.membership);
  return meta;
}
