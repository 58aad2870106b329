// Log compaction and snapshots (Raft thesis chapter 5, etcd-raft's model): a leader that compacted
// away entries a follower needs sends a snapshot instead; the follower installs it (or, when its log
// already holds the snapshot's last entry, just commits up to it), and replication goes on from there.
// The harness completes a snapshot transfer at once (harness.ts `deliver`), as the driver would.
import { describe, expect, it } from 'vitest';
import { TestCluster } from './harness.js';

/** Delivers everything but messages of `type`, which stay queued. */
function deliverAllBut(c: TestCluster, type: string): void {
  for (let guard = 0; guard < 100 && c.network.some((m) => m.type !== type); guard++)
    c.deliverWhere((m) => m.type !== type);
}

/** n1 leads; n3 is cut off while entries commit; n1 compacts its log past what n3 has. */
function followerBehindCompaction(): TestCluster {
  const c = new TestCluster(3);
  c.elect('n1');
  c.isolate('n3');
  c.propose('n1', 'a', 'b', 'c');
  c.deliverAll();
  c.compact('n1', 4);
  c.heal();
  return c;
}

describe('snapshots', () => {
  it('a follower that needs compacted entries gets a snapshot, installs it, and replication goes on from it', () => {
    const c = followerBehindCompaction();
    expect(c.logOf('n1')).toEqual([]);
    c.takeTrace();
    c.tick('n1');
    c.deliverAll();
    c.propose('n1', 'd');
    c.deliverAll();
    c.heartbeat('n1');
    expect(c.takeTrace()).toEqual(
      expect.arrayContaining([
        'n1->n3 snap t1 snapshot=4/1',
        'n3->n1 appResp t1 ok 4',
        "n1->n3 app t1 prev=4/1 [5/1 'd'] commit=4",
      ]),
    );
    expect(c.appliedOf('n3')).toEqual(['a', 'b', 'c', 'd']);
    expect(c.logOf('n3')).toEqual(['5/1']);
    expect(c.core('n3').status()).toMatchObject({ firstIndex: 5, commit: 5, applied: 5 });
    expect(c.core('n1').status().progress?.['n3']).toMatchObject({ state: 'replicate', match: 5 });
  });

  it('while a snapshot is on its way the leader sends that follower no appends, only heartbeats', () => {
    const c = followerBehindCompaction();
    c.tick('n1');
    deliverAllBut(c, 'snap');
    expect(c.network.filter((m) => m.type === 'snap')).toHaveLength(1);
    expect(c.core('n1').status().progress?.['n3']).toMatchObject({ state: 'snapshot' });
    c.propose('n1', 'd');
    c.tick('n1');
    expect(
      c.network
        .filter((m) => m.to === 'n3')
        .map((m) => m.type)
        .sort(),
    ).toEqual(['heartbeat', 'snap']);
  });

  it('a failed transfer makes the leader probe again and send another snapshot', () => {
    const c = followerBehindCompaction();
    c.tick('n1');
    deliverAllBut(c, 'snap');
    expect(c.network.filter((m) => m.type === 'snap')).toHaveLength(1);
    c.dropWhere((m) => m.type === 'snap');
    c.core('n1').reportSnapshot('n3', false);
    expect(c.core('n1').status().progress?.['n3']).toMatchObject({ state: 'probe', next: 2 });
    c.tick('n1');
    c.deliverAll();
    expect(c.appliedOf('n3')).toEqual(['a', 'b', 'c']);
    expect(c.core('n1').status().progress?.['n3']).toMatchObject({ state: 'replicate', match: 4 });
  });

  it("a follower whose log already holds the snapshot's last entry commits up to it instead of installing it", () => {
    const c = new TestCluster(3);
    c.elect('n1');
    c.propose('n1', 'a');
    // n3 gets the entry but never learns it committed.
    c.deliverAll((m) => m.to === 'n3' && (m.type === 'heartbeat' || (m.type === 'app' && m.entries.length === 0)));
    expect(c.core('n3').status().commit).toBeLessThan(2);
    c.process();
    const commitBefore = c.core('n3').status().commit;
    c.core('n3').step({
      type: 'snap',
      from: 'n1',
      to: 'n3',
      term: 1,
      snapshot: { index: 2, term: 1, voters: ['n1', 'n2', 'n3'] },
    });
    c.process();
    expect(commitBefore).toBeLessThan(2);
    expect(c.core('n3').status()).toMatchObject({ commit: 2, applied: 2, firstIndex: 1 });
    expect(c.appliedOf('n3')).toEqual(['a']);
  });

  it("a snapshot older than the follower's commit is ignored; the answer says how far it is", () => {
    const c = new TestCluster(3);
    c.elect('n1');
    c.propose('n1', 'a', 'b');
    c.deliverAll();
    c.tick('n1');
    c.deliverAll();
    c.takeTrace();
    c.core('n3').step({
      type: 'snap',
      from: 'n1',
      to: 'n3',
      term: 1,
      snapshot: { index: 2, term: 1, voters: ['n1', 'n2', 'n3'] },
    });
    c.process();
    expect(c.network.filter((m) => m.from === 'n3')).toEqual([
      { type: 'appResp', from: 'n3', to: 'n1', term: 1, index: 3, reject: false, hintIndex: 0, hintTerm: 0 },
    ]);
    expect(c.core('n3').status()).toMatchObject({ commit: 3, applied: 3, firstIndex: 1 });
  });

  it('installing a snapshot replaces a conflicting, uncommitted suffix', () => {
    const c = new TestCluster(3);
    c.elect('n1');
    c.propose('n1', 'a');
    c.deliverAll();
    c.elect('n3'); // term 2
    c.isolate('n3');
    c.propose('n3', 'x'); // 4/2 exists on n3 alone: never committed
    c.elect('n1'); // term 3, with n2
    c.propose('n1', 'b', 'c');
    c.deliverAll();
    c.compact('n1', 6);
    expect(c.logOf('n3')).toEqual(['1/1∅', '2/1', '3/2∅', '4/2']);
    c.heal();
    c.tick('n1');
    c.deliverAll();
    expect(c.appliedOf('n3')).toEqual(['a', 'b', 'c']);
    expect(c.core('n3').status()).toMatchObject({ role: 'follower', leader: 'n1', firstIndex: 7 });
    c.propose('n1', 'd');
    c.deliverAll();
    c.heartbeat('n1');
    expect(c.logOf('n3')).toEqual(c.logOf('n1'));
    expect(c.appliedOf('n3')).toEqual(['a', 'b', 'c', 'd']);
  });

  it('a follower restarted after installing a snapshot starts from it', () => {
    const c = followerBehindCompaction();
    c.tick('n1');
    c.deliverAll();
    c.restart('n3');
    expect(c.core('n3').status()).toMatchObject({ firstIndex: 5, lastIndex: 4, commit: 4, applied: 4 });
    c.propose('n1', 'd');
    c.deliverAll();
    c.heartbeat('n1');
    expect(c.appliedOf('n3')).toEqual(['a', 'b', 'c', 'd']);
  });

  it('no snapshot goes to a follower that was not heard from lately', () => {
    const c = followerBehindCompaction();
    c.isolate('n3');
    c.tick('n1', 10); // an election timeout: n3's recentActive is cleared by CheckQuorum
    c.heal();
    c.core('n1').reportUnreachable('n3');
    c.propose('n1', 'd');
    expect(c.network.filter((m) => m.type === 'snap')).toEqual([]);
  });
});
