import { assert } from './assert.js';

/**
 * How a leader replicates to one follower (etcd's model):
 *  - probe: we do not know where the follower's log matches ours; send one append at a time and
 *    wait for its answer (or a heartbeat response) before sending the next;
 *  - replicate: the follower is in sync; stream appends optimistically, bounded by the in-flight
 *    window so a slow follower cannot make the leader buffer without limit.
 */
export type ProgressState = 'probe' | 'replicate';

/** A ring buffer of the last index of each append in flight to one follower. */
export class Inflights {
  private readonly buffer: number[];
  private start = 0;
  private _count = 0;

  constructor(readonly capacity: number) {
    assert(capacity >= 1, 'the in-flight window must hold at least one message');
    this.buffer = new Array<number>(capacity).fill(0);
  }

  get count(): number {
    return this._count;
  }

  full(): boolean {
    return this._count === this.capacity;
  }

  add(lastIndex: number): void {
    assert(!this.full(), 'cannot add to a full in-flight window');
    this.buffer[(this.start + this._count) % this.capacity] = lastIndex;
    this._count++;
  }

  /** Frees every in-flight append whose last index is <= `index` (they were acknowledged). */
  freeLE(index: number): void {
    while (this._count > 0 && (this.buffer[this.start] ?? 0) <= index) {
      this.start = (this.start + 1) % this.capacity;
      this._count--;
    }
  }

  freeFirstOne(): void {
    if (this._count === 0) return;
    this.start = (this.start + 1) % this.capacity;
    this._count--;
  }

  reset(): void {
    this.start = 0;
    this._count = 0;
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
  /** Heard from since the last CheckQuorum round. */
  recentActive = false;
  readonly inflights: Inflights;

  constructor(next: number, maxInflight: number) {
    this.next = next;
    this.inflights = new Inflights(maxInflight);
  }

  becomeProbe(): void {
    this.state = 'probe';
    this.next = this.match + 1;
    this.probeSent = false;
    this.inflights.reset();
  }

  becomeReplicate(): void {
    this.state = 'replicate';
    this.next = this.match + 1;
    this.probeSent = false;
    this.inflights.reset();
  }

  /** Whether the leader should hold back appends to this follower for now. */
  isPaused(): boolean {
    return this.state === 'probe' ? this.probeSent : this.inflights.full();
  }

  /** Records an append carrying entries up to `lastIndex` (or none: lastIndex = next - 1). */
  sentAppend(entries: number, lastIndex: number): void {
    if (this.state === 'replicate') {
      if (entries > 0) {
        this.next = lastIndex + 1;
        this.inflights.add(lastIndex);
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
