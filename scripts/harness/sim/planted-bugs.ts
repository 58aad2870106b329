// Deliberately broken variants of the core, each breaking one rule. They exist to prove that the
// simulation can fail: a checker that never catches these would give false confidence.
// Test-only: nothing in src/ imports this file.
import { RaftCore } from '../../../src/raft/core.js';
import { quorumIndex } from '../../../src/raft/quorum.js';
import { invalidChange } from '../../../src/raft/membership.js';
import type { ConfChange, ConfChangeCheck, Message, SnapshotMessage, VoteMessage } from '../../../src/raft/types.js';
import type { CoreFactory, DriverBugs } from './node.js';

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
 * request or answer under a steady leader stalls a follower's reads until the next election.
 */
export class NeverResendsForwardedReads extends RaftCore {
  protected override resendForwardedReads(): void {}
}

/**
 * Takes a snapshot whose last index its log already holds as a reason to commit up to it, without
 * checking the term there: a follower with a conflicting suffix keeps it and commits a wrong entry.
 */
class KeepsConflictingSuffixOnSnapshot extends RaftCore {
  protected override handleSnapshot(m: SnapshotMessage): void {
    const s = m.snapshot;
    if (s.index > this.log.committed && s.index <= this.log.lastIndex()) {
      this.log.commitTo(s.index);
      this.send({
        type: 'appResp',
        from: this.id,
        to: m.from,
        term: this.term,
        index: this.log.committed,
        reject: false,
        hintIndex: 0,
        hintTerm: 0,
      });
      return;
    }
    super.handleSnapshot(m);
  }
}

/**
 * Proposes a membership change while another is still in flight (skips the one-at-a-time check):
 * nodes that applied two changes and nodes that applied none use configurations two voters apart,
 * whose majorities need not intersect.
 */
class TwoChangesInFlight extends RaftCore {
  override checkConfChange(change: ConfChange): ConfChangeCheck {
    if (this.role !== 'leader') return { ok: false, error: 'not-leader', reason: 'not the leader' };
    const reason = invalidChange(change, { voters: this.voters, learners: this.learners });
    return reason === null ? { ok: true } : { ok: false, error: 'invalid-change', reason };
  }
}

/** A broken core, a broken simulated driver, or both. */
export interface PlantedBug {
  readonly factory?: CoreFactory;
  readonly driverBugs?: DriverBugs;
}

export const PLANTED_BUGS: Readonly<Record<string, PlantedBug>> = {
  'grants a second vote in a term': { factory: (config) => new GrantsSecondVote(config) },
  'commits an entry of an earlier term by counting replicas': {
    factory: (config) => new CommitsEarlierTermByCounting(config),
  },
  'answers a vote before persisting it': { factory: (config) => new AnswersVoteBeforePersisting(config) },
  'answers ReadIndex before committing in its term': { factory: (config) => new ReadsBeforeTermCommit(config) },
  'never sends a lost forwarded read again': { factory: (config) => new NeverResendsForwardedReads(config) },
  'keeps a conflicting log suffix after a snapshot': {
    factory: (config) => new KeepsConflictingSuffixOnSnapshot(config),
  },
  'labels a snapshot with an index older than its state': { driverBugs: { snapshotLabelBehind: true } },
  // The two mistakes conditional writes invite (node.ts DriverBugs): a condition decided by the
  // leader against its applied state instead of at apply time, which lets two cas from one value both
  // succeed (only the linearizability checker sees it: every node applies the same unconditional
  // entries); and records missing from snapshots, so that a node that installed one applies a retry
  // again (the state digest sees it at once: the records are part of the replicated state).
  'evaluates a condition on the leader when it proposes': { driverBugs: { conditionAtPropose: true } },
  'sends snapshots without the idempotency records': { driverBugs: { snapshotWithoutRecords: true } },
  'makes a second membership change while one is in flight': { factory: (config) => new TwoChangesInFlight(config) },
};
