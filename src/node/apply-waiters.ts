// Client writes waiting for their log entry to be applied, and reads waiting for an applied index.
// Both are settled strictly by what the state machine applied, never by guesses about leadership.

import type { RequestAnswer } from '../storage/apply-request.js';
import { WriteLostError } from './errors.js';

interface Deferred<T> {
  readonly resolve: (value: T) => void;
  readonly reject: (error: Error) => void;
  readonly deadline: number;
}

export interface WriteResult {
  readonly index: number;
  readonly term: number;
  /** What a request (a conditional write, a transaction, an idempotent write) did; absent for plain writes. */
  readonly answer?: RequestAnswer;
}

/**
 * Writes by log index. A write proposed at (index, term) succeeded iff the entry applied at `index`
 * has that term: the same (index, term) is the same entry (log matching). Any other term at that
 * index means the write's entry was overwritten and can never be applied anywhere.
 */
export class WriteWaiters {
  private readonly byIndex = new Map<number, (Deferred<WriteResult> & { term: number })[]>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  add(index: number, term: number, waiter: Deferred<WriteResult>): void {
    const list = this.byIndex.get(index);
    const entry = { ...waiter, term };
    if (list === undefined) this.byIndex.set(index, [entry]);
    else list.push(entry);
    this.count++;
  }

  /** The state machine applied the entry (index, term); `answer`: what it did, when it was a request. */
  applied(index: number, term: number, answer?: RequestAnswer): void {
    const list = this.byIndex.get(index);
    if (list === undefined) return;
    this.byIndex.delete(index);
    this.count -= list.length;
    for (const w of list) {
      if (w.term === term) w.resolve(answer === undefined ? { index, term } : { index, term, answer });
      else w.reject(new WriteLostError(index));
    }
  }

  /** Rejects (with `error(index)`) every waiter whose deadline passed. */
  expire(now: number, error: (index: number) => Error): void {
    for (const [index, list] of this.byIndex) {
      const keep = list.filter((w) => {
        if (w.deadline > now) return true;
        w.reject(error(index));
        return false;
      });
      this.count -= list.length - keep.length;
      if (keep.length === 0) this.byIndex.delete(index);
      else if (keep.length !== list.length) this.byIndex.set(index, keep);
    }
  }

  rejectAllWith(error: (index: number) => Error): void {
    for (const [index, list] of this.byIndex) for (const w of list) w.reject(error(index));
    this.byIndex.clear();
    this.count = 0;
  }
}

/** Callers waiting for the applied index to reach a target (reads after their read index). */
export class AppliedWaiters {
  private waiting: (Deferred<void> & { index: number })[] = [];

  get size(): number {
    return this.waiting.length;
  }

  add(index: number, waiter: Deferred<void>): void {
    this.waiting.push({ ...waiter, index });
  }

  applied(appliedIndex: number): void {
    if (this.waiting.length === 0) return;
    const still: typeof this.waiting = [];
    for (const w of this.waiting) {
      if (w.index <= appliedIndex) w.resolve();
      else still.push(w);
    }
    this.waiting = still;
  }

  expire(now: number, error: () => Error): void {
    if (this.waiting.length === 0) return;
    this.waiting = this.waiting.filter((w) => {
      if (w.deadline > now) return true;
      w.reject(error());
      return false;
    });
  }

  rejectAll(error: Error): void {
    for (const w of this.waiting) w.reject(error);
    this.waiting = [];
  }
}
