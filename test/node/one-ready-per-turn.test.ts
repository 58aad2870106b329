// The driver takes one Ready per turn of the event loop (RaftNode.runLoop). A Ready that only
// applies is held in memory by NodeStorage, so its write resolves with microtasks alone: before,
// a backlog of committed entries was applied Ready after Ready in one turn (about 4,000 entries, up
// to the held limit, on a catching-up follower), whatever maxApplyBytes bounds per Ready.
import { afterEach, describe, expect, it } from 'vitest';
import { RaftNode } from '../../src/node/raft-node.js';
import { DEFAULT_MAX_APPLY_BYTES } from '../../src/raft/core.js';
import type { Entry, HardState } from '../../src/raft/types.js';
import { MemoryNodeStore, nodeOptions, until } from './helpers.js';

/**
 * A store whose writes never wait for I/O, as a held Ready's. Each write queues an immediate; the
 * next write notes whether it ran, i.e. whether the event loop turned in between.
 */
class TurnCountingStore extends MemoryNodeStore {
  /** For each write after the first: did a turn of the event loop pass since the one before? */
  readonly turnedBefore: boolean[] = [];
  readonly committedPerWrite: number[] = [];
  private turned = true;

  override async writeReady(hardState: HardState | null, entries: readonly Entry[], committed: readonly Entry[]) {
    if (this.started > 0) this.turnedBefore.push(this.turned);
    this.turned = false;
    setImmediate(() => (this.turned = true));
    this.committedPerWrite.push(committed.length);
    return super.writeReady(hardState, entries, committed);
  }
}

let node: RaftNode | undefined;
afterEach(async () => {
  await node?.stop();
  node = undefined;
});

describe('RaftNode: one Ready per turn of the event loop', () => {
  it('a backlog of committed entries is applied over several turns, not in one', async () => {
    const store = new TurnCountingStore(['n1']);
    const n1 = new RaftNode({
      ...nodeOptions({ id: 'n1', voters: ['n1'], store, outbox: { send: () => undefined }, onFatal: () => undefined }),
      tickMs: 2,
    });
    node = n1;
    n1.start();
    await until('n1 to lead', () => n1.softState.role === 'leader');
    // 300 KB of writes at once: one Ready persists them, and the applies take five or more Readies.
    const writes = Array.from({ length: 300 }, (_, i) => n1.write(new Uint8Array(1000).fill(i % 256)));
    await Promise.all(writes);
    const applyingReadies = store.committedPerWrite.filter((n) => n > 0).length;
    expect(applyingReadies).toBeGreaterThanOrEqual(Math.ceil((300 * 1024) / DEFAULT_MAX_APPLY_BYTES));
    // Every Ready after the first began in a later turn than the one before it.
    expect(store.turnedBefore.length).toBeGreaterThanOrEqual(applyingReadies);
    expect(store.turnedBefore.every((turned) => turned)).toBe(true);
  });
});
