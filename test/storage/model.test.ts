// NodeStorage against the reference MemoryStorage: random sequences of persists (appends, and
// truncations of a conflicting suffix, as a new leader causes them), with reopens in between. After
// every step both must answer lastIndex, term() and entries() alike; a small tail cache makes the
// reads cross from memory to LevelDB.
import fs from 'node:fs/promises';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MemoryStorage } from '../../src/raft/storage.js';
import type { Entry, HardState } from '../../src/raft/types.js';
import { NodeStorage } from '../../src/storage/node-storage.js';
import { CLUSTER, entry, makeTempDir } from './helpers.js';

type Step =
  | { kind: 'persist'; at: number; count: number; termStep: number; split: number; payload: number; hardState: boolean }
  | { kind: 'reopen' };

const stepArbitrary: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant('persist' as const),
      /** Where the new entries start, as a fraction of the way from the first writable index to the end. */
      at: fc.double({ min: 0, max: 1, noNaN: true }),
      count: fc.integer({ min: 1, max: 6 }),
      /** The new entries' term, above the term of the entry they follow (which may be below the replaced suffix's). */
      termStep: fc.integer({ min: 0, max: 2 }),
      /** Entries from this position on get one term more: a batch may span terms. */
      split: fc.integer({ min: 0, max: 6 }),
      payload: fc.integer({ min: 0, max: 60 }),
      hardState: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'reopen' as const }) },
);

function expectSameLog(actual: NodeStorage, model: MemoryStorage, probes: readonly [number, number, number][]): void {
  const last = model.lastIndex();
  expect(actual.lastIndex()).toBe(last);
  expect(actual.firstIndex()).toBe(model.firstIndex());
  expect(actual.initialHardState()).toEqual(model.initialHardState());
  for (let i = 0; i <= last; i++) expect(actual.term(i)).toBe(model.term(i));
  expect(actual.entries(1, last + 1, Infinity)).toEqual(model.entries(1, last + 1, Infinity));
  for (const [a, b, maxBytes] of probes) {
    const lo = 1 + (a % (last + 1));
    const hi = lo + (b % (last + 2 - lo));
    expect(actual.entries(lo, hi, maxBytes)).toEqual(model.entries(lo, hi, maxBytes));
  }
}

async function runSteps(steps: readonly Step[], probes: readonly [number, number, number][]): Promise<void> {
  const dir = await makeTempDir();
  const open = (): Promise<NodeStorage> =>
    NodeStorage.open({ dataDir: dir, clusterId: CLUSTER, nodeId: 'n1', voters: ['n1'], cacheBytes: 150 });
  let storage = await open();
  const model = new MemoryStorage(['n1']);
  try {
    let hardState: HardState = { term: 0, vote: '', commit: 0 };
    for (const step of steps) {
      if (step.kind === 'reopen') {
        await storage.close();
        storage = await open();
      } else {
        // Commit stays at 0, so any stored entry may be replaced, as an uncommitted suffix can be.
        const first = 1 + Math.floor(step.at * model.lastIndex() + 0.5);
        const term = Math.max(model.term(first - 1), 1) + step.termStep;
        const entries: Entry[] = [];
        for (let k = 0; k < step.count; k++) {
          entries.push(entry(first + k, term + (k >= step.split ? 1 : 0), 'x'.repeat((step.payload * (k + 1)) % 61)));
        }
        const lastTerm = entries[entries.length - 1]?.term ?? 0;
        const persistHardState = step.hardState || lastTerm > hardState.term;
        if (persistHardState) hardState = { term: Math.max(hardState.term, lastTerm), vote: 'n1', commit: 0 };
        await storage.persist(persistHardState ? hardState : null, entries);
        if (persistHardState) model.setHardState(hardState);
        model.append(entries);
      }
      expectSameLog(storage, model, probes);
    }
    await storage.close();
    storage = await open();
    expectSameLog(storage, model, probes);
  } finally {
    await storage.close().catch(() => undefined);
    await fs.rm(dir, { recursive: true, force: true });
  }
}

describe('NodeStorage against MemoryStorage', () => {
  it('agrees on lastIndex, term() and entries() for random appends and truncations, across reopens', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(stepArbitrary, { minLength: 1, maxLength: 14 }),
        fc.array(fc.tuple(fc.nat(), fc.nat(), fc.integer({ min: 0, max: 400 })), { minLength: 3, maxLength: 3 }),
        runSteps,
      ),
      { numRuns: 25 },
    );
  });
});
