// The simulation's model of a log that is not all in memory: like the real node's tail cache and
// read-ahead (src/storage/read-ahead.ts), only the newest `warmEntries` entries can be sent at once;
// older ones are "loaded" in the background (answered null, then ready after `loadSteps` steps),
// and the node then calls `RaftCore.entriesLoaded()`. So schedules exercise replication that must
// wait for storage and resume, under every fault the simulation injects.
import type { MemoryStorage, Storage } from '../../../src/raft/storage.js';
import type { Entry, HardState, SnapshotMeta } from '../../../src/raft/types.js';

export interface ColdLogParams {
  /** Entries at the end of the log that are always in memory; 0: everything is. */
  readonly warmEntries: number;
  /** Steps a background load takes. */
  readonly loadSteps: number;
  /** Entries one load brings in. */
  readonly loadEntries: number;
}

/** Loaded ranges kept at once (the real read-ahead keeps a few segments per follower). */
const MAX_LOADS = 8;

export class ColdStorageView implements Storage {
  /** Loaded ranges [lo, hi), usable once `readyAt` has passed; `announced` once the node heard. */
  private loads: { lo: number; hi: number; readyAt: number; announced: boolean }[] = [];

  constructor(
    private readonly disk: MemoryStorage,
    private readonly params: ColdLogParams,
    private readonly now: () => number,
  ) {}

  initialHardState(): HardState {
    return this.disk.initialHardState();
  }
  firstIndex(): number {
    return this.disk.firstIndex();
  }
  lastIndex(): number {
    return this.disk.lastIndex();
  }
  term(index: number): number {
    return this.disk.term(index);
  }
  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    return this.disk.entries(lo, hi, maxBytes);
  }
  snapshotMeta(): SnapshotMeta {
    return this.disk.snapshotMeta();
  }

  entriesToSend(lo: number, hi: number, maxBytes: number): Entry[] | null {
    if (this.params.warmEntries === 0 || lo > this.disk.lastIndex() - this.params.warmEntries)
      return this.disk.entries(lo, hi, maxBytes);
    const covering = this.loads.find((l) => l.lo <= lo && lo < l.hi);
    if (covering !== undefined && covering.readyAt <= this.now()) {
      return this.disk.entries(lo, Math.min(hi, covering.hi, this.disk.lastIndex() + 1), maxBytes);
    }
    if (covering === undefined) {
      this.loads.push({
        lo,
        hi: lo + this.params.loadEntries,
        readyAt: this.now() + this.params.loadSteps,
        announced: false,
      });
      if (this.loads.length > MAX_LOADS) this.loads.shift();
    }
    return null;
  }

  /** True when a load completed since the last call: the node then calls entriesLoaded(). */
  takeLoaded(): boolean {
    let any = false;
    for (const load of this.loads) {
      if (!load.announced && load.readyAt <= this.now()) {
        load.announced = true;
        any = true;
      }
    }
    return any;
  }
}
