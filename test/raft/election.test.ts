// Raft sections 5.1 (basics), 5.2 (leader election) and 5.4.1 (election restriction), with PreVote.
import { describe, expect, it } from 'vitest';
import { RaftCore } from '../../src/raft/core.js';
import { SeededRandom } from '../../src/raft/prng.js';
import { MemoryStorage } from '../../src/raft/storage.js';
import { TestCluster } from './harness.js';

describe('5.1 basics', () => {
  it('a node starts as a follower in the term it persisted, with no leader', () => {
    const storage = new MemoryStorage(['n1', 'n2', 'n3'], { term: 7, vote: 'n2', commit: 0 });
    const core = new RaftCore({
      id: 'n1',
      voters: ['n1', 'n2', 'n3'],
      storage,
      random: new SeededRandom(1),
      electionTicks: 10,
      heartbeatTicks: 1,
    });
    expect(core.status()).toMatchObject({ role: 'follower', term: 7, vote: 'n2', leader: '' });
  });

  it('a leader that sees a higher term steps down to follower in that term', () => {
    const c = new TestCluster(3);
    c.elect('n1');
    expect(c.core('n1').status()).toMatchObject({ role: 'leader', term: 1 });
    c.core('n1').step({
      type: 'appResp',
      from: 'n2',
      to: 'n1',
      term: 5,
      index: 0,
      reject: true,
      hintIndex: 0,
      hintTerm: 0,
    });
    expect(c.core('n1').status()).toMatchObject({ role: 'follower', term: 5, leader: '' });
  });

  it('a request from a stale term is answered with the current term, so its sender steps down', () => {
    const c = new TestCluster(3);
    c.elect('n1');
    c.isolate('n1');
    c.elect('n2'); // term 2: n1 still believes it leads term 1
    c.heal();
    c.takeTrace();
    c.tick('n1'); // heartbeat from the stale leader
    c.deliverWhere((m) => m.from === 'n1' && m.to === 'n3');
    c.deliverWhere((m) => m.from === 'n3' && m.to === 'n1');
    expect(c.takeTrace()).toEqual(['n1->n3 heartbeat t1 commit=1 round=0', 'n3->n1 appResp t2 reject 0 hint=0/0']);
    expect(c.core('n1').status()).toMatchObject({ role: 'follower', term: 2 });
  });
});

describe('5.2 leader election', () => {
  it('a follower that hears nothing for its election timeout pre-votes, then campaigns and wins', () => {
    const c = new TestCluster(3);
    c.timeout('n1');
    expect(c.core('n1').status()).toMatchObject({ role: 'pre-candidate', term: 0 });
    c.deliverAll();
    expect(c.takeTrace()).toEqual([
      // PreVote: "would you vote for me in term 1?" The voters' terms do not change.
      'n1->n2 preVote t1 last=0/0',
      'n1->n3 preVote t1 last=0/0',
      'n2->n1 preVoteResp t1 grant',
      'n3->n1 preVoteResp t1 grant',
      // A majority would: n1 enters term 1, votes for itself and asks for real votes.
      'n1->n2 vote t1 last=0/0',
      'n1->n3 vote t1 last=0/0',
      'n2->n1 voteResp t1 grant',
      'n3->n1 voteResp t1 grant',
      // Elected: the empty entry of the new term goes out at once.
      'n1->n2 app t1 prev=0/0 [1/1] commit=0',
      'n1->n3 app t1 prev=0/0 [1/1] commit=0',
      'n2->n1 appResp t1 ok 1',
      'n3->n1 appResp t1 ok 1',
      // Committed by n1 + n2: the new commit index goes out.
      'n1->n2 app t1 prev=1/1 [] commit=1',
      'n1->n3 app t1 prev=1/1 [] commit=1',
      'n2->n1 appResp t1 ok 1',
      'n3->n1 appResp t1 ok 1',
    ]);
    expect(c.leaders()).toEqual(['n1']);
    for (const id of c.ids) expect(c.core(id).status()).toMatchObject({ term: 1, leader: 'n1', commit: 1 });
  });

  it('election timeouts are drawn from [electionTicks, 2*electionTicks) by the injected PRNG, and replay from the seed', () => {
    // How many ticks n1 waits before each campaign, over 30 timeouts.
    const sample = (seed: number): number[] => {
      const c = new TestCluster(3, { seed });
      const times: number[] = [];
      for (let round = 0; round < 30; round++) {
        let ticks = 0;
        while (c.core('n1').status().role === 'follower') {
          c.tick('n1');
          ticks++;
        }
        times.push(ticks);
        c.dropWhere(() => true);
        // Back to follower: a heartbeat from a leader of a later term.
        const term = c.core('n1').status().term + 1;
        c.core('n1').step({ type: 'heartbeat', from: 'n2', to: 'n1', term, commit: 0, round: 0 });
        c.dropWhere(() => true);
      }
      return times;
    };
    const a = sample(42);
    expect(a.every((t) => t >= 10 && t < 20)).toBe(true);
    expect(new Set(a).size).toBeGreaterThan(3); // it is actually random
    expect(sample(42)).toEqual(a); // and deterministic
    expect(sample(43)).not.toEqual(a);
  });

  it('each node grants at most one vote per term, first come first served', () => {
    const c = new TestCluster(3);
    // n1 and n3 both reach the candidate state in term 1 before any vote is counted.
    c.timeout('n1');
    c.deliverWhere((m) => m.type === 'preVote' || m.type === 'preVoteResp');
    c.deliverWhere((m) => m.type === 'preVoteResp');
    c.timeout('n3');
    c.deliverWhere((m) => m.type === 'preVote' && m.from === 'n3' && m.to === 'n2');
    c.dropWhere((m) => m.from === 'n3' && m.to === 'n1');
    c.deliverWhere((m) => m.type === 'preVoteResp' && m.to === 'n3');
    expect(c.core('n1').status()).toMatchObject({ role: 'candidate', term: 1 });
    expect(c.core('n3').status()).toMatchObject({ role: 'candidate', term: 1 });
    c.takeTrace();
    // n2 hears n1 first, then n3.
    c.deliverWhere((m) => m.type === 'vote' && m.from === 'n1' && m.to === 'n2');
    c.deliverWhere((m) => m.type === 'vote' && m.from === 'n3' && m.to === 'n2');
    c.deliverWhere((m) => m.type === 'voteResp' && m.from === 'n2');
    expect(c.takeTrace()).toEqual([
      'n1->n2 vote t1 last=0/0',
      'n3->n2 vote t1 last=0/0',
      'n2->n1 voteResp t1 grant',
      'n2->n3 voteResp t1 reject',
    ]);
    expect(c.core('n2').status().vote).toBe('n1');
    c.deliverAll();
    expect(c.leaders()).toEqual(['n1']);
  });

  it('a vote is persisted before it is granted, and survives a restart', () => {
    const c = new TestCluster(3);
    c.timeout('n1');
    c.deliverWhere((m) => m.type === 'preVote');
    c.deliverWhere((m) => m.type === 'preVoteResp');
    // n2 receives the vote request; its grant is only released after the Ready was persisted.
    const n2 = c.core('n2');
    const request = c.network.find((m) => m.type === 'vote' && m.to === 'n2');
    expect(request).toBeDefined();
    n2.step(request!);
    const rd = n2.ready();
    expect(rd.hardState).toMatchObject({ term: 1, vote: 'n1' });
    expect(rd.messages.filter((m) => m.type === 'voteResp')).toEqual([]);
    expect(rd.persistedMessages.map((m) => m.type)).toEqual(['voteResp']);
    c.node('n2').storage.setHardState(rd.hardState!);
    n2.advance(rd);
    c.restart('n2');
    expect(c.core('n2').status()).toMatchObject({ term: 1, vote: 'n1' });
    // After the restart it still refuses another candidate of term 1.
    c.core('n2').step({ type: 'vote', from: 'n3', to: 'n2', term: 1, index: 0, logTerm: 0, transfer: false });
    const after = c.core('n2').ready();
    expect(after.persistedMessages).toMatchObject([{ type: 'voteResp', to: 'n3', reject: true }]);
  });

  it('a candidate that hears from a leader of its own term becomes its follower', () => {
    const c = new TestCluster(3);
    c.timeout('n1');
    c.deliverWhere((m) => m.type === 'preVote' || m.type === 'preVoteResp');
    c.deliverWhere((m) => m.type === 'preVoteResp');
    expect(c.core('n1').status()).toMatchObject({ role: 'candidate', term: 1 });
    c.dropWhere(() => true);
    c.core('n1').step({ type: 'app', from: 'n2', to: 'n1', term: 1, index: 0, logTerm: 0, entries: [], commit: 0 });
    expect(c.core('n1').status()).toMatchObject({ role: 'follower', term: 1, leader: 'n2' });
  });

  it('a split vote elects nobody, and a later election in a higher term does', () => {
    const c = new TestCluster(4);
    // n1 and n3 campaign in term 1; n2 votes for n1, n4 for n3: two votes each, no majority of 4.
    for (const id of ['n1', 'n3']) {
      c.timeout(id);
      c.deliverWhere((m) => m.type === 'preVote' && m.from === id);
      c.deliverWhere((m) => m.type === 'preVoteResp' && m.to === id);
    }
    c.deliverWhere(
      (m) => m.type === 'vote' && ((m.from === 'n1' && m.to === 'n2') || (m.from === 'n3' && m.to === 'n4')),
    );
    c.dropWhere((m) => m.type === 'vote');
    c.deliverAll();
    expect(c.leaders()).toEqual([]);
    expect(c.core('n1').status()).toMatchObject({ role: 'candidate', term: 1 });
    c.elect('n1');
    expect(c.core('n1').status()).toMatchObject({ role: 'leader', term: 2 });
  });
});

describe('5.4.1 election restriction', () => {
  it('a voter refuses a candidate whose log is less up to date than its own', () => {
    const c = new TestCluster(3);
    c.elect('n1');
    c.isolate('n3');
    c.propose('n1', 'a');
    c.deliverAll(); // n1 and n2 hold entry 2; n3 does not
    c.heal();
    c.isolate('n1');
    c.expireLeases('n2');
    c.takeTrace();
    c.timeout('n3');
    c.deliverAll();
    expect(c.takeTrace()).toEqual(['n3->n2 preVote t2 last=1/1', 'n2->n3 preVoteResp t1 reject']);
    // One refusal of three is not yet a lost pre-vote, but n3 cannot win, and its term did not move.
    expect(c.core('n3').status()).toMatchObject({ role: 'pre-candidate', term: 1 });
    // The up-to-date n2 can win.
    c.elect('n2');
  });

  it('a longer log of an older last term loses to a shorter log of a newer last term', () => {
    const c = new TestCluster(3);
    c.elect('n1');
    c.isolate('n1');
    c.propose('n1', 'x', 'y', 'z'); // n1 alone: entries 2..4 of term 1
    c.elect('n2'); // term 2 with n3; appends 2/2
    c.heal();
    c.isolate('n2');
    c.expireLeases('n3');
    // n1 (last 4/1) asks n3 (last 2/2): refused, since term 2 > term 1 however long the log.
    c.core('n1').step({ type: 'heartbeat', from: 'n3', to: 'n1', term: 2, commit: 0, round: 0 }); // learn term 2
    c.dropWhere(() => true);
    c.timeout('n1');
    c.takeTrace();
    c.deliverAll();
    expect(c.takeTrace()).toContain('n3->n1 preVoteResp t2 reject');
    expect(c.core('n1').status().role).not.toBe('leader');
  });
});

describe('PreVote', () => {
  it('a partitioned node does not raise its term, so it cannot disrupt the cluster when it returns', () => {
    const c = new TestCluster(3);
    c.elect('n1');
    c.isolate('n3');
    for (let i = 0; i < 10; i++) c.tick('n3', 25);
    c.dropWhere(() => true);
    expect(c.core('n3').status().term).toBe(1); // pre-votes only: no term inflation
    c.heal();
    c.tickAll(3);
    c.deliverAll();
    expect(c.leaders()).toEqual(['n1']);
    expect(c.core('n1').status().term).toBe(1);
    expect(c.core('n3').status()).toMatchObject({ role: 'follower', leader: 'n1' });
  });
});
