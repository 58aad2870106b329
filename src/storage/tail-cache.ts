// The most recent log entries, kept in memory up to a byte budget. A leader streams appends from the
// tail of its log and a follower catching up after a short absence needs only recent entries, so with
// a few MiB almost every `Storage.entries` call is answered from here without touching LevelDB.
//
// Invariant: the cached entries are contiguous and, when there are any, end at the storage's last
// index: the cache is always a suffix of the durable log. Eviction takes entries from the front.

import { assert } from '../raft/assert.js';
import type { Entry } from '../raft/types.js';

/**
 * What an entry costs in memory here besides its data: the entry object, its Uint8Array (~96
 * bytes each in a leader's heap snapshot) and its ArrayBuffer (~88 bytes). Counting only the data,
 * 8 MiB of 100-byte entries would be ~68,000 entries and, by that estimate, ~23 MB.
 */
const ENTRY_OVERHEAD_BYTES = 200;

function cachedBytesOf(entry: Entry): number {
  return entry.data.length + ENTRY_OVERHEAD_BYTES;
}

export class TailCache {
  /**
   * entries[head..] are cached; the slots before head are evicted, emptied at once (an evicted
   * entry of a 1 MiB value must not stay referenced until the next compaction of the array, nor,
   * in open's replay, the whole unit buffer it is a view of), and dropped at the next compaction.
   */
  private entries: (Entry | undefined)[] = [];
  private head = 0;
  private cachedBytes = 0;

  constructor(private readonly maxBytes: number) {}

  get size(): number {
    return this.entries.length - this.head;
  }

  get bytes(): number {
    return this.cachedBytes;
  }

  /** Index of the first cached entry; undefined when the cache is empty. */
  get firstIndex(): number | undefined {
    return this.entries[this.head]?.index;
  }

  get(index: number): Entry | undefined {
    const first = this.firstIndex;
    if (first === undefined || index < first) return undefined;
    return this.entries[this.head + (index - first)];
  }

  /** Drops cached entries from `index` on, which the log is replacing. */
  truncateFrom(index: number): void {
    const first = this.firstIndex;
    if (first === undefined) return;
    if (index <= first) {
      this.clear();
      return;
    }
    const keep = this.head + (index - first);
    for (let i = keep; i < this.entries.length; i++) this.cachedBytes -= cachedBytesOf(this.entries[i]!);
    if (keep < this.entries.length) this.entries.length = keep;
  }

  /** Appends entries that extend the cached suffix (or start it when empty), then evicts to budget. */
  append(entries: readonly Entry[]): void {
    for (const entry of entries) {
      const last = this.entries[this.entries.length - 1];
      assert(
        this.size === 0 || (last !== undefined && entry.index === last.index + 1),
        () => `tail cache: entry ${entry.index} does not follow ${last?.index}`,
      );
      this.entries.push(entry);
      this.cachedBytes += cachedBytesOf(entry);
    }
    this.evictToBudget();
  }

  /** Drops cached entries up to `index` (compacted away). */
  dropThrough(index: number): void {
    while (this.head < this.entries.length && (this.entries[this.head]?.index ?? Infinity) <= index) {
      this.evictHead();
    }
    if (this.head === this.entries.length) this.clear();
  }

  clear(): void {
    this.entries = [];
    this.head = 0;
    this.cachedBytes = 0;
  }

  private evictToBudget(): void {
    while (this.cachedBytes > this.maxBytes && this.head < this.entries.length) this.evictHead();
    if (this.head === this.entries.length) {
      this.clear();
    } else if (this.head > 1024 && this.head * 2 > this.entries.length) {
      // Compact now and then, so eviction is O(1) amortized and evicted entries can be collected.
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }

  private evictHead(): void {
    this.cachedBytes -= cachedBytesOf(this.entries[this.head]!);
    this.entries[this.head] = undefined;
    this.head++;
  }
}
