import { quorumIndex, quorumSize } from './quorum.js';
import type { NodeId } from './types.js';

/** A ReadIndex request waiting for a quorum of heartbeat acknowledgements. */
export interface PendingRead {
  readonly from: NodeId;
  readonly ctx: number;
  /** The leader's commit index when the request arrived: the read may be served at it. */
  readonly index: number;
  /** The heartbeat round whose quorum acknowledgement proves leadership after the arrival. */
  readonly round: number;
}

/**
 * Batched ReadIndex on the leader (Raft thesis 6.4). Leadership is confirmed in numbered heartbeat
 * rounds. A request that arrives while no round is in flight starts one at once; requests that
 * arrive while one is in flight join the next round, which starts as soon as the current one is
 * confirmed. So one round trip serves every read that arrived during the previous one, and no
 * request is ever confirmed by a heartbeat sent before the request arrived.
 *
 * A round is sent only to as many followers as a quorum needs besides the leader (one of two in a
 * three-node cluster): those that acknowledged the latest rounds, so a slow or dead follower drops
 * out of the choice as soon as another one answers a later round. Every follower still gets the
 * periodic heartbeats, which carry the round in flight; so a round sent to a follower that never
 * answers is confirmed by the next periodic heartbeat at the latest. Sending every round to every
 * follower would double the cost of a read round on a three-node cluster for an acknowledgement
 * the quorum does not need.
 *
 * Invariants: confirmed <= issued; pending is sorted by round; rounds are per term (a new leader
 * starts a new ReadOnly).
 */
export class ReadOnly {
  /** The latest round whose heartbeats were sent. */
  private issued = 0;
  /** The latest round acknowledged by a quorum (the leader counts as acknowledging every round). */
  private confirmed = 0;
  private nextRoundWanted = false;
  private readonly acked = new Map<NodeId, number>();
  private pending: PendingRead[] = [];

  /** `voters` reads the configuration in force: it may change while reads wait (membership changes). */
  constructor(
    private readonly self: NodeId,
    private readonly votersNow: () => readonly NodeId[],
  ) {}

  private get voters(): readonly NodeId[] {
    return this.votersNow();
  }

  get size(): number {
    return this.pending.length;
  }

  /** The round periodic heartbeats carry: acknowledging it confirms everything issued so far. */
  get currentRound(): number {
    return this.issued;
  }

  /**
   * Queues a read. Returns the round to broadcast now, or 0 when the read waits for the round
   * after the one in flight.
   */
  add(from: NodeId, ctx: number, index: number): number {
    if (this.issued > this.confirmed) {
      this.pending.push({ from, ctx, index, round: this.issued + 1 });
      this.nextRoundWanted = true;
      return 0;
    }
    this.issued++;
    this.pending.push({ from, ctx, index, round: this.issued });
    return this.issued;
  }

  /**
   * Records that `from` acknowledged `round`. Returns the reads now confirmed (possibly none) and
   * the next round to broadcast (0 for none).
   */
  acknowledge(from: NodeId, round: number): { released: PendingRead[]; startRound: number } {
    if (round > (this.acked.get(from) ?? 0)) this.acked.set(from, round);
    return this.release();
  }

  /**
   * The followers a new round goes to: the quorum's worth that acknowledged the latest rounds; among
   * equals (a new leader has no acknowledgements yet) those `active` says were heard from lately,
   * then voter order (deterministic, like everything in the core).
   */
  roundTargets(active: (id: NodeId) => boolean): NodeId[] {
    // Only a leader asks, and a leader is a voter: the quorum needs the leader and this many more.
    const wanted = quorumSize(this.voters.length) - 1;
    return this.voters
      .filter((id) => id !== this.self)
      .map((id, order) => ({ id, order, acked: this.acked.get(id) ?? 0, active: active(id) ? 1 : 0 }))
      .sort((a, b) => b.acked - a.acked || b.active - a.active || a.order - b.order)
      .slice(0, wanted)
      .map((f) => f.id);
  }

  /** Releases what a quorum confirmed; a single-voter cluster confirms at once. */
  release(): { released: PendingRead[]; startRound: number } {
    const rounds = this.voters.map((id) => (id === this.self ? this.issued : (this.acked.get(id) ?? 0)));
    const confirmed = quorumIndex(rounds);
    if (confirmed <= this.confirmed) return { released: [], startRound: 0 };
    this.confirmed = confirmed;
    let n = 0;
    while (n < this.pending.length && (this.pending[n]?.round ?? Infinity) <= confirmed) n++;
    const released = this.pending.slice(0, n);
    this.pending = this.pending.slice(n);
    let startRound = 0;
    if (this.nextRoundWanted && this.issued === this.confirmed) {
      this.issued++;
      this.nextRoundWanted = false;
      startRound = this.issued;
    }
    return { released, startRound };
  }

  /** Everything still waiting, for failing it when leadership ends. */
  drain(): PendingRead[] {
    const all = this.pending;
    this.pending = [];
    return all;
  }
}
