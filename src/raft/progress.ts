import { assert } from './assert.js';

/**
 * How a leader replicates to one follower (etcd's model):
 *  - probe: we do not know where the follower's log matches ours; send one append at a time and
 *    wait for its answer (or a heartbeat response) before sending the next;
 *  - replicate: the follower is in sync; stream appends optimistically, bounded by the in-flight
 *    window so a slow follower cannot make the leader buffer without limit;
 *  - snapshot: the follower needs entries we compacted away; a snapshot is being sent and nothing
 *    else is, until the follower acknowledges it or the driver reports the transfer failed.
 */
export type ProgressState = 'probe' | 'replicate' | 'snapshot';

/**
 * A ring buffer of the appends in flight to one follower: the last index and the entry bytes of each.
 * Full when it holds `capacity` appends or at least `maxBytes` of entries (etcd's MaxInflightBytes).
 *
 * Why bytes as well as messages: a follower that comes back far behind is streamed up to the window
 * at once. Counted in messages only, that was 256 appends of up to 1 MiB each, more than the
 * transport holds (it dropped the oldest, the follower saw a gap and rejected, the leader fell back
 * to probing and did it again), and building them blocked the leader's loop past an election
 * timeout. The byte bound keeps what is in flight below what the transport carries.
 * Invariant: bytes is the sum of the bytes of the appends counted in count.
 */
export class Inflights {
  private readonly indices: number[];
  private readonly sizes: number[];
  private start = 0;
  private _count = 0;
  private _bytes = 0;

  /** `maxBytes` 0: no byte bound. */
  constructor(
    readonly capacity: number,
    readonly maxBytes = 0,
  ) {
    assert(capacity >= 1, 'the in-flight window must hold at least one message');
    assert(maxBytes >= 0, 'the in-flight byte bound must be >= 0');
    this.indices = new Array<number>(capacity).fill(0);
    this.sizes = new Array<number>(capacity).fill(0);
  }

  get count(): number {
    return this._count;
  }

  get bytes(): number {
    return this._bytes;
  }

  full(): boolean {
    return this._count === this.capacity || (this.maxBytes > 0 && this._bytes >= this.maxBytes);
  }

  add(lastIndex: number, bytes: number): void {
    assert(!this.full(), 'cannot add to a full in-flight window');
    const slot = (this.start + this._count) % this.capacity;
    this.indices[slot] = lastIndex;
    this.sizes[slot] = bytes;
    this._count++;
    this._bytes += bytes;
  }

  /** Frees every in-flight append whose last index is <= `index` (they were acknowledged). */
  freeLE(index: number): void {
    while (this._count > 0 && (this.indices[this.start] ?? 0) <= index) this.freeFirstOne();
  }

  freeFirstOne(): void {
    if (this._count === 0) return;
    this._bytes -= this.sizes[this.start] ?? 0;
    this.start = (this.start + 1) % this.capacity;
    this._count--;
  }

  reset(): void {
    this.start = 0;
    this._count = 0;
    this._bytes = 0;
  }
}

export class Progress {
  /** The highest index known to be replicated on this follower (durably). */
  match = 0;
  /** The next index to send. Invariant: match < next. */
  next: number;
  state: ProgressState = 'probe';
  /** In probe state: an append was sent and we wait for an answer before sending another. */
  probeSent = false;
  /** In snapshot state: the index of the snapshot being sent (at least; the driver may send a later one). */
  pendingSnapshot = 0;
  /**
   * The highest commit index sent to this follower, in an append or a heartbeat. A hint only (the
   * message may be lost): it spares a heartbeat when a follower's read needs a commit it was sent.
   */
  commitSent = 0;
  /**
   * The commit a read of this follower waits for, which could not be sent yet because the
   * follower had not acknowledged that far (RaftCore.sendCommitForRead); sent with its
   * acknowledgement.
   */
  commitWanted = 0;
  /** Heard from since the last CheckQuorum round. */
  recentActive = false;
  readonly inflights: Inflights;

  constructor(next: number, maxInflight: number, maxInflightBytes = 0) {
    this.next = next;
    this.inflights = new Inflights(maxInflight, maxInflightBytes);
  }

  /**
   * Out of snapshot state the follower is assumed to hold the snapshot it was sent (a failed transfer
   * clears pendingSnapshot first), so probing starts after it.
   */
  becomeProbe(): void {
    const next = this.state === 'snapshot' ? Math.max(this.match + 1, this.pendingSnapshot + 1) : this.match + 1;
    this.reset('probe');
    this.next = next;
  }

  becomeReplicate(): void {
    this.reset('replicate');
    this.next = this.match + 1;
  }

  becomeSnapshot(index: number): void {
    this.reset('snapshot');
    this.pendingSnapshot = index;
  }

  /** Whether the leader should hold back appends to this follower for now. */
  isPaused(): boolean {
    if (this.state === 'snapshot') return true;
    return this.state === 'probe' ? this.probeSent : this.inflights.full();
  }

  private reset(state: ProgressState): void {
    this.state = state;
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.inflights.reset();
  }

  /** Records an append carrying `entries` entries (of `bytes`) up to `lastIndex` (none: next - 1). */
  sentAppend(entries: number, lastIndex: number, bytes: number): void {
    if (this.state === 'replicate') {
      if (entries > 0) {
        this.next = lastIndex + 1;
        this.inflights.add(lastIndex, bytes);
      }
    } else {
      this.probeSent = true;
    }
  }

  /** A successful append response for `index`. Returns false when it is stale (nothing new). */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (index > this.match) {
      this.match = index;
      this.probeSent = false;
      updated = true;
    }
    this.next = Math.max(this.next, index + 1);
    return updated;
  }

  /**
   * A rejected append for `rejected` (its prevIndex), with `hint` the follower-side guess of the
   * last index that may match. Returns false when the rejection is stale and must be ignored.
   */
  maybeDecrTo(rejected: number, hint: number): boolean {
    if (this.state === 'replicate') {
      // A rejection at or below match answers an append older than what the follower acked since.
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    // In probe state only the answer to the one outstanding probe (prevIndex = next - 1) counts.
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, hint + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }
}
