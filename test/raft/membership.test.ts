// Membership changes (Raft thesis chapter 4, one server at a time; etcd-raft's model of taking
// effect when applied): learners, promotion, removal, a leader removing itself, one change at a
// time, and nodes that are not voters staying out of elections.
import { describe, expect, it } from 'vitest';
import { TestCluster } from './harness.js';

/** n1 leads n1..n3; n4 joins as a learner and catches up (through a snapshot: it starts empty). */
function withLearnerN4(): TestCluster {
  const c = new TestCluster(3);
  c.elect('n1');
  c.propose('n1', 'a', 'b');
  c.deliverAll();
  c.addNode('n4');
  expect(c.changeMembership('n1', { type: 'addLearner', node: 'n4' }).ok).toBe(true);
  c.deliverAll();
  c.tick('n1');
  c.deliverAll();
  return c;
}

describe('membership changes', () => {
  it('a node that joins empty gets a snapshot first (it refuses entries it has no configuration for), then the log', () => {
    const c = withLearnerN4();
    const trace = c.takeTrace();
    expect(trace.some((l) => l.startsWith('n4->n1 appResp') && l.includes('reject'))).toBe(true);
    expect(trace.some((l) => l.startsWith('n1->n4 snap'))).toBe(true);
    c.propose('n1', 'c');
    c.deliverAll();
    c.heartbeat('n1');
    expect(c.appliedOf('n4')).toEqual(['a', 'b', 'c']);
    expect(c.core('n4').status()).toMatchObject({
      role: 'follower',
      leader: 'n1',
      voters: ['n1', 'n2', 'n3'],
      learners: ['n4'],
    });
    expect(c.core('n1').status().progress?.['n4']).toMatchObject({ learner: true, state: 'replicate' });
  });

  it('a learner replicates but does not count towards commit', () => {
    const c = withLearnerN4();
    c.isolate('n2');
    c.partition('n3', 'n1');
    c.propose('n1', 'x');
    c.deliverAll();
    expect(c.core('n4').status().lastIndex).toBe(c.core('n1').status().lastIndex);
    // n1 and n4 hold it: two of four members, but one of three voters plus a learner.
    expect(c.appliedOf('n1')).not.toContain('x');
    c.heal();
    c.tick('n1');
    c.deliverAll();
    expect(c.appliedOf('n1')).toContain('x');
  });

  it('a learner never campaigns, however long it hears nothing', () => {
    const c = withLearnerN4();
    c.isolate('n4');
    c.tick('n4', 100);
    expect(c.core('n4').status()).toMatchObject({ role: 'follower', term: 1 });
    expect(c.network.filter((m) => m.from === 'n4')).toEqual([]);
  });

  it('a learner (or a removed node) ignores TimeoutNow: only a voter of its own configuration campaigns', () => {
    // A leader that has not applied a change yet may still count the target as a voter and hand it
    // leadership; the target knows its configuration and refuses (sim seed 77418717 path 766).
    const c = withLearnerN4();
    c.core('n4').step({ type: 'timeoutNow', from: 'n1', to: 'n4', term: 1 });
    c.deliverAll();
    expect(c.core('n4').status()).toMatchObject({ role: 'follower', term: 1 });
    expect(c.core('n1').status()).toMatchObject({ role: 'leader', term: 1 });
  });

  it('a promoted learner votes and counts: four voters need three', () => {
    const c = withLearnerN4();
    expect(c.changeMembership('n1', { type: 'promote', node: 'n4' }).ok).toBe(true);
    c.deliverAll();
    expect(c.core('n1').status()).toMatchObject({ voters: ['n1', 'n2', 'n3', 'n4'], learners: [] });
    c.isolate('n2');
    c.isolate('n3');
    c.propose('n1', 'y');
    c.deliverAll();
    expect(c.appliedOf('n1')).not.toContain('y'); // n1 and n4: two of four
    c.heal();
    c.isolate('n3');
    c.tick('n1');
    c.deliverAll();
    expect(c.appliedOf('n1')).toContain('y'); // n1, n2, n4: three of four
  });

  it('one change at a time: a second is refused until the first is applied', () => {
    const c = new TestCluster(3);
    c.elect('n1');
    c.addNode('n4');
    c.addNode('n5');
    c.isolate('n2');
    c.isolate('n3');
    expect(c.changeMembership('n1', { type: 'addLearner', node: 'n4' }).ok).toBe(true);
    expect(c.changeMembership('n1', { type: 'addLearner', node: 'n5' })).toEqual({
      ok: false,
      error: 'change-in-progress',
      leader: 'n1',
    });
    expect(c.core('n1').checkConfChange({ type: 'addLearner', node: 'n5' })).toMatchObject({
      ok: false,
      error: 'change-in-progress',
    });
    c.heal();
    c.tick('n1');
    c.deliverAll();
    expect(c.changeMembership('n1', { type: 'addLearner', node: 'n5' }).ok).toBe(true);
  });

  it('refuses changes that make no sense, saying why', () => {
    const c = new TestCluster(3);
    c.elect('n1');
    const refusal = (change: Parameters<TestCluster['changeMembership']>[1]) => c.core('n1').checkConfChange(change);
    expect(refusal({ type: 'addLearner', node: 'n2' })).toEqual({
      ok: false,
      error: 'invalid-change',
      reason: 'n2 is already a member',
    });
    expect(refusal({ type: 'promote', node: 'n2' })).toEqual({
      ok: false,
      error: 'invalid-change',
      reason: 'n2 is already a voter',
    });
    expect(refusal({ type: 'promote', node: 'n9' })).toMatchObject({ ok: false, error: 'invalid-change' });
    expect(refusal({ type: 'remove', node: 'n9' })).toEqual({
      ok: false,
      error: 'invalid-change',
      reason: 'n9 is not a member',
    });
    expect(c.core('n2').checkConfChange({ type: 'addLearner', node: 'n9' })).toMatchObject({
      ok: false,
      error: 'not-leader',
    });
    const single = new TestCluster(1);
    single.elect('n1');
    expect(single.core('n1').checkConfChange({ type: 'remove', node: 'n1' })).toMatchObject({
      ok: false,
      error: 'invalid-change',
    });
  });

  it('a new leader makes no change until its own log is applied (a change may sit in what it inherited)', () => {
    const c = new TestCluster(3);
    c.elect('n1');
    c.addNode('n4');
    // The change reaches n2 but commits nowhere: n1 is cut off right after.
    c.changeMembership('n1', { type: 'addLearner', node: 'n4' });
    c.deliverWhere((m) => m.type === 'app' && m.to === 'n2');
    c.isolate('n1');
    c.expireLeases('n2', 'n3');
    c.timeout('n2');
    c.deliverWhere((m) => m.type === 'preVote' || m.type === 'preVoteResp');
    c.deliverWhere((m) => m.type === 'preVote' || m.type === 'preVoteResp');
    c.deliverWhere((m) => m.type === 'vote' || m.type === 'voteResp');
    c.deliverWhere((m) => m.type === 'vote' || m.type === 'voteResp');
    expect(c.core('n2').status().role).toBe('leader');
    expect(c.core('n2').checkConfChange({ type: 'remove', node: 'n3' })).toMatchObject({
      ok: false,
      error: 'change-in-progress',
    });
    c.deliverAll();
    c.tick('n2');
    c.deliverAll();
    expect(c.core('n2').status().learners).toEqual(['n4']);
    expect(c.core('n2').checkConfChange({ type: 'remove', node: 'n3' })).toEqual({ ok: true });
  });

  it('a leader that removes itself steps down once the change is applied, and never campaigns again', () => {
    const c = new TestCluster(3);
    c.elect('n1');
    expect(c.changeMembership('n1', { type: 'remove', node: 'n1' }).ok).toBe(true);
    c.deliverAll();
    c.tick('n1');
    c.deliverAll();
    expect(c.core('n1').status()).toMatchObject({ role: 'follower', voters: ['n2', 'n3'] });
    expect(c.core('n2').status().voters).toEqual(['n2', 'n3']);
    // The others elect a leader of the two; n1 stays out, however long it waits.
    c.tick('n1', 100);
    expect(c.core('n1').status().role).toBe('follower');
    c.expireLeases('n2', 'n3');
    c.timeout('n2');
    c.deliverAll();
    expect(c.leaders()).toEqual(['n2']);
    c.propose('n2', 'after');
    c.deliverAll();
    c.heartbeat('n2');
    expect(c.appliedOf('n3')).toContain('after');
  });

  it('the commit of a membership change goes out at once, not with the next heartbeat', () => {
    const c = new TestCluster(3);
    c.elect('n1');
    c.propose('n1', 'a');
    c.deliverAll();
    expect(c.core('n2').status().commit).toBe(1); // a plain entry's commit waits for a heartbeat
    c.changeMembership('n1', { type: 'remove', node: 'n3' });
    c.deliverAll();
    // Each node changes its configuration when it applies the change: the followers must not wait.
    expect(c.core('n1').status().commit).toBe(3);
    expect(c.core('n2').status()).toMatchObject({ commit: 3, applied: 3, voters: ['n1', 'n2'] });
  });

  it("a removed voter's vote requests are ignored: it cannot raise the others' term", () => {
    const c = new TestCluster(3);
    c.elect('n1');
    c.changeMembership('n1', { type: 'remove', node: 'n3' });
    c.deliverAll((m) => m.to === 'n3');
    c.tick('n1');
    c.deliverAll((m) => m.to === 'n3');
    expect(c.core('n1').status().voters).toEqual(['n1', 'n2']);
    // n3 never learned it was removed: it campaigns, in vain.
    c.isolate('n1');
    c.timeout('n3');
    c.deliverAll();
    c.tick('n3', 40);
    c.deliverAll();
    expect(c.core('n2').status().term).toBe(1);
  });

  it('a restarted node comes back with the configuration it had applied', () => {
    const c = withLearnerN4();
    c.changeMembership('n1', { type: 'promote', node: 'n4' });
    c.deliverAll();
    c.tick('n1');
    c.deliverAll();
    c.restart('n4');
    expect(c.core('n4').status()).toMatchObject({ voters: ['n1', 'n2', 'n3', 'n4'], learners: [] });
    c.restart('n2');
    expect(c.core('n2').status().voters).toEqual(['n1', 'n2', 'n3', 'n4']);
  });
});
