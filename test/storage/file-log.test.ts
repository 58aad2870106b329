// The Raft log over its segment files (src/storage/log-file/file-log.ts),
// against a model of the log: appends, conflicting suffixes, compactions, installs, and reopens,
// including a crash between an install's switch of the state machine and the log starting over.
import fs from 'node:fs/promises';
import path from 'node:path';
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { EntryType, type Entry } from '../../src/raft/types.js';
import { StorageFatalError, StorageRefusedError } from '../../src/storage/errors.js';
import { FileLog, type RecoveredLog, type TermVote } from '../../src/storage/log-file/file-log.js';
import { SegmentFiles, type LogPoint } from '../../src/storage/log-file/segment-files.js';
import { SEGMENT_HEADER_BYTES } from '../../src/storage/log-file/segment-header.js';
import { UNIT_ALIGN_BYTES } from '../../src/storage/log-file/unit-codec.js';
import { StoreHealth } from '../../src/storage/store-health.js';
import { makeTempDir } from './helpers.js';

/** Small segments: a handful of units each, so a run crosses many. */
const SEGMENT_BYTES = SEGMENT_HEADER_BYTES + 8 * UNIT_ALIGN_BYTES;
const ADVICE = 'Restore it from a backup.';
/** A tail cache of a few entries (each costs its 60 bytes and 200 of overhead): open keeps only those. */
const CACHE_BYTES = 1000;

const dirs: string[] = [];
const opened: FileLog[] = [];

afterEach(async () => {
  for (const log of opened.splice(0)) await log.close().catch(() => undefined);
  for (const dir of dirs.splice(0)) await fs.rm(dir, { recursive: true, force: true });
});

async function logDir(): Promise<string> {
  const dir = await makeTempDir();
  dirs.push(dir);
  return path.join(dir, 'log');
}

/**
 * FileLog.open of `dir` with the state machine at `snapshot` (its applied entry too, unless given):
 * a new dir when nothing was written there yet.
 */
async function open(
  dir: string,
  snapshot: LogPoint,
  health = new StoreHealth(dir),
  applied = snapshot,
): Promise<{ log: FileLog; recovered: RecoveredLog; health: StoreHealth }> {
  const fresh = !(await fs.readdir(dir).catch(() => [])).some((name) => name.endsWith('.seg'));
  const result = await FileLog.open({
    dir,
    clusterId: 'c1',
    nodeId: 'n1',
    segmentBytes: SEGMENT_BYTES,
    health,
    snapshot,
    applied,
    fresh,
    advice: ADVICE,
    cacheBytes: CACHE_BYTES,
  });
  opened.push(result.log);
  return { ...result, health };
}

/** An entry whose data tells its index and the write that made it. */
function entry(index: number, term: number, write: number, bytes = 60): Entry {
  const data = new Uint8Array(bytes);
  new DataView(data.buffer).setUint32(0, index);
  new DataView(data.buffer).setUint32(4, write);
  return { index, term, type: EntryType.Normal, data };
}

function describeEntries(entries: readonly Entry[]): string[] {
  return entries.map((e) => {
    const view = new DataView(e.data.buffer, e.data.byteOffset, e.data.length);
    return `${e.index}@${e.term}#${view.getUint32(4)}/${e.data.length}`;
  });
}

/**
 * The model: every entry of the log by index (entries at or below the start are kept, so a log
 * that kept more than it must can still be checked), the start the state machine needs the log to
 * keep after, and the term and vote.
 */
class Model {
  entries = new Map<number, Entry>();
  last = 0;
  /** The state machine's snapshot point: the files must hold every entry after it. */
  snapshot: LogPoint = { index: 0, term: 0 };
  termVote: TermVote | null = null;
  /** The last install's point: the log can start there (or after it) but never before. */
  installed: LogPoint = { index: 0, term: 0 };

  termAt(index: number): number {
    if (index === this.snapshot.index) return this.snapshot.term;
    if (index === this.installed.index) return this.installed.term;
    return this.entries.get(index)?.term ?? 0;
  }

  range(lo: number, hi: number): Entry[] {
    const out: Entry[] = [];
    for (let i = lo; i < hi; i++) out.push(this.entries.get(i)!);
    return out;
  }
}

type Step =
  | { kind: 'append'; back: number; count: number; newTerm: boolean }
  | { kind: 'vote' }
  | { kind: 'compact'; at: number }
  | { kind: 'install'; gap: number; count: number; crash: boolean }
  | { kind: 'reopen' }
  | { kind: 'read'; from: number; span: number; maxBytes: number };

const steps: fc.Arbitrary<Step[]> = fc.array(
  fc.oneof(
    {
      weight: 8,
      arbitrary: fc.record({
        kind: fc.constant('append' as const),
        back: fc.nat(4),
        count: fc.integer({ min: 0, max: 4 }),
        newTerm: fc.boolean(),
      }),
    },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('vote' as const) }) },
    {
      weight: 2,
      arbitrary: fc.record({ kind: fc.constant('compact' as const), at: fc.double({ min: 0, max: 1, noNaN: true }) }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant('install' as const),
        gap: fc.integer({ min: 1, max: 30 }),
        count: fc.nat(3),
        crash: fc.boolean(),
      }),
    },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('reopen' as const) }) },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('read' as const),
        from: fc.double({ min: 0, max: 1, noNaN: true }),
        span: fc.integer({ min: 1, max: 12 }),
        maxBytes: fc.integer({ min: 1, max: 1000 }),
      }),
    },
  ),
  { minLength: 15, maxLength: 50 },
);

/**
 * The log open recovered, read back from the files through the unit index its replay built; its
 * term index must give every entry's term, and its tail cache must be a suffix of it.
 */
function recoveredEntries(log: FileLog, { start, terms, cache }: RecoveredLog): Entry[] {
  const entries =
    terms.lastIndex > start.index ? log.readEntriesSync(start.index + 1, terms.lastIndex + 1, Infinity) : [];
  expect(entries.map((e) => e.index)).toEqual(
    Array.from({ length: terms.lastIndex - start.index }, (_, k) => start.index + 1 + k),
  );
  for (const e of entries) {
    expect(terms.termAt(e.index)).toBe(e.term);
    const cached = cache.get(e.index);
    if (cached !== undefined) expect(describeEntries([cached])).toEqual(describeEntries([e]));
  }
  if (cache.size > 0) expect((cache.firstIndex ?? 0) + cache.size - 1).toBe(terms.lastIndex);
  expect(cache.bytes).toBeLessThanOrEqual(CACHE_BYTES);
  return entries;
}

/** What open gave back must be the model's log: every entry after a start at or below the snapshot point. */
function expectRecovered(log: FileLog, recovered: RecoveredLog, model: Model): void {
  expect(recovered.termVote).toEqual(model.termVote);
  expect(recovered.start.index).toBeLessThanOrEqual(model.snapshot.index);
  expect(recovered.start.index).toBeGreaterThanOrEqual(model.installed.index);
  expect(recovered.start.term).toBe(model.termAt(recovered.start.index));
  expect(describeEntries(recoveredEntries(log, recovered))).toEqual(
    describeEntries(model.range(recovered.start.index + 1, model.last + 1)),
  );
}

describe('the log over its segment files', () => {
  it('holds what the model holds through appends, conflicting suffixes, compactions, installs and reopens', async () => {
    await fc.assert(
      fc.asyncProperty(steps, async (plan) => {
        const dir = await logDir();
        const model = new Model();
        let { log, recovered } = await open(dir, model.snapshot);
        expectRecovered(log, recovered, model);
        let term = 1;
        let write = 0;
        /** The log's start as the files last said it (they may keep more than the model needs). */
        let start = recovered.start.index;
        const reopen = async (): Promise<void> => {
          await log.close();
          ({ log, recovered } = await open(dir, model.snapshot));
          expectRecovered(log, recovered, model);
          start = recovered.start.index;
        };
        for (const s of plan) {
          write++;
          if (s.kind === 'vote') {
            term++;
            model.termVote = { term, vote: `n${term % 3}` };
            await log.append(model.termVote, []);
          } else if (s.kind === 'append') {
            // Never replace an entry the state machine holds: those are committed.
            const from = Math.max(model.last + 1 - s.back, model.snapshot.index + 1);
            if (s.count === 0 && from === model.last + 1) continue;
            const changed = s.newTerm || model.termVote === null;
            if (changed) {
              term++;
              model.termVote = { term, vote: 'n1' };
            }
            const count = Math.max(s.count, 1);
            const added = Array.from({ length: count }, (_, k) => entry(from + k, term, write));
            const truncatedTo = from <= model.last ? { index: from - 1, term: model.termAt(from - 1) } : undefined;
            await log.append(changed ? model.termVote : null, added, truncatedTo);
            for (let i = from; i <= model.last; i++) model.entries.delete(i);
            for (const e of added) model.entries.set(e.index, e);
            model.last = from + count - 1;
          } else if (s.kind === 'compact') {
            // The state machine records its snapshot point first, then the log drops what it covers.
            const at = model.snapshot.index + Math.floor(s.at * (model.last - model.snapshot.index));
            model.snapshot = { index: at, term: model.termAt(at) };
            start = await log.compactThrough(at);
            expect(start).toBeLessThanOrEqual(at);
          } else if (s.kind === 'install') {
            term++;
            model.termVote = { term, vote: 'n2' };
            const point = { index: model.last + s.gap, term: term - 1 };
            const added = Array.from({ length: s.count }, (_, k) => entry(point.index + 1 + k, term, write));
            // The install order: the term and vote to the log, the state machine's switch, the new segment.
            await log.append(model.termVote, []);
            model.snapshot = point;
            model.installed = point;
            model.entries.clear();
            if (s.crash) {
              // The crash comes before the log started over: open must start it over itself.
              model.last = point.index;
              await reopen();
              expect(recovered.start).toEqual(point);
              continue;
            }
            await log.install(point, added);
            for (const e of added) model.entries.set(e.index, e);
            model.last = point.index + s.count;
            start = point.index;
          } else if (s.kind === 'reopen') {
            await reopen();
          } else {
            if (model.last <= start) continue;
            const lo = start + 1 + Math.floor(s.from * (model.last - start));
            const hi = Math.min(model.last + 1, lo + s.span);
            const want = (): string[] => {
              const out: Entry[] = [];
              let bytes = 0;
              for (const e of model.range(lo, hi)) {
                bytes += e.data.length + 24;
                if (out.length > 0 && bytes > s.maxBytes) break;
                out.push(e);
              }
              return describeEntries(out);
            };
            expect(describeEntries(log.readEntriesSync(lo, hi, s.maxBytes))).toEqual(want());
            expect(describeEntries(await log.loadEntries(lo, hi, s.maxBytes))).toEqual(want());
          }
        }
        await reopen();
        await log.close();
        await fs.rm(path.dirname(dir), { recursive: true, force: true });
      }),
      { numRuns: 60, endOnFailure: true },
    );
  });

  it('a compaction deletes only whole segments below the index, never the last, and the log starts at the oldest kept', async () => {
    const dir = await logDir();
    const { log } = await open(dir, { index: 0, term: 0 });
    await log.append({ term: 1, vote: 'n1' }, []);
    for (let i = 1; i <= 60; i += 3) await log.append(null, [entry(i, 1, i), entry(i + 1, 1, i), entry(i + 2, 1, i)]);
    const before = log.segments;
    expect(before.length).toBeGreaterThan(3);
    const through = before[2]!.prevIndex + 1;
    expect(await log.compactThrough(through)).toBe(before[2]!.prevIndex);
    expect(log.segments).toEqual(before.slice(2));
    // Every entry after the start is still there; the entries of deleted segments are not asked for.
    expect(describeEntries(log.readEntriesSync(before[2]!.prevIndex + 1, 61, 1 << 20)).length).toBe(
      60 - before[2]!.prevIndex,
    );
    expect(await log.compactThrough(1000)).toBe(before.at(-1)!.prevIndex);
    expect(log.segments).toEqual(before.slice(-1));
  });

  it('a read that a conflicting suffix overtakes gives back only the entries still in the log', async () => {
    const dir = await logDir();
    const { log } = await open(dir, { index: 0, term: 0 });
    await log.append({ term: 1, vote: 'n1' }, [entry(1, 1, 1), entry(2, 1, 1), entry(3, 1, 1), entry(4, 1, 1)]);
    // The read's unit comes back only after the append replaced entries 3 and 4, whatever the
    // machine's speed: the read must notice (a flake under load before this gate was added).
    const readUnit = SegmentFiles.prototype.readUnit;
    let release = (): void => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const spy = vi.spyOn(SegmentFiles.prototype, 'readUnit').mockImplementation(async function (
      this: SegmentFiles,
      location,
    ) {
      const records = await readUnit.call(this, location);
      await gate;
      return records;
    });
    try {
      const loading = log.loadEntries(1, 5, 1 << 20);
      await log.append({ term: 2, vote: 'n1' }, [entry(3, 2, 2)], { index: 2, term: 1 });
      release();
      expect(describeEntries(await loading)).toEqual(['1@1#1/60', '2@1#1/60']);
    } finally {
      spy.mockRestore();
    }
    expect(describeEntries(await log.loadEntries(1, 4, 1 << 20))).toEqual(['1@1#1/60', '2@1#1/60', '3@2#2/60']);
  });

  it('a crash inside an install, after the new segment and before the old ones were deleted: open gives the log after the snapshot', async () => {
    const dir = await logDir();
    const { log } = await open(dir, { index: 0, term: 0 });
    await log.append({ term: 2, vote: 'n1' }, [entry(1, 1, 1), entry(2, 1, 1), entry(3, 2, 1)]);
    await log.close();
    // What install does before it deletes the older segments.
    const { files } = await SegmentFiles.open(
      { dir, clusterId: 'c1', nodeId: 'n1', segmentBytes: SEGMENT_BYTES },
      { unit: () => undefined },
    );
    await files.startSegment({ index: 40, term: 2 }, [{ kind: 'snapshot', index: 40, term: 2 }]);
    await files.close();
    const { recovered } = await open(dir, { index: 40, term: 2 });
    expect(recovered.termVote).toEqual({ term: 2, vote: 'n1' });
    expect(recovered.start).toEqual({ index: 40, term: 2 });
    expect(recovered.terms.lastIndex).toBe(40);
    expect(recovered.cache.size).toBe(0);
  });

  it('refuses to open a log that starts past the state machine, or is damaged, saying what to do', async () => {
    const dir = await logDir();
    const { log } = await open(dir, { index: 0, term: 0 });
    await log.append({ term: 1, vote: 'n1' }, []);
    await log.install({ index: 50, term: 1 }, [entry(51, 1, 1)]);
    await log.close();
    // The state machine at 20 needs entries 21..50, which the log no longer has.
    await expect(open(dir, { index: 20, term: 1 })).rejects.toThrow(
      /past the state machine's snapshot point 20.*Restore it from a backup\./,
    );
    await expect(open(dir, { index: 20, term: 1 })).rejects.toBeInstanceOf(StorageRefusedError);
    // Bit rot in a unit that is not the last: corruption, not a torn write.
    const [name] = (await fs.readdir(dir)).filter((n) => n.endsWith('.seg'));
    const file = path.join(dir, name!);
    const bytes = await fs.readFile(file);
    bytes[SEGMENT_HEADER_BYTES + 20]! ^= 0xff;
    await fs.writeFile(file, bytes);
    await expect(open(dir, { index: 50, term: 1 })).rejects.toThrow(/is corrupt: .*Restore it from a backup\./);
  });

  it('refuses a dir of this format with no segment, and a log that lost the snapshot point the state machine applied past', async () => {
    const dir = await logDir();
    // Not a new dir (its identity says it ran): no segment means the log, term and vote are lost.
    await fs.mkdir(dir, { recursive: true });
    const options = {
      dir,
      clusterId: 'c1',
      nodeId: 'n1',
      segmentBytes: SEGMENT_BYTES,
      health: new StoreHealth(dir),
      advice: ADVICE,
      cacheBytes: CACHE_BYTES,
    };
    const origin = { index: 0, term: 0 };
    await expect(FileLog.open({ ...options, snapshot: origin, applied: origin, fresh: false })).rejects.toThrow(
      /holds no log segment: this node's log, term and vote are lost.*Restore it from a backup\./,
    );
    const { log } = await open(dir, origin);
    await log.append({ term: 1, vote: 'n1' }, [entry(1, 1, 1), entry(2, 1, 1)]);
    await log.close();
    // The state machine's snapshot point 5 and applied 7: entries 3..7 were in the log once.
    await expect(
      FileLog.open({ ...options, snapshot: { index: 5, term: 1 }, applied: { index: 7, term: 1 }, fresh: false }),
    ).rejects.toThrow(
      /does not hold the state machine's snapshot point 5 \(term 1\), and the state machine applied entry 7 since/,
    );
    // Nothing was started over: the log is still there for whoever looks into it.
    const again = await open(dir, origin);
    expect(describeEntries(recoveredEntries(again.log, again.recovered))).toEqual(['1@1#1/60', '2@1#1/60']);
  });

  it('a Ready larger than a unit may be is written as several units, across segments, and read back whole', async () => {
    const dir = await logDir();
    const health = new StoreHealth(dir);
    const origin = { index: 0, term: 0 };
    const openLarge = async (fresh: boolean) => {
      const result = await FileLog.open({
        dir,
        clusterId: 'c1',
        nodeId: 'n1',
        segmentBytes: 1024 * 1024,
        health,
        snapshot: origin,
        applied: origin,
        fresh,
        advice: ADVICE,
        cacheBytes: CACHE_BYTES,
      });
      opened.push(result.log);
      return result;
    };
    const { log } = await openLarge(true);
    // 3 MiB in one append: units of at most a quarter segment each.
    const big = Array.from({ length: 48 }, (_, k) => entry(k + 1, 1, 1, 64 * 1024));
    await log.append({ term: 1, vote: 'n1' }, big);
    expect(log.segments.length).toBeGreaterThan(3);
    expect(describeEntries(log.readEntriesSync(1, 49, Infinity))).toEqual(describeEntries(big));
    await log.close();
    const again = await openLarge(false);
    expect(describeEntries(recoveredEntries(again.log, again.recovered))).toEqual(describeEntries(big));
    expect(health.usable).toBe(true);
  });

  it('an I/O failure marks the store failed, and nothing runs on the log after it', async () => {
    const dir = await logDir();
    const { log, health } = await open(dir, { index: 0, term: 0 });
    await log.append({ term: 1, vote: 'n1' }, [entry(1, 1, 1)]);
    // Replacing entries without naming the entry before them is refused by the files.
    await expect(log.append(null, [entry(1, 1, 2)])).rejects.toBeInstanceOf(StorageFatalError);
    expect(health.usable).toBe(false);
    await expect(log.append(null, [entry(2, 1, 3)])).rejects.toThrow(/refused: an earlier storage operation failed/);
    expect(() => log.readEntriesSync(1, 2, 100)).toThrow(/refused/);
  });
});
