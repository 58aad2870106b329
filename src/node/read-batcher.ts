// Linearizable reads, batched: at most one ReadIndex request of this node is in flight; reads that
// arrive meanwhile wait for the next request, which goes out as soon as the current one is answered.
// So one round trip to the leader (and one heartbeat round on it) serves every read that arrived
// during the previous round, however many there are.

import { randomInt } from 'node:crypto';
import type { ReadIndexResult } from '../raft/types.js';
import { NotLeaderError, OverloadedError } from './errors.js';

interface ReadWaiter {
  readonly resolve: (readIndex: number) => void;
  readonly reject: (error: Error) => void;
  readonly deadline: number;
}

export class ReadBatcher {
  private queued: ReadWaiter[] = [];
  private inFlight: { readonly ctx: number; readonly waiters: ReadWaiter[] } | null = null;
  /**
   * Request contexts are never reused, not even across restarts: a late answer to an old request
   * must never be taken for the answer to a new one (a stale read; etcd had this bug in 2025). A
   * random 47-bit start makes a collision with an answer from a previous run negligible.
   */
  private nextCtx = randomInt(2 ** 47);

  /** `onBatch` hears of every request that went out, with the number of reads it serves (metrics). */
  constructor(
    private readonly issue: (ctx: number) => ReadIndexResult,
    private readonly onBatch: (reads: number) => void = () => undefined,
  ) {}

  get size(): number {
    return this.queued.length + (this.inFlight?.waiters.length ?? 0);
  }

  enqueue(waiter: ReadWaiter): void {
    this.queued.push(waiter);
  }

  /** Sends the next request if none is in flight and reads are waiting. */
  flush(): void {
    if (this.inFlight !== null || this.queued.length === 0) return;
    const ctx = this.nextCtx++;
    const result = this.issue(ctx);
    const waiters = this.queued;
    this.queued = [];
    if (result.ok) {
      this.inFlight = { ctx, waiters };
      this.onBatch(waiters.length);
      return;
    }
    const error =
      result.error === 'no-leader'
        ? new NotLeaderError(result.leader)
        : new OverloadedError('too many reads are waiting; retry shortly');
    for (const w of waiters) w.reject(error);
  }

  /** The request `ctx` was confirmed at `readIndex`. */
  confirmed(ctx: number, readIndex: number): void {
    if (this.inFlight?.ctx !== ctx) return;
    const { waiters } = this.inFlight;
    this.inFlight = null;
    for (const w of waiters) w.resolve(readIndex);
  }

  /** The request `ctx` failed (leader changed): its reads go out again, with a new context. */
  failed(ctx: number): void {
    if (this.inFlight?.ctx !== ctx) return;
    this.queued = this.inFlight.waiters.concat(this.queued);
    this.inFlight = null;
  }

  expire(now: number, error: () => Error): void {
    const keep = (w: ReadWaiter): boolean => {
      if (w.deadline > now) return true;
      w.reject(error());
      return false;
    };
    this.queued = this.queued.filter(keep);
    if (this.inFlight !== null) {
      // Expired reads leave; the request stays in flight for the others (or an empty batch).
      const waiters = this.inFlight.waiters.filter(keep);
      this.inFlight = { ctx: this.inFlight.ctx, waiters };
    }
  }

  rejectAll(error: Error): void {
    for (const w of this.queued) w.reject(error);
    for (const w of this.inFlight?.waiters ?? []) w.reject(error);
    this.queued = [];
    this.inFlight = null;
  }
}
