// Versioned keys through NodeStorage: requests applied in one batch see each other, and idempotency
// records outlive a restart and travel with a snapshot, so a retry is answered the same way on a node
// that restarted or that was brought up to date by a snapshot. Old (format-1) snapshot streams are
// read with legacy metadata.
import { describe, expect, it } from 'vitest';
import type { Entry, SnapshotMeta } from '../../src/raft/types.js';
import { StreamChecker, StreamWriter } from '../../src/snapshot/format.js';
import { encodeCommand, type Command } from '../../src/storage/command.js';
import { decodeStored, LEGACY_META } from '../../src/storage/key-meta.js';
import type { ApplyOutcome, NodeStorage } from '../../src/storage/node-storage.js';
import type { Request } from '../../src/storage/request.js';
import { bytes, entry, text, useStorageFixture } from './helpers.js';

const fixture = useStorageFixture();
const VOTERS = ['n1', 'n2', 'n3'];

const idempotent = (request: Request, id: string, fingerprint = 1): Command => ({
  op: 'request',
  request,
  idempotency: { id, fingerprint: new Uint8Array([fingerprint]), at: 1_000 },
});

/** Appends and applies `commands` after the log's end, all in one Ready; returns what each did. */
async function apply(storage: NodeStorage, commands: readonly Command[]): Promise<ApplyOutcome[]> {
  const first = storage.lastIndex() + 1;
  const entries: Entry[] = commands.map((c, i) => entry(first + i, 1, encodeCommand(c)));
  const { outcomes } = await storage.writeReady(
    { term: 1, vote: 'n1', commit: first + entries.length - 1 },
    entries,
    entries,
  );
  return outcomes;
}

async function transfer(from: NodeStorage, to: NodeStorage): Promise<SnapshotMeta> {
  const source = await from.openSnapshotSource();
  const staging = await to.beginStaging();
  try {
    for (let pairs = await source.next(100); pairs !== null; pairs = await source.next(100)) await staging.write(pairs);
  } finally {
    await source.close();
  }
  const meta = { index: source.index, term: source.term, voters: VOTERS };
  staging.complete(meta, source.membership);
  return meta;
}

describe('versioned keys in NodeStorage', () => {
  it('entries of one batch see each other: a condition on a key written earlier in the same batch', async () => {
    const storage = await fixture.open(await fixture.tempDir());
    const outcomes = await apply(storage, [
      { op: 'put', key: bytes('k'), value: bytes('a') },
      { op: 'request', request: { kind: 'put', key: bytes('k'), value: bytes('b'), condition: { modIndex: 1 } } },
      { op: 'request', request: { kind: 'put', key: bytes('k'), value: bytes('c'), condition: { modIndex: 1 } } },
      { op: 'request', request: { kind: 'put', key: bytes('k'), value: bytes('d'), condition: { absent: true } } },
    ]);
    expect(outcomes.map((o) => (o.op === 'request' ? o.answer : o.op))).toEqual([
      'put',
      { kind: 'applied', result: { kind: 'written' } },
      { kind: 'applied', result: { kind: 'failed', current: { createIndex: 1, modIndex: 2, version: 2 } } },
      { kind: 'applied', result: { kind: 'failed', current: { createIndex: 1, modIndex: 2, version: 2 } } },
    ]);
    expect(storage.getEntrySync(bytes('k'))).toEqual({
      value: bytes('b'),
      meta: { createIndex: 1, modIndex: 2, version: 2 },
    });
    // The records and other internal keys never show in a scan.
    await apply(storage, [idempotent({ kind: 'delete', key: bytes('gone') }, 'r')]);
    expect((await storage.scan({ limit: 10 })).entries.map(([k]) => text(k))).toEqual(['k']);
  });

  it('a retry after a restart, and on a node that received a snapshot, gets the first answer and changes nothing', async () => {
    let leader = await fixture.open(await fixture.tempDir());
    const write = idempotent({ kind: 'put', key: bytes('k'), value: bytes('once') }, 'retry-me');
    const [first] = await apply(leader, [write]);
    expect(first).toMatchObject({ index: 1, op: 'request', answer: { kind: 'applied' } });
    await apply(leader, [{ op: 'put', key: bytes('k'), value: bytes('later') }]);
    expect(leader.idempotencyRecords.count).toBe(1);

    leader = await fixture.reopen(leader);
    expect(leader.idempotencyRecords.count).toBe(1);
    const [retry] = await apply(leader, [write]);
    expect(retry).toMatchObject({
      index: 3,
      answer: { kind: 'replayed', index: 1, term: 1, result: { kind: 'written' } },
    });
    expect(text(leader.getSync(bytes('k')))).toBe('later');

    const follower = await fixture.open(await fixture.tempDir(), { nodeId: 'n2' });
    const meta = await transfer(leader, follower);
    await follower.writeReady({ term: 1, vote: 'n1', commit: meta.index }, [], [], meta);
    expect(follower.idempotencyRecords.count).toBe(1);
    // The follower applies the next entries as the leader does: the same retry, the same answer.
    const [onFollower] = await apply(follower, [write]);
    expect(onFollower).toMatchObject({ answer: { kind: 'replayed', index: 1 } });
    const [reused] = await apply(follower, [idempotent({ kind: 'delete', key: bytes('k') }, 'retry-me', 2)]);
    expect(reused).toMatchObject({ answer: { kind: 'mismatch', index: 1 } });
    expect(follower.getEntrySync(bytes('k'))).toEqual(leader.getEntrySync(bytes('k')));
  });

  it('a snapshot installed over keys the node wrote itself: the next put counts from the snapshot’s metadata', async () => {
    const leader = await fixture.open(await fixture.tempDir());
    await apply(leader, [{ op: 'put', key: bytes('k'), value: bytes('leader') }]);
    for (let i = 0; i < 4; i++) await apply(leader, [{ op: 'put', key: bytes(`other${i}`), value: bytes('x') }]);
    const follower = await fixture.open(await fixture.tempDir(), { nodeId: 'n2' });
    // Three puts of k on the follower's own history: version 3.
    for (let i = 0; i < 3; i++) await apply(follower, [{ op: 'put', key: bytes('k'), value: bytes(`own${i}`) }]);
    expect(follower.getEntrySync(bytes('k'))?.meta).toEqual({ createIndex: 1, modIndex: 3, version: 3 });

    const meta = await transfer(leader, follower);
    expect(meta.index).toBe(5);
    await follower.writeReady({ term: 1, vote: 'n1', commit: meta.index }, [], [], meta);
    await apply(follower, [{ op: 'put', key: bytes('k'), value: bytes('after') }]);
    await apply(leader, [{ op: 'put', key: bytes('k'), value: bytes('after') }]);
    expect(follower.getEntrySync(bytes('k'))?.meta).toEqual({ createIndex: 1, modIndex: 6, version: 2 });
    expect(follower.getEntrySync(bytes('k'))).toEqual(leader.getEntrySync(bytes('k')));
  });

  it('versions stay exact through the metadata cache: deletes, transactions, a reopen and a failed condition', async () => {
    let storage = await fixture.open(await fixture.tempDir());
    const k = bytes('k');
    await apply(storage, [{ op: 'put', key: k, value: bytes('1') }]); // index 1: created
    await apply(storage, [{ op: 'put', key: k, value: bytes('2') }]); // 2: version 2, read from the cache
    expect(storage.getEntrySync(k)?.meta).toEqual({ createIndex: 1, modIndex: 2, version: 2 });
    await apply(storage, [{ op: 'delete', key: k }]); // 3
    await apply(storage, [{ op: 'put', key: k, value: bytes('3') }]); // 4: created anew, not version 3
    expect(storage.getEntrySync(k)?.meta).toEqual({ createIndex: 4, modIndex: 4, version: 1 });
    // A transaction's delete and put in one branch, then a plain put in the same batch.
    await apply(storage, [
      {
        op: 'request',
        request: {
          kind: 'txn',
          compare: [],
          success: [
            { op: 'delete', key: k },
            { op: 'put', key: k, value: bytes('4') },
          ],
          failure: [],
        },
      },
      { op: 'put', key: k, value: bytes('5') },
    ]); // 5, 6
    expect(storage.getEntrySync(k)?.meta).toEqual({ createIndex: 5, modIndex: 6, version: 2 });
    // A condition that fails changes nothing, and the cache does not pretend otherwise.
    const [failed] = await apply(storage, [
      { op: 'request', request: { kind: 'put', key: k, value: bytes('no'), condition: { modIndex: 5 } } },
    ]); // 7
    expect(failed).toMatchObject({ op: 'request', answer: { result: { kind: 'failed' } } });
    await apply(storage, [{ op: 'put', key: k, value: bytes('6') }]); // 8
    expect(storage.getEntrySync(k)?.meta).toEqual({ createIndex: 5, modIndex: 8, version: 3 });
    // After a reopen (an empty cache) the count goes on from what is stored.
    storage = await fixture.reopen(storage);
    await apply(storage, [{ op: 'put', key: k, value: bytes('7') }]); // 9
    expect(storage.getEntrySync(k)?.meta).toEqual({ createIndex: 5, modIndex: 9, version: 4 });
  });

  it('a format-1 snapshot stream (from a build before versioned keys) is read with legacy metadata', () => {
    const writer = new StreamWriter();
    const checker = new StreamChecker();
    const header = {
      format: 1,
      clusterId: 'c1',
      index: 5,
      term: 2,
      membership: { members: [{ id: 'n1', clientUrl: '', peerUrl: '', role: 'voter' as const }], removed: [] },
    };
    checker.accept(writer.header(header));
    const frame = checker.accept(writer.chunk([[bytes('k'), bytes('raw value')]]));
    expect(frame.kind).toBe('chunk');
    const [pair] = frame.kind === 'chunk' ? frame.pairs : [];
    expect(pair && decodeStored(pair[1])).toEqual({ meta: LEGACY_META, value: bytes('raw value') });
    expect(checker.accept(writer.trailer()).kind).toBe('trailer');
  });
});
