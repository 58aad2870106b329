// Deliberately broken variants of the core, each breaking one rule. They exist to prove that the
// simulation can fail: a checker that never catches these would give false confidence.
// Test-only: nothing in src/ imports this file.
import { RaftCore } from '../../../src/raft/core.js';
import { quorumIndex } from '../../../src/raft/quorum.js';
import type { Message, VoteMessage } from '../../../src/raft/types.js';
import type { CoreFactory } from './node.js';

/** Grants a vote to any candidate with an up-to-date log, even after voting for another in the term. */
class GrantsSecondVote extends RaftCore {
  protected override canGrantVote(m: VoteMessage): boolean {
    return super.canGrantVote(m) || (m.type === 'vote' && this.log.isUpToDate(m.index, m.logTerm));
  }
}

/** Commits whatever a quorum holds, even an entry of an earlier term (the Figure 8 mistake). */
class CommitsEarlierTermByCounting extends RaftCore {
  protected override maybeCommit(): boolean {
    const before = this.log.committed;
    const index = quorumIndex(this.voters.map((id) => this.progressOf(id).match));
    if (index <= before) return false;
    this.log.commitTo(index);
    this.onCommitAdvanced(before);
    return true;
  }
}

/** Sends its vote grant before the vote is durable: a crash in between forgets the vote. */
class AnswersVoteBeforePersisting extends RaftCore {
  protected override sendsBeforePersist(m: Message): boolean {
    return m.type === 'voteResp' || super.sendsBeforePersist(m);
  }
}

/** Serves ReadIndex before committing an entry of its term, when its commit index may be stale. */
class ReadsBeforeTermCommit extends RaftCore {
  protected override committedInCurrentTerm(): boolean {
    return true;
  }
}

/**
 * Waits forever for the answer to a forwarded read, as the core did until chaos seed 113: a lost
 * request under a steady leader stalls a follower's reads until the next election.
 */
class NeverExpiresForwardedReads extends RaftCore {
  protected override expireForwardedReads(): void {}
}

export const PLANTED_BUGS: Readonly<Record<string, CoreFactory>> = {
  'grants a second vote in a term': (config) => new GrantsSecondVote(config),
  'commits an entry of an earlier term by counting replicas': (config) => new CommitsEarlierTermByCounting(config),
  'answers a vote before persisting it': (config) => new AnswersVoteBeforePersisting(config),
  'answers ReadIndex before committing in its term': (config) => new ReadsBeforeTermCommit(config),
  'never gives up on a lost forwarded read': (config) => new NeverExpiresForwardedReads(config),
};
