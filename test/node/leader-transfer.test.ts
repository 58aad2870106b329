// The driver reports a write refused during a leadership transfer as what it is (LeaderTransferError:
// the API answers 503 leader_transfer), not as "no leader is known" (NotLeaderError('') -> 503
// no_leader), which it used to. A real RaftNode and core, storage in memory, and a scripted peer.
import { afterEach, describe, expect, it } from 'vitest';
import { LeaderTransferError, NotLeaderError } from '../../src/node/errors.js';
import { RaftNode } from '../../src/node/raft-node.js';
import type { Message } from '../../src/raft/types.js';
import { MemoryNodeStore, nodeOptions, until } from './helpers.js';

let node: RaftNode | undefined;
afterEach(async () => {
  await node?.stop();
  node = undefined;
});

/**
 * n1 of the voters n1 and n2, made leader by a TimeoutNow from n2 (no ticks: the node is never
 * started, so no timer can end the transfer below while the test runs). The scripted n2 grants
 * votes and acknowledges appends, and ignores the TimeoutNow a transfer sends it.
 */
async function leaderN1(): Promise<RaftNode> {
  const peer = (m: Message): Message | undefined => {
    if (m.type === 'vote') return { type: 'voteResp', from: 'n2', to: 'n1', term: m.term, reject: false };
    if (m.type === 'app') {
      const index = m.index + m.entries.length;
      return { type: 'appResp', from: 'n2', to: 'n1', term: m.term, index, reject: false, hintIndex: 0, hintTerm: 0 };
    }
    return undefined;
  };
  const n1: RaftNode = new RaftNode(
    nodeOptions({
      id: 'n1',
      voters: ['n1', 'n2'],
      store: new MemoryNodeStore(['n1', 'n2']),
      outbox: {
        send: (messages) => {
          const answers = messages.map(peer).filter((m): m is Message => m !== undefined);
          if (answers.length > 0) setImmediate(() => n1.receive(answers));
        },
      },
      onFatal: (error) => {
        throw error;
      },
    }),
  );
  node = n1;
  void n1.receive([{ type: 'timeoutNow', from: 'n2', to: 'n1', term: 1 }]);
  await until('n1 to lead', () => n1.softState.role === 'leader');
  return n1;
}

describe('a write while the leader hands leadership over', () => {
  it('is refused with LeaderTransferError, not NotLeaderError', async () => {
    const n1 = await leaderN1();
    // A leader that is not handing over takes the write.
    await expect(n1.write(new Uint8Array([1]))).resolves.toMatchObject({ term: 2 });

    expect(n1.transferLeadership('n2')).toEqual({ ok: true });
    expect(n1.softState.role).toBe('leader');
    const refused = n1.write(new Uint8Array([2]));
    await expect(refused).rejects.toBeInstanceOf(LeaderTransferError);
    await expect(refused).rejects.not.toBeInstanceOf(NotLeaderError);
    await expect(refused).rejects.toThrow('leadership is being handed over to another node; retry shortly');
  });
});
