// Raft's safety properties (Figure 3 of the paper), checked incrementally as a simulated run goes:
//  - election safety: at most one leader per term;
//  - log matching: two logs with an entry of the same index and term hold the same data there and
//    agree on everything before (checked inductively: every (index, term) always has the same data
//    and the same previous term);
//  - leader completeness: a leader of term T holds every entry committed in a term before T;
//  - state machine safety: no two nodes apply different entries at one index, and every node that
//    reached index i (by applying entries or by installing a snapshot) holds the same state there
//    (a digest of the whole state machine);
//  - a node grants at most one vote per term (seen on the wire), commit never moves back, terms
//    never decrease, and a vote once persisted never changes within its term.
import type { Entry, HardState, Message, NodeId } from '../../../src/raft/types.js';
import { NONE } from '../../../src/raft/types.js';
import { describeEntry, entryBytes } from './describe-entry.js';

export class SafetyViolation extends Error {
  override readonly name = 'SafetyViolation';
}

function fail(message: string): never {
  throw new SafetyViolation(message);
}

interface ConfLike {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

export class SafetyChecker {
  private readonly leaderOfTerm = new Map<number, NodeId>();
  private readonly entryByIndexTerm = new Map<string, { data: string; prevTerm: number; entry: Entry }>();
  /** committedTerm[i]: the term of the entry committed at index i; committedIn[i]: when it was seen committed. */
  private readonly committedTerm: number[] = [];
  private readonly committedIn: number[] = [];
  private readonly appliedAt: { readonly bytes: string; readonly entry: Entry }[] = [];
  /** stateAt[i]: the digest of the state machine of the first node that reached index i. */
  private readonly stateAt = new Map<number, { node: NodeId; digest: string }>();
  private readonly commitOf = new Map<NodeId, number>();
  private readonly persistedOf = new Map<NodeId, HardState>();
  private readonly voteGranted = new Map<string, NodeId>();
  /** Highest index ever reported committed by any node. */
  maxCommitted = 0;
  leaderElections = 0;

  /**
   * A node reports that it is leader of `term`; `logTerm` reads its log, which starts at `firstIndex`
   * (entries before it are in a snapshot: applied, so committed).
   */
  onLeader(node: NodeId, term: number, logTerm: (index: number) => number | undefined, firstIndex = 1): void {
    const existing = this.leaderOfTerm.get(term);
    if (existing !== undefined && existing !== node) {
      fail(`election safety: both ${existing} and ${node} are leaders of term ${term}`);
    }
    if (existing === undefined) {
      this.leaderOfTerm.set(term, node);
      this.leaderElections++;
    }
    for (let i = Math.max(1, firstIndex - 1); i <= this.maxCommitted; i++) {
      const committedIn = this.committedIn[i];
      if (committedIn === undefined || committedIn >= term) continue;
      if (logTerm(i) !== this.committedTerm[i]) {
        fail(
          `leader completeness: ${node}, leader of term ${term}, has term ${logTerm(i)} at index ${i}, ` +
            `but an entry of term ${this.committedTerm[i]} was committed there in term ${committedIn}`,
        );
      }
    }
  }

  /** A node is about to persist `entries`; `prevTerm` is the term of the entry before the first. */
  onAppend(node: NodeId, entries: readonly Entry[], prevTerm: number): void {
    let prev = prevTerm;
    for (const e of entries) {
      const key = `${e.index}/${e.term}`;
      const data = entryBytes(e);
      const known = this.entryByIndexTerm.get(key);
      if (known === undefined) this.entryByIndexTerm.set(key, { data, prevTerm: prev, entry: e });
      else if (known.data !== data || known.prevTerm !== prev) {
        fail(
          `log matching: ${node} holds entry ${key} with data '${describeEntry(e)}' after term ${prev}, ` +
            `but another log holds '${describeEntry(known.entry)}' after term ${known.prevTerm}`,
        );
      }
      prev = e.term;
    }
  }

  /**
   * A node reports its commit index (from a Ready's hard state). Indices before its log's first index
   * came with a snapshot: the digest check (onState) covers them.
   */
  onCommit(
    node: NodeId,
    commit: number,
    currentTerm: number,
    logTerm: (index: number) => number | undefined,
    firstIndex = 1,
  ): void {
    const before = this.commitOf.get(node) ?? 0;
    if (commit < before) fail(`commit moved back on ${node}: ${before} -> ${commit}`);
    for (let i = before + 1; i <= commit; i++) {
      const term = logTerm(i);
      if (term === undefined && i < firstIndex) continue;
      if (term === undefined) fail(`${node} committed index ${i} beyond its log`);
      const known = this.committedTerm[i];
      if (known === undefined) {
        this.committedTerm[i] = term;
        this.committedIn[i] = currentTerm;
      } else if (known !== term) {
        fail(`committed entry changed: index ${i} was committed with term ${known}, ${node} committed term ${term}`);
      }
    }
    this.commitOf.set(node, commit);
    if (commit > this.maxCommitted) this.maxCommitted = commit;
  }

  /** A message left a node: a node grants at most one vote per term (the basis of election safety). */
  onSend(m: Message): void {
    // A grant is a vote for the candidate; a vote request is the candidate's vote for itself.
    let votedFor: NodeId;
    if (m.type === 'voteResp' && !m.reject) votedFor = m.to;
    else if (m.type === 'vote') votedFor = m.from;
    else return;
    const key = `${m.from}@${m.term}`;
    const before = this.voteGranted.get(key);
    if (before === undefined) this.voteGranted.set(key, votedFor);
    else if (before !== votedFor) fail(`${m.from} voted in term ${m.term} for both ${before} and ${votedFor}`);
  }

  /** A node persisted `hardState`. */
  onPersist(node: NodeId, hardState: HardState): void {
    const before = this.persistedOf.get(node);
    if (before !== undefined) {
      if (hardState.term < before.term) fail(`${node} persisted term ${hardState.term} after ${before.term}`);
      if (hardState.term === before.term && before.vote !== NONE && hardState.vote !== before.vote) {
        fail(`${node} changed its vote in term ${before.term} from ${before.vote} to ${hardState.vote}`);
      }
      if (hardState.commit < before.commit) fail(`${node} persisted commit ${hardState.commit} after ${before.commit}`);
    }
    this.persistedOf.set(node, hardState);
  }

  /** A node restarted from disk: its commit resumes from what it persisted. */
  onRestart(node: NodeId, persistedCommit: number): void {
    this.commitOf.set(node, persistedCommit);
  }

  /** A node's state machine reached `index` (applying an entry, or installing a snapshot) with state `digest`. */
  onState(node: NodeId, index: number, digest: string): void {
    const known = this.stateAt.get(index);
    if (known === undefined) this.stateAt.set(index, { node, digest });
    else if (known.digest !== digest) {
      fail(
        `state machine safety: ${node} holds state {${digest.slice(0, 120)}} at index ${index}, ${known.node} held {${known.digest.slice(0, 120)}}`,
      );
    }
  }

  /**
   * A node applied a membership change at `index`. The voters before and after may differ by one at
   * most: then every majority of one intersects every majority of the other, whichever of the two a
   * node uses. Two changes in flight at once break that for nodes that applied them at different times.
   */
  onConfChange(
    node: NodeId,
    index: number,
    before: { voters: readonly NodeId[] },
    after: { voters: readonly NodeId[] },
  ): void {
    const added = after.voters.filter((id) => !before.voters.includes(id)).length;
    const removed = before.voters.filter((id) => !after.voters.includes(id)).length;
    if (added + removed > 1) {
      fail(
        `quorum intersection: ${node} went from voters ${before.voters.join(',')} to ${after.voters.join(',')} at index ${index}`,
      );
    }
  }

  /**
   * A node's core counts votes and commits with the configuration it holds; its state machine holds
   * the one of its applied index. Once the core has applied as far as the state machine (no snapshot
   * pending), the two must be the same, or the node decides with members no other node has there.
   */
  onCoreConf(node: NodeId, index: number, core: ConfLike, state: ConfLike): void {
    const show = (c: ConfLike) =>
      `voters ${[...c.voters].sort().join(',')} learners ${[...c.learners].sort().join(',')}`;
    if (show(core) !== show(state)) {
      fail(
        `configuration safety: ${node}'s core uses ${show(core)} at applied index ${index}, its state machine holds ${show(state)}`,
      );
    }
  }

  /** A node applied `entry` to its state machine. */
  onApply(node: NodeId, entry: Entry): void {
    const bytes = `${entry.term}:${entryBytes(entry)}`;
    const known = this.appliedAt[entry.index];
    if (known === undefined) this.appliedAt[entry.index] = { bytes, entry };
    else if (known.bytes !== bytes) {
      fail(
        `state machine safety: ${node} applied '${describeEntry(entry)}' at index ${entry.index}, ` +
          `another node applied '${describeEntry(known.entry)}'`,
      );
    }
  }
}
