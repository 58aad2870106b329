// Raft sections 5.3 (log replication) and 5.4.2 (committing entries from previous terms), plus the
// core's flow control: pipelining, the in-flight window, message byte limits, probing, and the bound
// on uncommitted proposals.
import { describe, expect, it } from 'vitest';
import { DEFAULT_MAX_APPLY_BYTES, RaftCore } from '../../src/raft/core.js';
import { entryBytes, MemoryStorage } from '../../src/raft/storage.js';
import type { Entry, Message } from '../../src/raft/types.js';
import { TestCluster } from './harness.js';

describe('5.3 log replication', () => {
  it('a proposal is replicated, committed once a majority holds it, and applied everywhere in order', () => {
    const c = new TestCluster(3);
    c.elect('n1');
    c.takeTrace();
    expect(c.propose('n1', 'x=1')).toEqual({ ok: true, index: 2, term: 1 });
    c.deliverAll();
    expect(c.takeTrace()).toEqual([
      "n1->n2 app t1 prev=1/1 [2/1 'x=1'] commit=1",
      "n1->n3 app t1 prev=1/1 [2/1 'x=1'] commit=1",
      'n2->n1 appResp t1 ok 2',
      'n3->n1 appResp t1 ok 2',
      // n1 and n2 hold entry 2: committed and applied on n1. No append goes out for the commit
      // alone (each would cost a follower a synced apply): it travels with the next heartbeat.
    ]);
    expect(c.appliedOf('n1')).toEqual(['x=1']);
    expect(c.appliedOf('n2')).toEqual([]);
    c.heartbeat('n1');
    expect(c.takeTrace()).toEqual([
      'n1->n2 heartbeat t1 commit=2 round=0',
      'n1->n3 heartbeat t1 commit=2 round=0',
      'n2->n1 heartbeatResp t1 round=0',
      'n3->n1 heartbeatResp t1 round=0',
    ]);
    for (const id of c.ids) {
      expect(c.logOf(id)).toEqual(['1/1∅', '2/1']);
      expect(c.appliedOf(id)).toEqual(['x=1']);
    }
  });

  it('only the leader accepts proposals; a follower names the leader', () => {
    const c = new TestCluster(3);
    c.elect('n1');
    expect(c.propose('n2', 'x')).toEqual({ ok: false, error: 'not-leader', leader: 'n1' });
  });

  it('a leader does not commit until a majority has the entry durably', () => {
    const c = new TestCluster(5);
    c.elect('n1');
    c.partition('n1', 'n3', 'n4', 'n5');
    c.propose('n1', 'a');
    c.deliverAll();
    expect(c.core('n1').status().commit).toBe(1); // n1 + n2 of 5: not yet
    c.heal();
    c.partition('n1', 'n4', 'n5');
    c.tick('n1'); // the heartbeat response of n3 reveals it lags; n1 sends it entry 2
    c.deliverAll();
    expect(c.core('n1').status().commit).toBe(2);
    expect(c.appliedOf('n1')).toEqual(['a']);
  });

  it('heartbeats carry the commit index, capped at what the follower is known to hold', () => {
    const c = new TestCluster(3);
    c.elect('n1');
    c.isolate('n3');
    c.propose('n1', 'a', 'b');
    c.deliverAll();
    c.heal();
    c.takeTrace();
    c.tick('n1');
    c.deliverWhere((m) => m.type === 'heartbeat');
    expect(c.takeTrace()).toEqual([
      'n1->n2 heartbeat t1 commit=3 round=0',
      'n1->n3 heartbeat t1 commit=1 round=0', // n3 is only known to hold entry 1
    ]);
  });

  it('a follower rejects an append whose previous entry it lacks, and its hint skips a whole term', () => {
    const c = new TestCluster(3);
    c.elect('n1');
    c.propose('n1', 'a');
    c.deliverAll(); // 2/1 everywhere
    // Cut off, n1 appends three entries of term 1 that nobody else will ever see, then steps
    // down: CheckQuorum finds no quorum contact in the second election timeout.
    c.isolate('n1');
    c.propose('n1', 'x', 'y', 'z');
    c.tick('n1', 20);
    expect(c.core('n1').status().role).toBe('follower');
    // n3 leads term 2 with n2 and writes 3/2..6/2; then n2 leads term 3, with n1's vote.
    c.elect('n3');
    c.propose('n3', 'b', 'c', 'd');
    c.deliverAll();
    c.heartbeat('n3'); // n2 learns the commit of 6/2
    c.heal();
    c.isolate('n3');
    c.takeTrace();
    c.elect('n2');
    expect(c.logOf('n1')).toEqual(['1/1∅', '2/1', '3/2∅', '4/2', '5/2', '6/2', '7/3∅']);
    expect(c.takeTrace().filter((line) => line.includes('n1'))).toEqual([
      'n2->n1 preVote t3 last=6/2',
      'n1->n2 preVoteResp t3 grant',
      'n2->n1 vote t3 last=6/2',
      'n1->n2 voteResp t3 grant',
      'n2->n1 app t3 prev=6/2 [7/3] commit=6',
      // n1 lacks entry 6; its hint is its last entry of a term <= 2: entry 5, of term 1.
      'n1->n2 appResp t3 reject 6 hint=5/1',
      // n2's last entry of a term <= 1 is 2: one round trip skips the whole term-1 tail.
      "n2->n1 app t3 prev=2/1 [3/2 4/2 'b' 5/2 'c' 6/2 'd' 7/3] commit=6",
      'n1->n2 appResp t3 ok 7',
      'n2->n1 app t3 prev=7/3 [] commit=7',
      'n1->n2 appResp t3 ok 7',
    ]);
  });

  it("a conflicting suffix on a follower is truncated and replaced by the leader's entries", () => {
    const c = new TestCluster(3);
    c.elect('n1');
    // n1 appends 2/1 and 3/1 that reach nobody.
    c.isolate('n1');
    c.propose('n1', 'lost-1', 'lost-2');
    c.deliverAll();
    // n2 leads term 2 and commits 'kept' with n3.
    c.elect('n2');
    c.propose('n2', 'kept');
    c.deliverAll();
    expect(c.logOf('n1')).toEqual(['1/1∅', '2/1', '3/1']);
    // n1 rejoins: its uncommitted 2/1 and 3/1 give way to the leader's log.
    c.heal();
    c.tick('n2');
    c.deliverAll();
    expect(c.logOf('n1')).toEqual(['1/1∅', '2/2∅', '3/2']);
    expect(c.appliedOf('n1')).toEqual(['kept']);
  });

  it('appends are pipelined up to the in-flight window, then the leader waits for acknowledgements', () => {
    const c = new TestCluster(2, { maxInflightMsgs: 2 });
    c.elect('n1');
    c.takeTrace();
    for (const cmd of ['a', 'b', 'c', 'd']) c.propose('n1', cmd);
    // Four proposals, but only two appends in flight to n2 until it answers.
    expect(c.network.filter((m) => m.type === 'app').map((m) => (m.type === 'app' ? m.entries.length : 0))).toEqual([
      1, 1,
    ]);
    c.deliverAll();
    expect(c.logOf('n2')).toEqual(['1/1∅', '2/1', '3/1', '4/1', '5/1']);
    expect(c.core('n1').status().commit).toBe(5);
  });

  it('one append carries at most maxMsgBytes of entries (but always at least one)', () => {
    const c = new TestCluster(2, { maxMsgBytes: 100 });
    c.elect('n1');
    c.isolate('n2');
    c.propose('n1', 'x'.repeat(60), 'y'.repeat(60), 'z'.repeat(200));
    c.dropWhere(() => true);
    c.heal();
    c.takeTrace();
    c.tick('n1');
    c.deliverAll();
    const appends = c.takeTrace().filter((line) => line.startsWith('n1->n2 app ') && !line.includes('[]'));
    // 60 + 60 bytes would exceed 100: every append carries one entry, the 200-byte one too.
    expect(appends.length).toBeGreaterThanOrEqual(3);
    for (const line of appends) expect(line).toMatch(/\[\d+\/1 '[xyz]+'\]/);
    expect(appends.some((line) => line.includes('z'.repeat(200)))).toBe(true);
    expect(c.core('n1').status().commit).toBe(4);
  });

  it('a follower that fell behind is probed with one append at a time until the logs match', () => {
    const c = new TestCluster(3);
    c.elect('n1');
    c.isolate('n3');
    c.propose('n1', 'a');
    c.deliverAll();
    c.heal();
    c.core('n1').reportUnreachable('n3');
    expect(c.core('n1').status().progress?.['n3']).toMatchObject({ state: 'probe' });
    c.propose('n1', 'b');
    c.propose('n1', 'c');
    // In probe state only one append is outstanding to n3, however many proposals arrive.
    expect(c.network.filter((m) => m.type === 'app' && m.to === 'n3')).toHaveLength(1);
    c.dropWhere(() => true);
    c.tick('n1');
    c.deliverAll();
    expect(c.core('n1').status().progress?.['n3']).toMatchObject({ state: 'replicate', match: 4 });
    expect(c.logOf('n3')).toEqual(c.logOf('n1'));
  });

  it('a lost append in replicate state is repaired: the next one reveals the gap', () => {
    const c = new TestCluster(3);
    c.elect('n1');
    c.propose('n1', 'a');
    c.dropWhere((m) => m.type === 'app' && m.to === 'n3');
    c.propose('n1', 'b');
    c.deliverAll();
    c.tick('n1');
    c.deliverAll();
    expect(c.logOf('n3')).toEqual(['1/1∅', '2/1', '3/1']);
  });

  it('proposals beyond the uncommitted byte bound are refused, not buffered', () => {
    const c = new TestCluster(3, { maxUncommittedBytes: 1000 });
    c.elect('n1');
    c.isolate('n1'); // nothing can commit
    expect(c.propose('n1', 'x'.repeat(600)).ok).toBe(true);
    expect(c.propose('n1', 'y'.repeat(600))).toEqual({ ok: false, error: 'too-many-uncommitted', leader: 'n1' });
    c.heal();
    c.tick('n1');
    c.deliverAll();
    // Once the first commits, there is room again.
    expect(c.propose('n1', 'y'.repeat(600)).ok).toBe(true);
  });

  it('one Ready hands out at most DEFAULT_MAX_APPLY_BYTES of committed entries: a backlog is applied over several', () => {
    // What a follower far behind (or a leader whose commit jumps) is given to apply per Ready; the
    // driver applies it on its loop, so the bound is what keeps one turn short.
    const batches: number[][] = [];
    const c = new TestCluster(3, {
      factory: (config) => {
        const core = new RaftCore(config);
        const ready = core.ready.bind(core);
        core.ready = () => {
          const rd = ready();
          if (config.id === 'n2' && rd.committedEntries.length > 0)
            batches.push(rd.committedEntries.map((e) => entryBytes(e)));
          return rd;
        };
        return core;
      },
    });
    c.elect('n1');
    c.isolate('n2');
    const commands = Array.from({ length: 300 }, (_, i) => `${i}`.padEnd(1000, '.'));
    for (let i = 0; i < commands.length; i += 10) {
      c.propose('n1', ...commands.slice(i, i + 10));
      c.deliverAll();
    }
    c.heal();
    for (let i = 0; i < 10 && c.appliedOf('n2').length < commands.length; i++) {
      c.heartbeat('n1');
      c.deliverAll();
    }
    expect(c.appliedOf('n2')).toEqual(commands);
    const sizes = batches.map((b) => b.reduce((a, n) => a + n, 0));
    expect(Math.max(...sizes)).toBeLessThanOrEqual(DEFAULT_MAX_APPLY_BYTES);
    // ~300 KB of entries: not one Ready, but five or more.
    expect(sizes.length).toBeGreaterThanOrEqual(Math.ceil((300 * 1024) / DEFAULT_MAX_APPLY_BYTES));
  });

  it('a crashed follower restarts from what it persisted and catches up', () => {
    const c = new TestCluster(3);
    c.elect('n1');
    c.propose('n1', 'a', 'b');
    c.deliverAll();
    c.heartbeat('n1'); // the commit reaches the followers
    c.restart('n2');
    expect(c.core('n2').status()).toMatchObject({ term: 1, commit: 3, applied: 3 });
    c.propose('n1', 'c');
    c.deliverAll();
    c.tick('n1');
    c.deliverAll();
    expect(c.appliedOf('n2')).toEqual(['a', 'b', 'c']);
  });
});

describe('5.4.2 committing entries from previous terms (Figure 8)', () => {
  it('a leader does not commit an entry of an earlier term by counting replicas, only with one of its own', () => {
    // Each append carries one entry, so a follower can acknowledge entry 2 without entry 3.
    const c = new TestCluster(3, { maxMsgBytes: 1 });
    c.elect('n1');
    // Entry 2/1 is appended on n1 alone; n1 steps down (CheckQuorum) and wins term 2.
    c.isolate('n1');
    c.propose('n1', 'a');
    c.tick('n1', 20);
    c.heal();
    // n1 wins term 2. Every append that would give entry 3 to a follower holding entry 2 is lost,
    // so n2 and n3 end up with 2/1 but not 3/2.
    const losesEntry3 = (m: Message): boolean =>
      m.type === 'app' && m.entries.some((e) => e.index === 3) && c.logOf(m.to).length >= 2;
    c.expireLeases('n2', 'n3');
    c.timeout('n1');
    c.deliverAll(losesEntry3);
    expect(c.core('n1').status()).toMatchObject({ role: 'leader', term: 2 });
    expect(c.logOf('n1')).toEqual(['1/1∅', '2/1', '3/2∅']);
    expect(c.logOf('n2')).toEqual(['1/1∅', '2/1']);
    expect(c.logOf('n3')).toEqual(['1/1∅', '2/1']);
    // Three of three hold 2/1, but it is of term 1: counting replicas of it commits nothing
    // (otherwise a leader of a later term whose log lacks it could still erase it: Figure 8).
    expect(c.core('n1').status().commit).toBe(1);
    // Once a majority holds 3/2, both commit together.
    c.tick('n1');
    c.deliverAll();
    expect(c.core('n1').status().commit).toBe(3);
    expect(c.appliedOf('n2')).toEqual(['a']);
  });
});

describe('flow control: a follower far behind is fed a window at a time', () => {
  /** Bytes of entries in the appends to `to` now in the network. */
  const appendBytesTo = (c: TestCluster, to: string): number =>
    c.network.reduce(
      (sum, m) => sum + (m.type === 'app' && m.to === to ? m.entries.reduce((s, e) => s + entryBytes(e), 0) : 0),
      0,
    );

  it('the bytes in flight to a follower stay within maxInflightBytes (plus the one append that crosses it)', () => {
    const c = new TestCluster(2, { maxMsgBytes: 1000, maxInflightBytes: 4000 });
    c.elect('n1');
    c.isolate('n2');
    for (let i = 0; i < 200; i++) c.propose('n1', `v${i}`.padEnd(100, '.'));
    c.dropWhere(() => true);
    c.heal();
    c.core('n1').reportUnreachable('n2');
    c.tick('n1');
    // One message at a time, in order: the appends on their way to n2 never exceed the window.
    let most = 0;
    for (let delivered = 0; c.network.length > 0; delivered++) {
      expect(delivered).toBeLessThan(10_000);
      const inFlight = appendBytesTo(c, 'n2');
      most = Math.max(most, inFlight);
      expect(inFlight).toBeLessThanOrEqual(4000 + 1000);
      c.deliverWhere((m) => m === c.network[0]);
    }
    expect(most).toBeGreaterThan(3000); // the window was used, not just one append at a time
    expect(c.logOf('n2')).toEqual(c.logOf('n1'));
  });

  it('entries storage must load first are not sent until it has them; entriesLoaded resumes streaming', () => {
    const cold = new Map<string, ColdStorage>();
    const c = new TestCluster(2, {
      storage: (id, voters) => {
        const storage = new ColdStorage(voters);
        cold.set(id, storage);
        return storage;
      },
    });
    c.elect('n1');
    c.isolate('n2');
    for (let i = 0; i < 20; i++) c.propose('n1', `v${i}`);
    c.dropWhere(() => true);
    c.heal();
    const leaderStorage = cold.get('n1')!;
    leaderStorage.coldBelow = 15; // entries 1..14 must be loaded before they can be sent
    c.core('n1').reportUnreachable('n2');
    c.tick('n1');
    c.deliverAll();
    // The probe found where n2's log matches (entry 1); the entries after it are not in memory yet.
    expect(leaderStorage.loadsAsked).toBeGreaterThan(0);
    expect(c.logOf('n2')).toEqual(['1/1∅']);
    leaderStorage.coldBelow = 0;
    c.core('n1').entriesLoaded();
    c.deliverAll();
    expect(c.logOf('n2')).toEqual(c.logOf('n1'));
    expect(c.core('n1').status().commit).toBe(21);
  });
});

/** MemoryStorage whose entries below `coldBelow` must be "loaded" before entriesToSend answers them. */
class ColdStorage extends MemoryStorage {
  coldBelow = 0;
  loadsAsked = 0;

  entriesToSend(lo: number, hi: number, maxBytes: number): Entry[] | null {
    if (lo < this.coldBelow) {
      this.loadsAsked++;
      return null;
    }
    return this.entries(lo, hi, maxBytes);
  }
}
