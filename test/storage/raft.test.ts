// The Raft core running on NodeStorage: a single-node cluster driven as the real driver will drive it
// (persist, apply, advance), restarted from disk, including after a crash between persist and apply.
import { describe, expect, it } from 'vitest';
import { RaftCore } from '../../src/raft/core.js';
import { SeededRandom } from '../../src/raft/prng.js';
import type { Ready } from '../../src/raft/types.js';
import { encodeCommand } from '../../src/storage/state-machine.js';
import type { ApplyOutcome, NodeStorage } from '../../src/storage/node-storage.js';
import { bytes, text, useStorageFixture } from './helpers.js';

const fixture = useStorageFixture();

function startCore(storage: NodeStorage): RaftCore {
  return new RaftCore({
    id: 'n1',
    voters: ['n1'],
    storage,
    random: new SeededRandom(1),
    electionTicks: 10,
    heartbeatTicks: 1,
    applied: storage.applied.index,
  });
}

/** One Ready, handled in the documented order (a single node has no messages to send). */
async function handleReady(
  core: RaftCore,
  storage: NodeStorage,
  options: { apply?: boolean } = {},
): Promise<{ ready: Ready; outcomes: ApplyOutcome[] }> {
  const ready = core.ready();
  await storage.persist(ready.hardState, ready.entries);
  const outcomes = options.apply === false ? [] : await storage.applyEntries(ready.committedEntries);
  core.advance(ready);
  return { ready, outcomes };
}

async function drain(core: RaftCore, storage: NodeStorage): Promise<ApplyOutcome[]> {
  const outcomes: ApplyOutcome[] = [];
  while (core.hasReady()) outcomes.push(...(await handleReady(core, storage)).outcomes);
  return outcomes;
}

async function electSelf(core: RaftCore, storage: NodeStorage): Promise<void> {
  for (let tick = 0; tick < 40 && core.status().role !== 'leader'; tick++) {
    core.tick();
    await drain(core, storage);
  }
  expect(core.status().role).toBe('leader');
}

function put(key: string, value: string): Uint8Array {
  return encodeCommand({ op: 'put', key: bytes(key), value: bytes(value) });
}

describe('RaftCore on NodeStorage', () => {
  it('elects itself, commits and applies proposals, and restarts from disk at the same place', async () => {
    let storage = await fixture.open(await fixture.tempDir(), { voters: ['n1'] });
    let core = startCore(storage);
    await electSelf(core, storage);
    const proposed = core.propose([put('x', '1'), put('y', '2'), encodeCommand({ op: 'delete', key: bytes('x') })]);
    expect(proposed).toEqual({ ok: true, index: 2, term: 1 });
    const outcomes = await drain(core, storage);
    expect(outcomes.map((o) => `${o.index}:${o.op}`)).toEqual(['2:put', '3:put', '4:delete']);
    const before = core.status();
    expect(before).toMatchObject({ term: 1, commit: 4, applied: 4, lastIndex: 4 });
    expect(text(storage.getSync(bytes('y')))).toBe('2');
    expect(storage.getSync(bytes('x'))).toBeUndefined();

    storage = await fixture.reopen(storage);
    core = startCore(storage);
    expect(core.status()).toMatchObject({ role: 'follower', term: 1, vote: 'n1', commit: 4, applied: 4, lastIndex: 4 });
    expect(text(storage.getSync(bytes('y')))).toBe('2');
    // The restarted node wins the next term and keeps going on the same log.
    await electSelf(core, storage);
    expect(core.propose([put('z', '3')])).toEqual({ ok: true, index: 6, term: 2 });
    await drain(core, storage);
    expect(core.status()).toMatchObject({ term: 2, commit: 6, applied: 6 });
    expect(storage.term(5)).toBe(2);
    expect(text(storage.getSync(bytes('z')))).toBe('3');
  });

  it('replays committed entries that were persisted but not applied before a crash', async () => {
    let storage = await fixture.open(await fixture.tempDir(), { voters: ['n1'] });
    let core = startCore(storage);
    await electSelf(core, storage);
    core.propose([put('k', 'v1')]);
    await drain(core, storage);
    core.propose([put('k', 'v2')]);
    // Persist the entry; the next Ready commits it; "crash" before applying that one.
    await handleReady(core, storage);
    const { ready } = await handleReady(core, storage, { apply: false });
    expect(ready.committedEntries.map((e) => e.index)).toEqual([3]);
    expect(storage.initialHardState().commit).toBe(3);
    expect(storage.applied.index).toBe(2);

    storage = await fixture.reopen(storage);
    expect(text(storage.getSync(bytes('k')))).toBe('v1');
    core = startCore(storage);
    expect(core.status()).toMatchObject({ commit: 3, applied: 2 });
    const replayed = await drain(core, storage);
    expect(replayed.map((o) => `${o.index}:${o.op}`)).toEqual(['3:put']);
    expect(text(storage.getSync(bytes('k')))).toBe('v2');
    expect(storage.applied).toEqual({ index: 3, term: 1 });
  });
});
