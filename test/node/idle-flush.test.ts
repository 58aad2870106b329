// The driver writes what its store held unchanged for a whole tick (RaftNode.flushIdleHeld): an
// idle node keeps nothing in memory that a restart would have to replay, and a busy one, whose
// held changes move with every Ready, pays no extra fsync for it.
import { afterEach, describe, expect, it } from 'vitest';
import { RaftNode } from '../../src/node/raft-node.js';
import { MemoryNodeStore, nodeOptions, until } from './helpers.js';

/** A store that says it holds a Ready: `stamps` answers heldStamp at each tick. */
class HoldingStore extends MemoryNodeStore {
  reads = 0;
  flushes = 0;
  failFlush: Error | null = null;
  constructor(private readonly stamps: (read: number) => number | null) {
    super(['n1']);
  }
  get heldStamp(): number | null {
    return this.stamps(++this.reads);
  }
  async flushHeld(): Promise<void> {
    this.flushes++;
    if (this.failFlush !== null) throw this.failFlush;
  }
}

describe('RaftNode: what the store held for a whole tick is written', () => {
  let node: RaftNode | undefined;
  afterEach(async () => {
    await node?.stop();
    node = undefined;
  });

  function start(store: HoldingStore, fatal: Error[] = []): void {
    node = new RaftNode({
      ...nodeOptions({
        id: 'n1',
        voters: ['n1'],
        store,
        outbox: { send: () => undefined },
        onFatal: (e) => void fatal.push(e),
      }),
      tickMs: 2,
    });
    node.start();
  }

  it('flushes once when the same Ready stays held from one tick to the next', async () => {
    let flushed = false;
    const store = new HoldingStore(() => (flushed ? null : 7));
    const flush = store.flushHeld.bind(store);
    store.flushHeld = async () => {
      flushed = true;
      await flush();
    };
    start(store);
    await until('six ticks', () => store.reads >= 6);
    expect(store.flushes).toBe(1);
  });

  it('does not flush while every tick finds a newer Ready held (writes keep flowing)', async () => {
    const store = new HoldingStore((read) => read);
    start(store);
    await until('six ticks', () => store.reads >= 6);
    expect(store.flushes).toBe(0);
  });

  it('a failed flush stops the node, as a failed Ready does', async () => {
    const store = new HoldingStore(() => 3);
    store.failFlush = new Error('the disk failed');
    const fatal: Error[] = [];
    start(store, fatal);
    await until('the fatal error', () => fatal.length > 0);
    expect(fatal[0]?.message).toContain('the disk failed');
  });
});
