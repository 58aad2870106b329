// A RaftNode on storage in memory, for driver tests that need no disk.
import { createLogger } from '../../src/log.js';
import type { NodeStore, RaftNodeOptions } from '../../src/node/raft-node.js';
import { MemoryStorage } from '../../src/raft/storage.js';
import type { Entry, HardState } from '../../src/raft/types.js';
import type { ApplyOutcome } from '../../src/storage/node-storage.js';

/**
 * MemoryStorage as the driver's store: every Ready "persisted" once `gate` (when set) resolves,
 * committed entries applied as no-ops.
 */
export class MemoryNodeStore extends MemoryStorage implements NodeStore {
  applied = { index: 0, term: 0 };
  /** While set, writeReady waits for it: a slow disk the test releases. */
  gate: Promise<void> | null = null;
  /** Readys whose write has begun, and those written. */
  started = 0;
  writes = 0;

  async writeReady(hardState: HardState | null, entries: readonly Entry[], committed: readonly Entry[]) {
    this.started++;
    if (this.gate !== null) await this.gate;
    if (hardState !== null) this.setHardState(hardState);
    this.append(entries);
    const last = committed[committed.length - 1];
    if (last !== undefined) this.applied = { index: last.index, term: last.term };
    const outcomes: ApplyOutcome[] = committed.map((e) => ({ index: e.index, term: e.term, op: 'noop' }));
    this.writes++;
    return { synced: true, outcomes };
  }
}

/**
 * A never-started node's options (no ticks: nothing happens that the test does not cause), the
 * timing of the shipped config, a silent logger.
 */
export function nodeOptions(
  parts: Pick<RaftNodeOptions, 'id' | 'voters' | 'store' | 'outbox' | 'onFatal'>,
): RaftNodeOptions {
  return {
    ...parts,
    tickMs: 50,
    electionTicks: 10,
    heartbeatTicks: 1,
    writeTimeoutMs: 5_000,
    readTimeoutMs: 5_000,
    logger: createLogger({ level: 'silent', pretty: false }),
  };
}

export async function until(what: string, condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}
