// NodeStorage's held applies against a model of the key-value state: random Readies (entries alone,
// entries with applies, applies alone, which are held), flushes, scans and crashes. A crash is a
// copy of the data dir taken while the storage is open, opened and replayed from its stored
// applied index, as the driver does after a restart. After every step every key reads as the model
// says at the in-memory applied index; after a crash the replayed state is the same, and it never
// lost what a flush or a synced batch had written.
import fs from 'node:fs/promises';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Entry } from '../../src/raft/types.js';
import { encodeCommand, type Command } from '../../src/storage/command.js';
import type { KeyMeta } from '../../src/storage/key-meta.js';
import type { NodeStorage, NodeStorageOptions } from '../../src/storage/node-storage.js';
import { bytes, entry, text, useStorageFixture } from './helpers.js';

const fixture = useStorageFixture();
const KEYS = ['a', 'b', 'c'];

type Write = { key: number; value: number | null };
type Step =
  | { kind: 'append'; writes: Write[]; apply: number }
  | { kind: 'apply'; count: number; commitOnly: boolean }
  | { kind: 'flush' }
  | { kind: 'scan' }
  | { kind: 'crash' };

const write: fc.Arbitrary<Write> = fc.record({
  key: fc.integer({ min: 0, max: KEYS.length - 1 }),
  value: fc.option(fc.integer({ min: 0, max: 99 }), { freq: 4 }),
});
const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('append' as const),
      writes: fc.array(write, { minLength: 1, maxLength: 4 }),
      apply: fc.integer({ min: 0, max: 6 }),
    }),
  },
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('apply' as const),
      count: fc.integer({ min: 1, max: 3 }),
      commitOnly: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'flush' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'scan' as const }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'crash' as const }) },
);

/** The state after applying `log` up to `applied`, as etcd-style revisions: what the store must hold. */
function modelAt(log: readonly Write[], applied: number): Map<string, { value: string; meta: KeyMeta }> {
  const state = new Map<string, { value: string; meta: KeyMeta }>();
  for (let index = 1; index <= applied; index++) {
    const w = log[index - 1]!;
    const key = KEYS[w.key]!;
    const before = state.get(key);
    if (w.value === null) state.delete(key);
    else
      state.set(key, {
        value: String(w.value),
        meta: {
          createIndex: before?.meta.createIndex ?? index,
          modIndex: index,
          version: (before?.meta.version ?? 0) + 1,
        },
      });
  }
  return state;
}

function commandOf(w: Write): Command {
  const key = bytes(KEYS[w.key]!);
  return w.value === null ? { op: 'delete', key } : { op: 'put', key, value: bytes(String(w.value)) };
}

function expectState(storage: NodeStorage, log: readonly Write[], what: string): void {
  const model = modelAt(log, storage.applied.index);
  for (const key of KEYS) {
    const got = storage.getEntrySync(bytes(key));
    const want = model.get(key);
    expect(got === undefined ? undefined : { value: text(got.value), meta: got.meta }, `${what}: key ${key}`).toEqual(
      want,
    );
  }
}

async function crashAndReplay(
  storage: NodeStorage,
  log: readonly Write[],
  durable: number,
  options: Partial<NodeStorageOptions>,
): Promise<void> {
  // A copy taken while a flush beside the write path writes could be no state a crash leaves.
  await storage.flushesIdle();
  const copy = path.join(await fixture.tempDir(), 'crashed');
  await fs.cp(storage.location, copy, { recursive: true });
  const image = await fixture.open(copy, options);
  try {
    const applied = image.applied.index;
    // Whatever a synced batch or a flush wrote survives; only what was held since may be lost.
    expect(applied).toBeGreaterThanOrEqual(durable);
    expect(applied).toBeLessThanOrEqual(storage.applied.index);
    expectState(image, log, `crash image at ${applied}`);
    const rest = image.entries(applied + 1, storage.applied.index + 1, Infinity);
    if (rest.length > 0) await image.writeReady({ term: 1, vote: 'n1', commit: storage.applied.index }, [], rest);
    expect(image.applied).toEqual(storage.applied);
    expectState(image, log, 'replayed');
  } finally {
    await image.close();
  }
}

async function run(steps: readonly Step[], options: Partial<NodeStorageOptions>): Promise<void> {
  const storage = await fixture.open(await fixture.tempDir(), options);
  // With the log in files a Ready's applies are held whether it appends or not: only flushes
  // (and scans, which flush) make them durable.
  const appendsCarryApplies = options.logInFiles !== true;
  const log: Write[] = [];
  /** The applied index every synced batch or flush so far wrote: a crash may not lose it. */
  let durable = 0;
  for (const s of steps) {
    const applied = storage.applied.index;
    if (s.kind === 'append') {
      const first = log.length + 1;
      const entries: Entry[] = s.writes.map((w, i) => entry(first + i, 1, encodeCommand(commandOf(w))));
      log.push(...s.writes);
      const upTo = Math.min(applied + s.apply, log.length);
      const committed = storage.entries(applied + 1, Math.min(upTo, first - 1) + 1, Infinity);
      committed.push(...entries.slice(0, Math.max(0, upTo - first + 1)));
      await storage.writeReady({ term: 1, vote: 'n1', commit: upTo }, entries, committed);
      if (appendsCarryApplies) durable = storage.applied.index;
    } else if (s.kind === 'apply') {
      const upTo = Math.min(applied + s.count, log.length);
      if (upTo === applied) continue;
      const committed = storage.entries(applied + 1, upTo + 1, Infinity);
      const result = await storage.writeReady(
        s.commitOnly ? { term: 1, vote: 'n1', commit: upTo } : null,
        [],
        committed,
      );
      if (result.synced && appendsCarryApplies) durable = storage.applied.index;
    } else if (s.kind === 'flush') {
      await storage.flushHeld();
      durable = storage.applied.index;
      expect(storage.heldStamp).toBeNull();
    } else if (s.kind === 'scan') {
      const page = await storage.scan({ limit: 10 });
      durable = storage.applied.index;
      const model = modelAt(log, storage.applied.index);
      expect(page.entries.map(([k, v]) => [text(k), text(v)])).toEqual(
        [...model.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([k, e]) => [k, e.value]),
      );
    } else {
      await crashAndReplay(storage, log, durable, options);
    }
    expectState(storage, log, `after ${s.kind}`);
  }
  await crashAndReplay(storage, log, durable, options);
}

/** Small segments, so that runs cross several (and opens write little). */
const SEGMENT_BYTES = 64 * 1024;

const MODES: readonly [string, Partial<NodeStorageOptions>][] = [
  ['the log in LevelDB', {}],
  // Every hold starts a flush beside the write path: flushes and Readies interleave.
  ['the log in files, flushing beside every Ready', { logInFiles: true, flushAfterMs: 0, segmentBytes: SEGMENT_BYTES }],
  [
    'the log in files, flushing only when asked',
    { logInFiles: true, flushAfterMs: 60_000, segmentBytes: SEGMENT_BYTES },
  ],
];

describe.each(MODES)('NodeStorage: held applies against a model of the state, %s', (_, options) => {
  it('reads, flushes, scans and crash replays agree with the model for random Readies', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 16 }), (steps) => run(steps, options)),
      { numRuns: 30 },
    );
  }, 60_000);
});
