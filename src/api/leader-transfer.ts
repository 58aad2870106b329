// How POST /leader/transfer learns the outcome of a transfer: the core's transfer has no answer of
// its own (it sends TimeoutNow, and the target campaigns), so the old leader watches its soft state
// until the target leads, another node does, or the time is up. The core abandons a transfer that
// has not finished in one election timeout; waiting about two covers that and the target's election.
import { setTimeout as sleep } from 'node:timers/promises';
import type { SoftState } from '../raft/types.js';

export type TransferOutcome =
  /** The target leads, in `term`. */
  | { readonly kind: 'done'; readonly term: number }
  /** Another node than the target leads. */
  | { readonly kind: 'other'; readonly leader: string; readonly term: number }
  /** Time is up and this node still leads: the transfer was abandoned. */
  | { readonly kind: 'not-moved' }
  /** Time is up and no leader is known: an election is under way; the outcome is unknown. */
  | { readonly kind: 'no-leader' };

/**
 * Polls `soft` every `pollMs` (a tick: the soft state changes only when the node's loop runs) until
 * the transfer from `selfId` to `target` has an outcome, for at most `timeoutMs`.
 */
export async function awaitTransfer(
  soft: () => SoftState,
  selfId: string,
  target: string,
  timeoutMs: number,
  pollMs: number,
): Promise<TransferOutcome> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const state = soft();
    if (state.leader === target) return { kind: 'done', term: state.term };
    if (state.leader !== '' && state.leader !== selfId)
      return { kind: 'other', leader: state.leader, term: state.term };
    const left = deadline - Date.now();
    if (left <= 0) return state.leader === selfId ? { kind: 'not-moved' } : { kind: 'no-leader' };
    await sleep(Math.min(pollMs, left));
  }
}
