// Log entries below the tail cache, loaded off the loop for appends to a follower that is far behind.
//
// Reading an old entry with getSync costs ~8 us and decoding it ~3 us: streaming a backlog of
// megabytes that way blocked a leader's loop past an election timeout. Instead, `get` answers only
// from segments already in memory; on a miss it starts loading a segment (a LevelDB iterator, a
// chunk of entries per turn of the event loop) and answers null, and `onLoaded` tells the driver to
// ask again. While a follower consumes a segment, the next one is loaded ahead of it.
//
// Invariants:
//  - every segment is a contiguous run of entries of the durable log as it is now: a truncation of
//    the log drops what it replaced (`truncateFrom`), and a load that overlaps a truncation made
//    while it ran is discarded;
//  - at most `maxSegments` segments of about `segmentBytes` each are held, and at most
//    `maxLoads` loads run at once: memory and background work are bounded however many followers lag.

import type { Entry } from '../raft/types.js';
import { entryBytes } from '../raft/storage.js';

/** Reads entries [lo, hi) of the log, stopping once `maxBytes` is reached (at least one entry). */
export type LoadRange = (lo: number, hi: number, maxBytes: number) => Promise<Entry[]>;

export interface ReadAheadOptions {
  readonly load: LoadRange;
  /** Called after a load completed and its entries can be asked for. */
  readonly onLoaded: () => void;
  /** Called when a load failed: the storage is then in an unknown state. */
  readonly onError: (error: unknown) => void;
  readonly segmentBytes?: number;
  readonly maxSegments?: number;
  readonly maxLoads?: number;
}

interface Segment {
  readonly first: number;
  entries: Entry[];
  lastUsed: number;
}

interface Load {
  readonly lo: number;
  readonly hi: number;
  /** Cleared by a truncation at or below `hi`: the result no longer matches the log. */
  valid: boolean;
}

export class LogReadAhead {
  private segments: Segment[] = [];
  private loads: Load[] = [];
  private uses = 0;
  private readonly segmentBytes: number;
  private readonly maxSegments: number;
  private readonly maxLoads: number;

  constructor(private readonly options: ReadAheadOptions) {
    this.segmentBytes = options.segmentBytes ?? 4 << 20;
    this.maxSegments = options.maxSegments ?? 4;
    this.maxLoads = options.maxLoads ?? 2;
  }

  /** Segments held (for tests and stats). */
  get size(): number {
    return this.segments.length;
  }

  /**
   * Entries [lo, hi) up to `maxBytes` (at least one) from a loaded segment, possibly fewer than asked
   * when the segment ends first. Null when no segment holds `lo`: a load of [lo, hi) has started
   * (or was already running), and `onLoaded` follows.
   */
  get(lo: number, hi: number, maxBytes: number): Entry[] | null {
    const segment = this.segments.find((s) => s.first <= lo && lo < s.first + s.entries.length);
    if (segment === undefined) {
      this.startLoad(lo, hi);
      return null;
    }
    segment.lastUsed = ++this.uses;
    const from = lo - segment.first;
    const end = Math.min(segment.entries.length, hi - segment.first);
    const out: Entry[] = [];
    let total = 0;
    for (let i = from; i < end; i++) {
      const entry = segment.entries[i]!;
      total += entryBytes(entry);
      if (out.length > 0 && total > maxBytes) break;
      out.push(entry);
    }
    // Past the middle of a segment: load the next one while this one is consumed.
    const segmentEnd = segment.first + segment.entries.length;
    if (from >= segment.entries.length / 2 && segmentEnd < hi) this.startLoad(segmentEnd, hi);
    return out;
  }

  /** The log is replacing every entry from `index` on. */
  truncateFrom(index: number): void {
    for (const load of this.loads) if (load.hi > index) load.valid = false;
    const kept: Segment[] = [];
    for (const s of this.segments) {
      if (s.first >= index) continue;
      if (s.first + s.entries.length > index) s.entries = s.entries.slice(0, index - s.first);
      kept.push(s);
    }
    this.segments = kept;
  }

  /** The log was compacted: entries below `index` are gone. */
  truncateBelow(index: number): void {
    this.segments = this.segments.filter((s) => s.first + s.entries.length > index);
  }

  clear(): void {
    for (const load of this.loads) load.valid = false;
    this.segments = [];
  }

  private startLoad(lo: number, hi: number): void {
    if (lo >= hi) return;
    if (this.loads.some((l) => l.valid && l.lo <= lo && lo < l.hi)) return; // already on its way
    if (this.segments.some((s) => s.first <= lo && lo < s.first + s.entries.length)) return;
    if (this.loads.length >= this.maxLoads) return; // the next miss after one finishes asks again
    const load: Load = { lo, hi, valid: true };
    this.loads.push(load);
    this.options.load(lo, hi, this.segmentBytes).then(
      (entries) => {
        this.loads = this.loads.filter((l) => l !== load);
        if (!load.valid || entries.length === 0) return;
        this.remember({ first: lo, entries, lastUsed: ++this.uses });
        this.options.onLoaded();
      },
      (error: unknown) => {
        this.loads = this.loads.filter((l) => l !== load);
        this.options.onError(error);
      },
    );
  }

  private remember(segment: Segment): void {
    this.segments.push(segment);
    while (this.segments.length > this.maxSegments) {
      let oldest = 0;
      for (let i = 1; i < this.segments.length; i++) {
        if (this.segments[i]!.lastUsed < this.segments[oldest]!.lastUsed) oldest = i;
      }
      this.segments.splice(oldest, 1);
    }
  }
}
