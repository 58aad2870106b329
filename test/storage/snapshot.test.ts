// Log compaction, snapshot sources and snapshot installs in NodeStorage: what a follower far behind
// receives, and what a crash at any moment leaves on disk (the old state or the complete new one).
import { decodeStored } from '../../src/storage/key-meta.js';
import { describe, expect, it } from 'vitest';
import type { Entry, SnapshotMeta } from '../../src/raft/types.js';
import type { NodeStorage, SnapshotStaging } from '../../src/storage/node-storage.js';
import { encodeCommand } from '../../src/storage/state-machine.js';
import {
  allPairs,
  bytes,
  entry,
  rawLogKey,
  readSnapshot,
  text,
  useStorageFixture,
  withRawSublevel,
  wrapBatches,
  wrapCompactRange,
  wrapDatabase,
} from './helpers.js';

const fixture = useStorageFixture();
const VOTERS = ['n1', 'n2', 'n3'];

function put(key: string, value: string): Uint8Array {
  return encodeCommand({ op: 'put', key: bytes(key), value: bytes(value) });
}

/** Entries 1..count of term 1 putting k<i> = v<i>. */
function puts(count: number, from = 1, term = 1): Entry[] {
  return Array.from({ length: count }, (_, i) => entry(from + i, term, put(`k${from + i}`, `v${from + i}`)));
}

async function storageWith(count: number, options = {}): Promise<NodeStorage> {
  const storage = await fixture.open(await fixture.tempDir(), options);
  const log = puts(count);
  await storage.writeReady({ term: 1, vote: 'n1', commit: count }, log, log);
  return storage;
}

/** Whether `promise` settles within `ms` (a deadline for a wait that must not end, not a sleep to hope on). */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([
      promise.then(
        () => true,
        () => true,
      ),
      deadline,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Sends `from`'s state to `to` as the driver does: stage every pair, complete, install. */
async function transfer(from: NodeStorage, to: NodeStorage, pairBytes = 100): Promise<SnapshotMeta> {
  return stageAll(from, await to.beginStaging(), pairBytes);
}

/** Writes every pair of `from`'s state into `staging`, in chunks of about `pairBytes`, and completes it. */
async function stageAll(from: NodeStorage, staging: SnapshotStaging, pairBytes = 100): Promise<SnapshotMeta> {
  const source = await readSnapshot(from, pairBytes, (pairs) => staging.write(pairs));
  const meta = { index: source.index, term: source.term, voters: VOTERS };
  staging.complete(meta, source.membership);
  return meta;
}

/** Installs the snapshot `meta` staged on `follower`, as the Ready that takes it does, and expects `leader`'s state. */
async function installAndMatch(follower: NodeStorage, leader: NodeStorage, meta: SnapshotMeta): Promise<void> {
  await follower.writeReady({ term: 1, vote: 'n1', commit: meta.index }, [], [], meta);
  expect(await allPairs(follower)).toEqual(await allPairs(leader));
}

/** A staging begun on `follower` with one pair, `older`, written: the abandoned transfer of several tests. */
async function stagedOlder(follower: NodeStorage): Promise<SnapshotStaging> {
  const staging = await follower.beginStaging();
  await staging.write([[bytes('older'), Uint8Array.of(1, 1, 1, 0x61)]]);
  return staging;
}

describe('NodeStorage: compaction', () => {
  it('records a snapshot point and starts the log after the compaction index; a reopen reads only the retained log', async () => {
    let storage = await storageWith(100, { cacheBytes: 500 });
    await storage.compactLog(60);
    expect(storage.firstIndex()).toBe(61);
    expect(storage.term(60)).toBe(1);
    expect(storage.snapshotMeta()).toEqual({ index: 60, term: 1, voters: VOTERS, learners: [] });
    expect(storage.latestSnapshot()).toEqual({ index: 100, term: 1, voters: VOTERS, learners: [] });
    expect(storage.entries(61, 101, Infinity)).toEqual(puts(40, 61));
    storage = await fixture.reopen(storage);
    expect(storage.firstIndex()).toBe(61);
    expect(storage.lastIndex()).toBe(100);
    expect(storage.latestSnapshot().index).toBe(100);
    expect(storage.applied).toEqual({ index: 100, term: 1 });
    expect(text(storage.getSync(bytes('k7')))).toBe('v7');
    const dir = storage.location;
    await storage.close();
    await withRawSublevel(dir, 'log', async (log) => {
      expect(log.getSync(rawLogKey(60))).toBeUndefined();
      expect(log.getSync(rawLogKey(61))).toBeDefined();
    });
  });

  it('never compacts beyond the applied index', async () => {
    const storage = await fixture.open(await fixture.tempDir());
    const log = puts(10);
    await storage.writeReady({ term: 1, vote: 'n1', commit: 10 }, log, log.slice(0, 5));
    await expect(storage.compactLog(6)).rejects.toThrow(/beyond the applied index 5/);
    await storage.compactLog(5);
    expect(storage.firstIndex()).toBe(6);
  });

  it('entries a crash left below the log start are ignored on open and deleted', async () => {
    const storage = await storageWith(20);
    await storage.compactLog(10);
    const dir = storage.location;
    await storage.close();
    // As if the background delete never ran.
    await withRawSublevel(dir, 'log', async (log, db) => {
      const { encodeLogValue } = await import('../../src/storage/codec.js');
      await db.batch([
        { type: 'put', sublevel: log, key: rawLogKey(3), value: encodeLogValue(entry(3, 1, put('k3', 'v3'))) },
      ]);
    });
    const reopened = await fixture.open(dir);
    expect(reopened.firstIndex()).toBe(11);
    await reopened.close();
    await withRawSublevel(dir, 'log', async (log) => expect(log.getSync(rawLogKey(3))).toBeUndefined());
  });
});

describe('NodeStorage: snapshot transfer and install', () => {
  it('a snapshot source is a consistent view: the applied index and the pairs agree, whatever is applied after it opened', async () => {
    const storage = await fixture.open(await fixture.tempDir());
    const log = puts(20);
    await storage.writeReady({ term: 1, vote: 'n1', commit: 20 }, log, log.slice(0, 10));
    const source = await storage.openSnapshotSource();
    await storage.applyEntries(log.slice(10));
    const seen: string[] = [];
    for (let pairs = await source.next(50); pairs !== null; pairs = await source.next(50))
      for (const [k] of pairs) seen.push(text(k)!);
    await source.close();
    expect(source.index).toBe(10);
    expect(seen.sort()).toEqual(Array.from({ length: 10 }, (_, i) => `k${i + 1}`).sort());
  });

  it('a follower installs a received snapshot: the state, the applied index and the log start all move in one write', async () => {
    const leader = await storageWith(50);
    await leader.compactLog(40);
    const follower = await fixture.open(await fixture.tempDir(), { nodeId: 'n2' });
    const stale = puts(5, 1);
    await follower.writeReady({ term: 1, vote: 'n1', commit: 3 }, stale, stale.slice(0, 3)); // 4 and 5 uncommitted
    const meta = await transfer(leader, follower);
    expect(meta.index).toBe(50);
    await follower.writeReady({ term: 1, vote: 'n1', commit: 50 }, [], [], meta);
    expect(follower.applied).toEqual({ index: 50, term: 1 });
    expect(follower.firstIndex()).toBe(51);
    expect(follower.lastIndex()).toBe(50);
    expect(await allPairs(follower)).toEqual(await allPairs(leader));
    const reopened = await fixture.reopen(follower, { nodeId: 'n2' });
    expect(reopened.applied).toEqual({ index: 50, term: 1 });
    expect(reopened.firstIndex()).toBe(51);
    expect(reopened.initialHardState().commit).toBe(50);
    expect(text(reopened.getSync(bytes('k49')))).toBe('v49');
    // Replication goes on after the snapshot.
    const next = puts(2, 51);
    await reopened.writeReady({ term: 1, vote: 'n1', commit: 52 }, next, next);
    expect(text(reopened.getSync(bytes('k52')))).toBe('v52');
  });

  it('a crash while staging leaves the old state, and the half-staged data is cleared on open', async () => {
    const leader = await storageWith(30);
    const follower = await fixture.open(await fixture.tempDir(), { nodeId: 'n2' });
    const own = puts(3);
    await follower.writeReady({ term: 1, vote: 'n1', commit: 3 }, own, own);
    const source = await leader.openSnapshotSource();
    const staging = await follower.beginStaging();
    await staging.write((await source.next(100)) ?? []);
    await source.close();
    // Crash: the node stops without completing or installing.
    const reopened = await fixture.reopen(follower, { nodeId: 'n2' });
    expect(reopened.applied).toEqual({ index: 3, term: 1 });
    expect(await allPairs(reopened)).toEqual([
      ['k1', 'v1'],
      ['k2', 'v2'],
      ['k3', 'v3'],
    ]);
    const dir = reopened.location;
    await reopened.close();
    await withRawSublevel(dir, `kv${staging.generation}`, async (staged) => {
      expect(await staged.keys().all()).toEqual([]);
    });
  });

  it('open clears every generation but the current one, however old: what a power loss can leave of an earlier clear', async () => {
    // A clear's deletions are unsynced: a power loss can bring back part of a retired generation
    // whose clear had finished, after installs that moved two or more generations on.
    const leader = await storageWith(5);
    const follower = await fixture.open(await fixture.tempDir(), { nodeId: 'n2' });
    await installAndMatch(follower, leader, await transfer(leader, follower));
    const more = puts(3, 6);
    await leader.writeReady({ term: 1, vote: 'n1', commit: 8 }, more, more);
    await installAndMatch(follower, leader, await transfer(leader, follower));
    const dir = follower.location;
    await follower.close();
    // Generations 0 and 1 retired, 3 a staging a crash left (2 is current).
    const stale = ['kv', 'kv1', 'kv3'];
    for (const name of stale) await withRawSublevel(dir, name, (kv) => kv.put(bytes('back'), bytes(name)));
    const reopened = await fixture.open(dir, { nodeId: 'n2' });
    expect(await allPairs(reopened)).toEqual(await allPairs(leader));
    await reopened.close(); // waits for the background clears
    for (const name of stale) {
      await withRawSublevel(dir, name, async (kv) => expect([name, await kv.keys().all()]).toEqual([name, []]));
    }
    await withRawSublevel(dir, 'kv2', async (kv) => expect((await kv.keys().all()).length).toBe(8));
  });

  it('refuses to install a snapshot that was not completely staged', async () => {
    const leader = await storageWith(10);
    const follower = await fixture.open(await fixture.tempDir(), { nodeId: 'n2' });
    const source = await leader.openSnapshotSource();
    await follower.beginStaging();
    await source.close();
    const meta = { index: 10, term: 1, voters: VOTERS };
    await expect(follower.writeReady({ term: 1, vote: 'n1', commit: 10 }, [], [], meta)).rejects.toThrow(
      /not the staged one/,
    );
  });

  it('a read that began before an install keeps reading the old state until it ends', async () => {
    const leader = await storageWith(20);
    const follower = await fixture.open(await fixture.tempDir(), { nodeId: 'n2' });
    const own = [entry(1, 1, put('mine', 'old'))];
    await follower.writeReady({ term: 1, vote: 'n1', commit: 1 }, own, own);
    const read = await follower.beginRead();
    const meta = await transfer(leader, follower);
    await follower.writeReady({ term: 1, vote: 'n1', commit: 20 }, [], [], meta);
    await new Promise((r) => setTimeout(r, 50));
    const stored = read.kv.getSync(bytes('mine'));
    expect(stored === undefined ? undefined : text(decodeStored(stored).value)).toBe('old');
    expect(follower.getSync(bytes('mine'))).toBeUndefined();
    read.end();
  });

  it("an install brings the staged keys' metadata into the cache, and the applies after it build on it", async () => {
    const leader = await storageWith(50);
    const follower = await fixture.open(await fixture.tempDir(), { nodeId: 'n2' });
    // Keys the snapshot does not have: a cache that kept them would hold 53 keys after the install.
    const own = [1, 2, 3].map((i) => entry(i, 1, put(`own${i}`, 'old')));
    await follower.writeReady({ term: 1, vote: 'n1', commit: 3 }, own, own);
    expect(follower.cachedKeyMetas).toBe(3);
    const meta = await transfer(leader, follower);
    // Staged, not installed: the cache still says what the old state holds.
    expect(follower.cachedKeyMetas).toBe(3);
    expect(follower.getEntrySync(bytes('k7'))).toBeUndefined();
    await follower.writeReady({ term: 1, vote: 'n1', commit: 50 }, [], [], meta);
    // Every key of the snapshot, and nothing of the old state: no apply reads a key's metadata back.
    expect(follower.cachedKeyMetas).toBe(50);
    const next = [entry(51, 1, put('k7', 'again')), entry(52, 1, put('k51', 'new'))];
    await follower.writeReady({ term: 1, vote: 'n1', commit: 52 }, next, next);
    expect(follower.getEntrySync(bytes('k7'))?.meta).toEqual({ createIndex: 7, modIndex: 51, version: 2 });
    expect(follower.getEntrySync(bytes('k51'))?.meta).toEqual({ createIndex: 52, modIndex: 52, version: 1 });
  });

  it('a staged value whose metadata does not decode is left out of the cache, and the install goes on', async () => {
    const follower = await fixture.open(await fixture.tempDir(), { nodeId: 'n2' });
    const staging = await follower.beginStaging();
    await staging.write([
      [bytes('bad'), Uint8Array.of(0x80)],
      [bytes('good'), Uint8Array.of(4, 4, 1, 0x61)],
      [bytes('twice'), Uint8Array.of(2, 2, 1, 0x61)],
    ]);
    // A later pair of the same key wins in LevelDB: the cache must not keep the earlier one.
    await staging.write([[bytes('twice'), Uint8Array.of(0x80)]]);
    const meta = { index: 4, term: 1, voters: VOTERS };
    staging.complete(meta, (await storageWith(1)).membership);
    await follower.writeReady({ term: 1, vote: 'n1', commit: 4 }, [], [], meta);
    expect(follower.cachedKeyMetas).toBe(1);
    expect(follower.getEntrySync(bytes('good'))?.meta).toEqual({ createIndex: 4, modIndex: 4, version: 1 });
  });

  it("a staging abandoned with a chunk write in flight leaves none of that chunk's pairs in the next one", async () => {
    // Found in review: the next staging's clear of the (same) generation could run before the
    // abandoned write landed, and the install then brought keys of the older snapshot back.
    const leader = await storageWith(5);
    const follower = await fixture.open(await fixture.tempDir(), { nodeId: 'n2' });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let holdNext = false;
    wrapBatches(follower, (original) => async (ops, options) => {
      if (holdNext) {
        holdNext = false;
        await gate;
      }
      return original(ops, options);
    });
    const abandoned = await follower.beginStaging();
    holdNext = true;
    const inFlight = abandoned.write([[bytes('older'), Uint8Array.of(1, 1, 1, 0x61)]]);
    const next = follower.beginStaging();
    // Without the fix the next staging is ready (its clear done) while the write is still held.
    expect(await settlesWithin(next, 500)).toBe(false);
    release();
    await inFlight;
    const staging = await next;
    const meta = await stageAll(leader, staging);
    await installAndMatch(follower, leader, meta);
    expect(follower.getEntrySync(bytes('older'))).toBeUndefined();
  });

  it("a staging's clear is made durable before it stages anything: the begin flushes LevelDB over the staging's keys", async () => {
    // LevelDB writes a clear's deletions unsynced; a later synced write does not make them durable
    // when a memtable switch left them in an older log file. The begin must compact (which flushes
    // the memtable into a synced table) over the range that holds the staging's keys, and finish
    // that before the first chunk is written. A power loss cannot be staged here, so this checks the
    // flush itself: its range and its order.
    const leader = await storageWith(5);
    const follower = await fixture.open(await fixture.tempDir(), { nodeId: 'n2' });
    const abandoned = await stagedOlder(follower);
    abandoned.abort();
    const events: string[] = [];
    const ranges: [Uint8Array, Uint8Array][] = [];
    wrapCompactRange(follower, (original) => async (start, end) => {
      await original(start, end);
      ranges.push([start, end]);
      events.push('compacted');
    });
    const staged: Uint8Array[] = [];
    wrapBatches(follower, (original) => async (ops, options) => {
      for (const op of ops) staged.push(op.key);
      events.push('batch');
      return original(ops, options);
    });
    const staging = await follower.beginStaging();
    events.push('begun');
    await staging.write([[bytes('newer'), Uint8Array.of(1, 1, 1, 0x62)]]);
    expect(events).toEqual(['compacted', 'begun', 'batch']);
    const [start, end] = ranges[0]!;
    const key = staged[0]!;
    expect(Buffer.compare(start, key)).toBeLessThanOrEqual(0);
    expect(Buffer.compare(key, end)).toBeLessThan(0);
    staging.abort();
    await transfer(leader, follower).then((meta) => installAndMatch(follower, leader, meta));
    expect(follower.getEntrySync(bytes('older'))).toBeUndefined();
  });

  it("an abandoned staging's late abort leaves a newer staging, and the snapshot it staged, alone", async () => {
    // The receiver aborts an abandoned transfer once its begin has resolved, which can be after a
    // newer transfer began: both use the same generation.
    const leader = await storageWith(5);
    const follower = await fixture.open(await fixture.tempDir(), { nodeId: 'n2' });
    const older = await stagedOlder(follower);
    const meta = await transfer(leader, follower);
    await expect(older.write([[bytes('later'), Uint8Array.of(1, 1, 1, 0x61)]])).rejects.toThrow(/abandoned/);
    older.abort();
    await installAndMatch(follower, leader, meta);
    expect(follower.getEntrySync(bytes('older'))).toBeUndefined();
  });

  it('stagings begin one at a time: a newer begin waits for an older one still clearing the generation', async () => {
    const leader = await storageWith(5);
    const follower = await fixture.open(await fixture.tempDir(), { nodeId: 'n2' });
    // Holds the first begin inside openStaging, before its clear of the generation.
    const sm = (follower as unknown as { stateMachine: { openStaging: () => Promise<unknown> } }).stateMachine;
    const openStaging = sm.openStaging.bind(sm);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let calls = 0;
    sm.openStaging = async () => {
      if (calls++ === 0) await gate;
      return openStaging();
    };
    const older = follower.beginStaging();
    const newer = follower.beginStaging();
    // Without the order the newer one would be ready, and written into, before the older one's clear.
    expect(await settlesWithin(newer, 500)).toBe(false);
    release();
    await older;
    const staging = await newer;
    const meta = await stageAll(leader, staging);
    await installAndMatch(follower, leader, meta);
  });

  it("close waits for a staging's begin still running, and a begin queued behind it is refused", async () => {
    // The database must not close under a begin's clear and compactRange (or a chunk write).
    const follower = await fixture.open(await fixture.tempDir(), { nodeId: 'n2' });
    const events: string[] = [];
    let compacting!: () => void;
    const started = new Promise<void>((resolve) => (compacting = resolve));
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    wrapCompactRange(follower, (original) => async (start, end) => {
      events.push('compacting');
      compacting();
      await gate;
      await original(start, end);
      events.push('compacted');
    });
    wrapDatabase(follower, 'close', (original) => async () => {
      events.push('database closed');
      return original();
    });
    const running = follower.beginStaging();
    await started;
    const queued = follower.beginStaging().then(
      () => 'begun',
      (error: Error) => error.message,
    );
    const closing = follower.close();
    // Released on the next turn: without the wait, the database would have closed by then.
    setImmediate(release);
    await closing;
    expect(events).toEqual(['compacting', 'compacted', 'database closed']);
    await expect(running).resolves.toBeDefined();
    expect(await queued).toMatch(/beginStaging called on closed storage/);
  });

  it('an abort after complete changes nothing: the snapshot still installs, and an abort after the install leaves that state', async () => {
    const leader = await storageWith(5);
    const follower = await fixture.open(await fixture.tempDir(), { nodeId: 'n2' });
    const staging = await follower.beginStaging();
    const meta = await stageAll(leader, staging);
    staging.abort();
    await follower.writeReady({ term: 1, vote: 'n1', commit: 5 }, [], [], meta);
    staging.abort();
    // Closing waits for any clear the abort started; the reopened state is the installed one.
    const reopened = await fixture.reopen(follower, { nodeId: 'n2' });
    expect(await allPairs(reopened)).toEqual(await allPairs(leader));
  });

  it('a staged snapshot the core did not install is discarded', async () => {
    const leader = await storageWith(10);
    const follower = await fixture.open(await fixture.tempDir(), { nodeId: 'n2' });
    const meta = await transfer(leader, follower);
    follower.discardStaged(meta);
    await expect(follower.writeReady({ term: 1, vote: 'n1', commit: 10 }, [], [], meta)).rejects.toThrow(
      /not the staged one \(none\)/,
    );
  });
});
