import { assert } from './assert.js';
import type { Entry, HardState, SnapshotMeta } from './types.js';
import { EMPTY_HARD_STATE } from './types.js';

/**
 * The read side of durable storage, as the core sees it. Everything here must already be durable:
 * the driver updates its storage (with a synchronous write) before it calls `advance`.
 *
 * Calls are synchronous because the core is; a LevelDB-backed implementation answers from an
 * in-memory tail cache or `getSync`.
 *
 * The log held here covers [firstIndex(), lastIndex()]; (firstIndex() - 1) is the index of the
 * snapshot the log starts after (0 with no snapshot), whose term `term()` must still answer.
 */
export interface Storage {
  /** The persisted hard state (term, vote, commit) at start-up. */
  initialHardState(): HardState;
  firstIndex(): number;
  lastIndex(): number;
  /** The term of entry `index`, for firstIndex()-1 <= index <= lastIndex(). */
  term(index: number): number;
  /**
   * Entries [lo, hi), lo >= firstIndex(), hi <= lastIndex()+1, stopping before `maxBytes` is exceeded
   * but always returning at least one entry when lo < hi.
   */
  entries(lo: number, hi: number, maxBytes: number): Entry[];
  /**
   * Entries [lo, hi) for an append to a follower, like `entries`, or null when they are not in memory
   * and reading them now would hold up the caller's loop: the storage then loads them in the
   * background and its driver calls `RaftCore.entriesLoaded()` once they are there, when this call
   * answers them. Optional: storage that holds everything in memory leaves it out.
   */
  entriesToSend?(lo: number, hi: number, maxBytes: number): Entry[] | null;
  /** The snapshot the log starts after: index firstIndex() - 1 (0 before any compaction). */
  snapshotMeta(): SnapshotMeta;
}

/** Approximate wire and memory cost of an entry: its payload plus fixed overhead. */
export function entryBytes(entry: Entry): number {
  return entry.data.length + 24;
}

/** Takes entries from `source` in order while they fit in `maxBytes` (at least one). */
export function limitBytes(source: readonly Entry[], maxBytes: number): Entry[] {
  let total = 0;
  let n = 0;
  for (const entry of source) {
    total += entryBytes(entry);
    if (n > 0 && total > maxBytes) break;
    n++;
  }
  return n === source.length ? source.slice() : source.slice(0, n);
}

/**
 * Storage held in memory: used by the simulation (as the "disk" that survives a simulated crash)
 * and by unit tests. The driver-facing mutators mirror what a durable implementation does.
 */
export class MemoryStorage implements Storage {
  private hardState: HardState;
  /** log[i] holds index (snapshot.index + 1 + i). */
  private log: Entry[] = [];
  private snapshot: SnapshotMeta;

  constructor(voters: readonly string[], hardState: HardState = EMPTY_HARD_STATE) {
    this.hardState = hardState;
    this.snapshot = { index: 0, term: 0, voters };
  }

  initialHardState(): HardState {
    return this.hardState;
  }

  firstIndex(): number {
    return this.snapshot.index + 1;
  }

  lastIndex(): number {
    return this.snapshot.index + this.log.length;
  }

  term(index: number): number {
    if (index === this.snapshot.index) return this.snapshot.term;
    assert(
      index > this.snapshot.index && index <= this.lastIndex(),
      () => `MemoryStorage.term(${index}) outside [${this.snapshot.index}, ${this.lastIndex()}]`,
    );
    return this.entryAt(index).term;
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    assert(
      lo >= this.firstIndex() && hi <= this.lastIndex() + 1 && lo <= hi,
      () => `MemoryStorage.entries(${lo}, ${hi}) outside [${this.firstIndex()}, ${this.lastIndex() + 1})`,
    );
    const start = lo - this.firstIndex();
    return limitBytes(this.log.slice(start, start + (hi - lo)), maxBytes);
  }

  snapshotMeta(): SnapshotMeta {
    return this.snapshot;
  }

  // --- driver side ---------------------------------------------------------------------------

  setHardState(hardState: HardState): void {
    this.hardState = hardState;
  }

  /** Appends `entries`, replacing every stored entry from entries[0].index on. */
  append(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    assert(
      first.index >= this.firstIndex() && first.index <= this.lastIndex() + 1,
      () => `MemoryStorage.append at ${first.index} leaves a gap after ${this.lastIndex()}`,
    );
    this.log.length = first.index - this.firstIndex();
    for (const entry of entries) this.log.push(entry);
  }

  /**
   * Drops the entries up to `index`: they are covered by a snapshot of the state machine now. The
   * log then starts after `index`, whose term stays known.
   */
  compact(index: number): void {
    if (index <= this.snapshot.index) return;
    assert(
      index <= this.lastIndex(),
      () => `MemoryStorage.compact(${index}) beyond the last index ${this.lastIndex()}`,
    );
    const term = this.term(index);
    this.log = this.log.slice(index - this.snapshot.index);
    this.snapshot = { index, term, voters: this.snapshot.voters };
  }

  /** Replaces the whole log with a snapshot (a follower installing one the leader sent). */
  applySnapshot(snapshot: SnapshotMeta): void {
    this.log = [];
    this.snapshot = snapshot;
  }

  /** A deep-enough copy to model "what was on disk" at the moment of a simulated crash. */
  clone(): MemoryStorage {
    const copy = new MemoryStorage(this.snapshot.voters, this.hardState);
    copy.log = this.log.slice();
    copy.snapshot = this.snapshot;
    return copy;
  }

  private entryAt(index: number): Entry {
    const entry = this.log[index - this.firstIndex()];
    assert(entry !== undefined, () => `MemoryStorage: no entry ${index}`);
    return entry;
  }
}
