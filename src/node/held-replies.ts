// Answers to peer requests held until the appends they brought are on disk, so that the
// acknowledgements ride in the answer (the peer transport's `heartbeat,append` replies) instead of
// in a request of this node's own: one peer request per append instead of two.
//
// Invariant: an acknowledgement leaves in an answer no earlier than it would have left by the
// outbox, i.e. after the Ready holding it was written with `sync: true`. A held answer is due at
// the first Ready taken after its batch was stepped: that Ready holds every acknowledgement the
// batch produced (the core queues them as it steps, and ready() takes them all). If no Ready
// comes (the batch produced nothing to persist) or the node stops, the answer goes without them.

import type { Message, NodeId } from '../raft/types.js';

/** Answers held at most; beyond, a batch is answered at once and acknowledged by a request of ours. */
export const MAX_HELD_REPLIES = 64;

interface Held {
  readonly peer: NodeId;
  /** Readys taken when the batch was stepped: due at the next one. */
  readonly after: number;
  readonly replies: Message[];
  readonly resolve: (replies: readonly Message[]) => void;
}

export class HeldReplies {
  private held: Held[] = [];

  get size(): number {
    return this.held.length;
  }

  /**
   * Holds the answer to `peer`'s batch, stepped after `after` Readys were taken, starting with
   * `now` (what it may carry at once). Null when too many are held: answer `now` at once.
   */
  hold(peer: NodeId, now: readonly Message[], after: number): Promise<readonly Message[]> | null {
    if (this.held.length >= MAX_HELD_REPLIES) return null;
    return new Promise((resolve) => this.held.push({ peer, after, replies: [...now], resolve }));
  }

  /**
   * Ready number `seq` is on disk: every answer due at it takes that Ready's acknowledgements to
   * its peer and goes. Returns the rest of `persisted`, for the outbox.
   */
  answerDue(seq: number, persisted: readonly Message[]): readonly Message[] {
    if (this.held.length === 0) return persisted;
    const due: Held[] = [];
    const waiting: Held[] = [];
    for (const h of this.held) (h.after < seq ? due : waiting).push(h);
    if (due.length === 0) return persisted;
    this.held = waiting;
    const rest: Message[] = [];
    for (const m of persisted) {
      // Heartbeat acknowledgements never wait for a persist (the core's SEND_BEFORE_PERSIST): they
      // were taken at once (`now` in hold), so only append acknowledgements are looked for here.
      const answer = m.type === 'appResp' ? due.find((h) => h.peer === m.to) : undefined;
      if (answer === undefined) rest.push(m);
      else answer.replies.push(m);
    }
    for (const h of due) h.resolve(h.replies);
    return rest;
  }

  /** Answers every held request with what it has (no Ready is coming, or the node stopped). */
  releaseAll(): void {
    if (this.held.length === 0) return;
    const all = this.held;
    this.held = [];
    for (const h of all) h.resolve(h.replies);
  }
}
