// The tail cache (src/storage/tail-cache.ts): a suffix of the log within a byte budget, whose
// evicted entries are let go at once.

import { describe, expect, it } from 'vitest';
import { EntryType, type Entry } from '../../src/raft/types.js';
import { TailCache } from '../../src/storage/tail-cache.js';

function entry(index: number, bytes: number): Entry {
  return { index, term: 1, type: EntryType.Normal, data: new Uint8Array(bytes) };
}

/** The entries the cache still references, evicted slots included (white-box: what the GC sees). */
function referenced(cache: TailCache): number {
  return (cache as unknown as { entries: (Entry | undefined)[] }).entries.filter((e) => e !== undefined).length;
}

describe('the tail cache', () => {
  it('keeps a suffix within its budget, and references nothing it evicted', () => {
    // Budget for three entries of 1 MiB (each costs its data and 200 bytes).
    const cache = new TailCache(3 * (1024 * 1024 + 200));
    for (let i = 1; i <= 50; i++) cache.append([entry(i, 1024 * 1024)]);
    expect(cache.size).toBe(3);
    expect(cache.firstIndex).toBe(48);
    expect(cache.get(47)).toBeUndefined();
    expect(cache.get(50)?.index).toBe(50);
    // Before: the 47 evicted 1 MiB entries stayed referenced until 1,024 had been evicted.
    expect(referenced(cache)).toBe(3);
    cache.dropThrough(48);
    expect(cache.firstIndex).toBe(49);
    expect(referenced(cache)).toBe(2);
    cache.truncateFrom(50);
    expect(cache.size).toBe(1);
    cache.append([entry(50, 10), entry(51, 10)]);
    expect(cache.size).toBe(3);
    expect(referenced(cache)).toBe(3);
  });
});
