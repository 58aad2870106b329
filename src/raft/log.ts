import { assert } from './assert.js';
import { limitBytes, type Storage } from './storage.js';
import type { Entry, SnapshotMeta } from './types.js';

/**
 * The Raft log as the core sees it: the durable entries in `Storage`, followed by an in-memory
 * `unstable` tail the driver has not persisted yet, plus the commit and applied indices.
 *
 * Invariants:
 *  - storage holds [firstIndex, offset - 1] as this log sees it (storage may still hold a stale
 *    suffix beyond offset - 1 after a truncation; it is never read and the next persist replaces it);
 *  - with a snapshot to install (`pendingSnapshot`, a follower's), storage is not read at all: the
 *    log is the snapshot followed by `unstable`, and offset = pendingSnapshot.index + 1;
 *  - unstable[i] has index offset + i, and indices are contiguous;
 *  - applied <= committed <= lastIndex();
 *  - entries up to `committed` are never truncated (that would lose a committed entry).
 */
export class RaftLog {
  private unstable: Entry[] = [];
  /** A snapshot received and not yet installed by the driver (handed out in a Ready until then). */
  private pendingSnapshot: SnapshotMeta | null = null;
  /** Index of unstable[0]; storage.lastIndex() + 1 when nothing is unstable. */
  private offset: number;
  private _committed: number;
  private _applied: number;

  constructor(
    private readonly storage: Storage,
    committed: number,
    applied: number,
  ) {
    this.offset = storage.lastIndex() + 1;
    const snapshotIndex = storage.firstIndex() - 1;
    assert(
      committed <= storage.lastIndex(),
      () => `commit ${committed} is beyond the last stored index ${storage.lastIndex()}`,
    );
    this._committed = Math.max(committed, snapshotIndex);
    assert(
      applied >= snapshotIndex && applied <= this._committed,
      () => `applied ${applied} must be within [${snapshotIndex}, ${this._committed}]`,
    );
    this._applied = applied;
  }

  get committed(): number {
    return this._committed;
  }

  get applied(): number {
    return this._applied;
  }

  firstIndex(): number {
    return this.pendingSnapshot !== null ? this.pendingSnapshot.index + 1 : this.storage.firstIndex();
  }

  lastIndex(): number {
    if (this.unstable.length > 0) return this.offset + this.unstable.length - 1;
    return this.pendingSnapshot !== null ? this.pendingSnapshot.index : this.storage.lastIndex();
  }

  /** The last index known to be durable and consistent with this log. */
  stableLastIndex(): number {
    if (this.pendingSnapshot !== null) return 0; // nothing of this log is on disk until the snapshot is
    return this.unstable.length > 0 ? this.offset - 1 : this.storage.lastIndex();
  }

  lastTerm(): number {
    const term = this.term(this.lastIndex());
    assert(term !== undefined, 'the last entry of the log must have a term');
    return term;
  }

  /** The term of entry `index`, or undefined when it is beyond the log or compacted away. */
  term(index: number): number | undefined {
    if (index >= this.offset && this.unstable.length > 0) {
      return this.unstable[index - this.offset]?.term;
    }
    if (index > this.lastIndex()) return undefined;
    if (this.pendingSnapshot !== null)
      return index === this.pendingSnapshot.index ? this.pendingSnapshot.term : undefined;
    if (index < this.storage.firstIndex() - 1) return undefined;
    return this.storage.term(index);
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /** Raft 5.4.1: a candidate's log is at least as up to date as ours. */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const ourTerm = this.lastTerm();
    return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex());
  }

  /**
   * Follower side of AppendEntries: if our log has (prevIndex, prevTerm), append `entries` after it,
   * truncating a conflicting suffix, advance commit to min(leaderCommit, last new index), and return
   * that last new index. Returns null when the consistency check fails.
   */
  maybeAppend(prevIndex: number, prevTerm: number, leaderCommit: number, entries: readonly Entry[]): number | null {
    if (!this.matchTerm(prevIndex, prevTerm)) return null;
    const lastNew = prevIndex + entries.length;
    const conflict = this.findConflict(entries);
    if (conflict !== 0) {
      assert(
        conflict > this._committed,
        () => `entry ${conflict} conflicts with the committed prefix (commit ${this._committed})`,
      );
      this.append(entries.slice(conflict - (prevIndex + 1)));
    }
    this.commitTo(Math.min(leaderCommit, lastNew));
    return lastNew;
  }

  /** The index of the first entry that is new or conflicts with ours; 0 when all are present. */
  findConflict(entries: readonly Entry[]): number {
    for (const entry of entries) {
      if (!this.matchTerm(entry.index, entry.term)) return entry.index;
    }
    return 0;
  }

  /**
   * The largest index <= `index` whose term is <= `term`. Used on both sides of a rejected append
   * so the leader can skip back a whole term at a time instead of one entry per round trip.
   */
  findConflictByTerm(index: number, term: number): number {
    let i = Math.min(index, this.lastIndex());
    for (;;) {
      const t = this.term(i);
      if (t === undefined || t <= term) return i;
      i--;
    }
  }

  /** Appends entries to the unstable tail, truncating whatever followed entries[0].index - 1. */
  append(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    assert(first.index > this._committed, () => `append at ${first.index} would overwrite commit ${this._committed}`);
    assert(
      first.index <= this.lastIndex() + 1,
      () => `append at ${first.index} leaves a gap after ${this.lastIndex()}`,
    );
    if (first.index === this.offset + this.unstable.length) {
      // The common case: extending the tail.
      for (const entry of entries) this.unstable.push(entry);
    } else if (first.index <= this.offset) {
      // Replacing everything unstable and part of what storage holds: storage is only read up to
      // offset - 1 from now on, and the next persist truncates its stale suffix.
      this.offset = first.index;
      this.unstable = entries.slice();
    } else {
      this.unstable.length = first.index - this.offset;
      for (const entry of entries) this.unstable.push(entry);
    }
    this.assertContiguous(entries);
  }

  /**
   * Replaces the whole log with `snapshot` (a follower's: the leader sent it because this log lacks
   * entries it compacted away, or conflicts with it). Everything up to its index is committed.
   */
  restore(snapshot: SnapshotMeta): void {
    assert(
      snapshot.index > this._committed,
      () => `snapshot ${snapshot.index} is not beyond commit ${this._committed}`,
    );
    this.pendingSnapshot = snapshot;
    this.unstable = [];
    this.offset = snapshot.index + 1;
    this._committed = snapshot.index;
  }

  /** The snapshot the driver must install, if any. */
  snapshotToInstall(): SnapshotMeta | null {
    return this.pendingSnapshot;
  }

  /** The driver installed `snapshot`: storage now starts after it, and the state machine is at it. */
  snapshotInstalled(snapshot: SnapshotMeta): void {
    if (this.pendingSnapshot === null || this.pendingSnapshot.index !== snapshot.index) return;
    this.pendingSnapshot = null;
    this._applied = snapshot.index;
  }

  /** Entries [lo, hi) limited to `maxBytes` (at least one entry when lo < hi). */
  slice(lo: number, hi: number, maxBytes: number): Entry[] {
    assert(lo >= this.firstIndex() && hi <= this.lastIndex() + 1, () => `slice [${lo}, ${hi}) out of range`);
    if (lo >= hi) return [];
    let out: Entry[] = [];
    if (lo < this.offset) {
      const storedHi = Math.min(hi, this.offset);
      out = this.storage.entries(lo, storedHi, maxBytes);
      if (out.length < storedHi - lo) return out; // the byte limit was reached inside storage
    }
    if (hi > this.offset) {
      const tail = this.unstable.slice(Math.max(lo, this.offset) - this.offset, hi - this.offset);
      out = out.length === 0 ? tail : out.concat(tail);
    }
    return limitBytes(out, maxBytes);
  }

  /**
   * Entries from `lo` to the end of the log for an append, limited to `maxBytes`; null when storage
   * does not hold them in memory and loads them off the loop (`Storage.entriesToSend`).
   */
  entriesToSend(lo: number, maxBytes: number): Entry[] | null {
    const last = this.lastIndex();
    if (lo > last) return [];
    if (lo >= this.offset || this.storage.entriesToSend === undefined) return this.slice(lo, last + 1, maxBytes);
    const storedHi = Math.min(last + 1, this.offset);
    const stored = this.storage.entriesToSend(lo, storedHi, maxBytes);
    if (stored === null) return null;
    if (stored.length < storedHi - lo || last < this.offset) return stored; // the byte limit, or nothing unstable
    return limitBytes(stored.concat(this.unstable), maxBytes);
  }

  /** Entries from `lo` to the end of the log, limited to `maxBytes`. */
  entriesFrom(lo: number, maxBytes: number): Entry[] {
    return lo > this.lastIndex() ? [] : this.slice(lo, this.lastIndex() + 1, maxBytes);
  }

  commitTo(index: number): void {
    if (index <= this._committed) return; // commit never moves back
    assert(index <= this.lastIndex(), () => `commit ${index} is beyond the last index ${this.lastIndex()}`);
    this._committed = index;
  }

  /** Leader side: commit `index` only if it is an entry of the leader's own `term` (Raft 5.4.2). */
  maybeCommit(index: number, term: number): boolean {
    if (index > this._committed && this.term(index) === term) {
      this.commitTo(index);
      return true;
    }
    return false;
  }

  appliedTo(index: number): void {
    assert(
      index >= this._applied && index <= this._committed,
      () => `applied ${index} must be within [${this._applied}, ${this._committed}]`,
    );
    this._applied = index;
  }

  hasUnstable(): boolean {
    return this.unstable.length > 0 || this.pendingSnapshot !== null;
  }

  /** Whether committed entries wait to be applied (not while a snapshot waits to be installed). */
  hasNextCommittedEntries(): boolean {
    return this._committed > this._applied && this.pendingSnapshot === null;
  }

  unstableEntries(): Entry[] {
    return this.unstable.slice();
  }

  /** Committed entries not yet applied, limited to `maxBytes`; none while a snapshot waits to be installed. */
  nextCommittedEntries(maxBytes: number): Entry[] {
    if (this._committed <= this._applied || this.pendingSnapshot !== null) return [];
    return this.slice(this._applied + 1, this._committed + 1, maxBytes);
  }

  /**
   * The driver persisted entries up to (index, term). They leave the unstable tail unless the tail
   * changed meanwhile (a new leader truncated it): then the term no longer matches and the newer
   * entries stay unstable for the next Ready.
   */
  stableTo(index: number, term: number): void {
    if (index < this.offset || index >= this.offset + this.unstable.length) return;
    if (this.unstable[index - this.offset]?.term !== term) return;
    this.unstable = this.unstable.slice(index - this.offset + 1);
    this.offset = index + 1;
  }

  private assertContiguous(entries: readonly Entry[]): void {
    for (let i = 1; i < entries.length; i++) {
      const prev = entries[i - 1];
      const cur = entries[i];
      assert(
        prev !== undefined && cur !== undefined && cur.index === prev.index + 1 && cur.term >= prev.term,
        'appended entries must have contiguous indices and non-decreasing terms',
      );
    }
  }
}
