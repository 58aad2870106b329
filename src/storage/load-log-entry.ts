// Loading a data dir's retained log into the term index and tail cache, an entry at a time: the
// checks every load makes, whether the log is read from LevelDB (open-data-dir.ts) or replayed
// from its segment files (log-file/file-log.ts).

import type { Entry } from '../raft/types.js';
import { CorruptDataError } from './errors.js';
import type { TailCache } from './tail-cache.js';
import type { TermIndex } from './term-index.js';

/**
 * Adds the next entries of the log being loaded, in order; refuses a gap or a term below the one
 * before it. The cache gets them in one append.
 */
export function loadEntries(terms: TermIndex, cache: TailCache, entries: readonly Entry[]): void {
  for (const entry of entries) {
    assertNextLogIndex(entry.index, terms.lastIndex, terms.baseIndex);
    const lastTerm = terms.lastTerm ?? 0;
    if (entry.term < lastTerm) {
      throw new CorruptDataError(
        `log entry ${entry.index} has term ${entry.term}, below term ${lastTerm} of the entry before it`,
      );
    }
    terms.append(entry.index, entry.term);
  }
  cache.append(entries);
}

/** Refuses entry `index` unless it follows `lastIndex` (the log starting after `startIndex`). */
export function assertNextLogIndex(index: number, lastIndex: number, startIndex: number): void {
  if (index === lastIndex + 1) return;
  if (lastIndex === startIndex) {
    const what = startIndex === 0 ? 'there is no snapshot' : `the log start (the snapshot point) is ${startIndex}`;
    throw new CorruptDataError(
      `the log starts at entry ${index}, but ${what}: entries ${startIndex + 1}..${index - 1} are missing`,
    );
  }
  throw new CorruptDataError(
    `log entries ${lastIndex + 1}..${index - 1} are missing (the log jumps from ${lastIndex} to ${index})`,
  );
}
