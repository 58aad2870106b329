// Acknowledgements of appends in the answer to the request that brought them: the answer is held
// until the Ready that persists the entries is written, never sent before, and never held forever.
import { afterEach, describe, expect, it } from 'vitest';
import { HeldReplies, MAX_HELD_REPLIES } from '../../src/node/held-replies.js';
import { RaftNode } from '../../src/node/raft-node.js';
import { EntryType, type Message } from '../../src/raft/types.js';
import { MemoryNodeStore, nodeOptions, until } from './helpers.js';

const appResp = (to: string, index: number): Message => ({
  type: 'appResp',
  from: 'n2',
  to,
  term: 1,
  index,
  reject: false,
  hintIndex: 0,
  hintTerm: 0,
});
const voteResp = (to: string): Message => ({ type: 'voteResp', from: 'n2', to, term: 1, reject: false });

describe('HeldReplies', () => {
  it('answers a held request at the first Ready taken after it, with that Ready’s acknowledgements to its peer', async () => {
    const held = new HeldReplies();
    const answer = held.hold('n1', [], 4);
    expect(answer).not.toBeNull();
    // Ready 4 was taken before the batch was stepped: not due yet, everything goes by the outbox.
    const early = [appResp('n1', 3)];
    expect(held.answerDue(4, early)).toBe(early);
    expect(held.size).toBe(1);
    const rest = held.answerDue(5, [appResp('n1', 7), voteResp('n1'), appResp('n3', 7)]);
    expect(rest).toEqual([voteResp('n1'), appResp('n3', 7)]);
    expect(await answer).toEqual([appResp('n1', 7)]);
    expect(held.size).toBe(0);
  });

  it('keeps what it could answer at once (heartbeat acknowledgements) in front', async () => {
    const held = new HeldReplies();
    const now: Message = { type: 'heartbeatResp', from: 'n2', to: 'n1', term: 1, round: 3 };
    const answer = held.hold('n1', [now], 0);
    held.answerDue(1, [appResp('n1', 2)]);
    expect(await answer).toEqual([now, appResp('n1', 2)]);
  });

  it('holds at most MAX_HELD_REPLIES; releaseAll answers every one with what it has', async () => {
    const held = new HeldReplies();
    const answers = Array.from({ length: MAX_HELD_REPLIES }, () => held.hold('n1', [], 0)).filter(
      (a): a is Promise<readonly Message[]> => a !== null,
    );
    expect(answers).toHaveLength(MAX_HELD_REPLIES);
    expect(held.hold('n1', [], 0)).toBeNull();
    held.releaseAll();
    expect(await Promise.all(answers)).toEqual(answers.map(() => []));
    expect(held.size).toBe(0);
  });
});

describe('a follower answering appends with their acknowledgements', () => {
  let node: RaftNode | undefined;
  let releaseGate: () => void = () => undefined;
  afterEach(async () => {
    releaseGate();
    await node?.stop();
    node = undefined;
  });

  /**
   * n2, a follower of n1 (never started: no ticks), on a store whose writes wait for `release()`
   * (or fail, after `fail()`).
   */
  function follower(): {
    n2: RaftNode;
    store: MemoryNodeStore;
    sent: Message[];
    fatal: Error[];
    release: () => void;
    fail: () => void;
  } {
    const store = new MemoryNodeStore(['n1', 'n2']);
    const sent: Message[] = [];
    const n2 = new RaftNode(
      nodeOptions({
        id: 'n2',
        voters: ['n1', 'n2'],
        store,
        outbox: { send: (messages) => void sent.push(...messages) },
        onFatal: (error) => void fatal.push(error),
      }),
    );
    const fatal: Error[] = [];
    node = n2;
    let open: () => void = () => undefined;
    let broken: (error: Error) => void = () => undefined;
    store.gate = new Promise<void>((resolve, reject) => {
      open = resolve;
      broken = reject;
    });
    const release = (): void => {
      store.gate = null;
      open();
    };
    releaseGate = release;
    return { n2, store, sent, fatal, release, fail: () => broken(new Error('the disk failed')) };
  }

  const append = (index: number, count: number): Message => ({
    type: 'app',
    from: 'n1',
    to: 'n2',
    term: 1,
    index,
    logTerm: index === 0 ? 0 : 1,
    entries: Array.from({ length: count }, (_, i) => ({
      index: index + 1 + i,
      term: 1,
      type: EntryType.Normal,
      data: new Uint8Array([i]),
    })),
    commit: 0,
  });

  it('holds the answer until the entries are written, then carries their acknowledgement; the outbox never sees it', async () => {
    const { n2, store, sent, release } = follower();
    const answer = n2.receive([append(0, 3)], 'n1', true);
    expect(answer).toBeInstanceOf(Promise);
    let settled = false;
    void (answer as Promise<readonly Message[]>).then(() => (settled = true));
    await until('the Ready’s write to begin', () => store.started > 0);
    expect(settled).toBe(false); // the write has not returned: no acknowledgement may leave
    expect(store.writes).toBe(0);
    release();
    const replies = await answer;
    expect(replies).toEqual([expect.objectContaining({ type: 'appResp', to: 'n1', index: 3, reject: false })]);
    expect(store.writes).toBeGreaterThan(0);
    expect(store.lastIndex()).toBe(3);
    expect(sent.filter((m) => m.type === 'appResp')).toEqual([]);
  });

  it('without holding, the acknowledgement leaves by the outbox after the write, as before', async () => {
    const { n2, sent, release } = follower();
    expect(n2.receive([append(0, 2)], 'n1', false)).toEqual([]);
    release();
    await until('the acknowledgement', () => sent.some((m) => m.type === 'appResp'));
    expect(sent.filter((m) => m.type === 'appResp')).toEqual([expect.objectContaining({ index: 2, to: 'n1' })]);
  });

  it('a batch without appends is answered at once, whatever was asked', () => {
    const { n2 } = follower();
    const replies = n2.receive([{ type: 'heartbeat', from: 'n1', to: 'n2', term: 1, commit: 0, round: 5 }], 'n1', true);
    expect(replies).toEqual([{ type: 'heartbeatResp', from: 'n2', to: 'n1', term: 1, round: 5 }]);
  });

  it('a batch stepped while an earlier Ready is being written waits for the next Ready, not that one', async () => {
    const { n2, store, release } = follower();
    const first = n2.receive([append(0, 1)], 'n1', true);
    await until('the first Ready’s write to begin', () => store.started > 0);
    const second = n2.receive([append(1, 2)], 'n1', true);
    release();
    expect(await first).toEqual([expect.objectContaining({ type: 'appResp', index: 1 })]);
    expect(await second).toEqual([expect.objectContaining({ type: 'appResp', index: 3 })]);
  });

  it('a node whose write fails answers what it holds, without acknowledgements', async () => {
    const { n2, store, fatal, fail } = follower();
    const answer = n2.receive([append(0, 1)], 'n1', true);
    await until('the Ready’s write to begin', () => store.started > 0);
    fail();
    expect(await answer).toEqual([]);
    expect(fatal.map((e) => e.message)).toEqual(['the disk failed']);
  });
});
