// The segment files of the log (src/storage/log-file/segment-files.ts):
// what is appended is read back after a reopen, across segments; a torn last write is dropped and
// the log goes on after it; whatever else is wrong with the files refuses the open, saying where.
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { EntryType, type Entry } from '../../src/raft/types.js';
import { CorruptDataError, StorageRefusedError } from '../../src/storage/errors.js';
import { SEGMENT_HEADER_BYTES } from '../../src/storage/log-file/segment-header.js';
import { SegmentFiles, type SegmentFilesOptions } from '../../src/storage/log-file/segment-files.js';
import { UNIT_ALIGN_BYTES, type UnitRecord } from '../../src/storage/log-file/unit-codec.js';
import { makeTempDir } from './helpers.js';

/** Small segments: a handful of units each, so a test crosses several. */
const SEGMENT_BYTES = SEGMENT_HEADER_BYTES + 8 * UNIT_ALIGN_BYTES;

const dirs: string[] = [];
const opened: SegmentFiles[] = [];

afterEach(async () => {
  for (const files of opened.splice(0)) await files.close().catch(() => undefined);
  for (const dir of dirs.splice(0)) await fs.rm(dir, { recursive: true, force: true });
});

async function logDir(): Promise<string> {
  const dir = await makeTempDir();
  dirs.push(dir);
  return path.join(dir, 'log');
}

/** SegmentFiles.open, with what it read back collected: every record, in order, and the headers. */
async function open(dir: string, overrides: Partial<SegmentFilesOptions> = {}) {
  const records: UnitRecord[] = [];
  const result = await SegmentFiles.open(
    { dir, clusterId: 'c1', nodeId: 'n1', segmentBytes: SEGMENT_BYTES, ...overrides },
    { unit: (unit) => records.push(...unit.records) },
  );
  opened.push(result.files);
  return { files: result.files, readBack: { headers: result.headers, records } };
}

async function reopen(files: SegmentFiles, dir: string, overrides: Partial<SegmentFilesOptions> = {}) {
  await files.close();
  return open(dir, overrides);
}

function entries(first: number, count: number, term: number, bytes = 100): UnitRecord {
  const list: Entry[] = Array.from({ length: count }, (_, k) => ({
    index: first + k,
    term,
    type: EntryType.Normal,
    data: new Uint8Array(bytes).fill((first + k) % 251),
  }));
  return { kind: 'entries', entries: list };
}

/** The entries' indexes and terms, and the other records as they are: what a comparison needs. */
function summary(records: readonly UnitRecord[]): unknown[] {
  return records.map((r) => (r.kind === 'entries' ? r.entries.map((e) => `${e.index}@${e.term}:${e.data[0]}`) : r));
}

async function segmentNames(dir: string): Promise<string[]> {
  return (await fs.readdir(dir)).filter((n) => n.endsWith('.seg')).sort();
}

/** Writes a log of `units` entries records (three entries each) after a first segment at (0, 0). */
async function writtenLog(dir: string, units: number): Promise<{ files: SegmentFiles; written: UnitRecord[] }> {
  const { files } = await open(dir);
  const written: UnitRecord[] = [{ kind: 'termVote', term: 1, vote: 'n1' }];
  await files.startSegment({ index: 0, term: 0 }, [written[0]!]);
  for (let u = 0; u < units; u++) {
    const record = entries(1 + 3 * u, 3, 1);
    await files.append([record]);
    written.push(record);
  }
  return { files, written };
}

/** `written` as read back: each segment after the first repeats the term and vote first. */
function withRepeatedTermVote(readBack: readonly UnitRecord[]): UnitRecord[] {
  return readBack.filter((r, i) => r.kind !== 'termVote' || i === 0);
}

describe('log segment files', () => {
  it('read back every record after a reopen, across segments, each new segment named by sequence and first index', async () => {
    const dir = await logDir();
    const { files, written } = await writtenLog(dir, 40);
    const { readBack, files: again } = await reopen(files, dir);
    expect(summary(withRepeatedTermVote(readBack.records))).toEqual(summary(written));
    const names = await segmentNames(dir);
    expect(names.length).toBeGreaterThan(3);
    expect(names[0]).toBe('0000000000000001-0000000000000001.seg');
    expect(again.segmentSequences).toEqual(names.map((_, i) => i + 1));
    // Each segment's header names the entry before its first; each begins with the term and vote.
    for (const [i, header] of readBack.headers.entries()) {
      expect(names[i]).toBe(
        `${header.sequence.toString(16).padStart(16, '0')}-${(header.prevIndex + 1).toString(16).padStart(16, '0')}.seg`,
      );
    }
    expect(readBack.records.filter((r) => r.kind === 'termVote').length).toBe(names.length);
    // And the log goes on after the reopen.
    await again.append([entries(121, 1, 2)]);
    const third = await reopen(again, dir);
    expect(summary(third.readBack.records).at(-1)).toEqual(['121@2:121']);
  });

  it('a dir opened with another segment size keeps its segments: the current one fills to its own size, new ones get the new size', async () => {
    const dir = await logDir();
    const { files, written } = await writtenLog(dir, 6);
    const sizesOf = async (): Promise<number[]> =>
      Promise.all((await segmentNames(dir)).map(async (name) => (await fs.stat(path.join(dir, name))).size));
    const before = await sizesOf();
    expect(new Set(before)).toEqual(new Set([SEGMENT_BYTES]));
    const { files: bigger, readBack } = await reopen(files, dir, { segmentBytes: 2 * SEGMENT_BYTES });
    expect(summary(withRepeatedTermVote(readBack.records))).toEqual(summary(written));
    for (let u = 6; u < 30; u++) {
      const record = entries(1 + 3 * u, 3, 1);
      await bigger.append([record]);
      written.push(record);
    }
    const after = await sizesOf();
    // The segments made before keep their size; the ones made after the reopen are twice as big.
    expect(after.slice(0, before.length)).toEqual(before);
    expect(after.length).toBeGreaterThan(before.length);
    expect(new Set(after.slice(before.length))).toEqual(new Set([2 * SEGMENT_BYTES]));
    // What the logBytes metric reports: each segment at its own size.
    expect(bigger.diskBytes).toBe(after.reduce((sum, size) => sum + size, 0));
    await bigger.close();
    // Read back whole with either size configured.
    for (const segmentBytes of [SEGMENT_BYTES, 2 * SEGMENT_BYTES]) {
      const { files: again, readBack: all } = await open(dir, { segmentBytes });
      expect(summary(withRepeatedTermVote(all.records))).toEqual(summary(written));
      await again.close();
    }
  });

  it('a unit larger than a segment gets a segment of its own size, and the log goes on in segments of the usual size', async () => {
    // Found in review: with 16 MiB segments, one 16 MiB value made a unit that fit no segment, and
    // the store failed on it (64 MiB segments had room).
    const dir = await logDir();
    const { files, written } = await writtenLog(dir, 2);
    const big = entries(7, 1, 1, 3 * SEGMENT_BYTES);
    await files.append([big]);
    written.push(big);
    const after = entries(8, 3, 1);
    await files.append([after]);
    written.push(after);
    const sizes = await Promise.all(
      (await segmentNames(dir)).map(async (name) => (await fs.stat(path.join(dir, name))).size),
    );
    expect(sizes.filter((size) => size > 3 * SEGMENT_BYTES)).toHaveLength(1);
    expect(sizes.at(-1)).toBe(SEGMENT_BYTES);
    const { readBack } = await reopen(files, dir);
    expect(summary(withRepeatedTermVote(readBack.records))).toEqual(summary(written));
  });

  it('a torn last write is dropped and zeroed, and the next append lands where it was', async () => {
    const dir = await logDir();
    const { files, written } = await writtenLog(dir, 2);
    await files.close();
    const last = path.join(dir, (await segmentNames(dir)).at(-1)!);
    const bytes = await fs.readFile(last);
    // A third unit whose first sector was lost: only its second sector's bytes are on disk.
    const end = SEGMENT_HEADER_BYTES + 3 * UNIT_ALIGN_BYTES;
    bytes.fill(0x5a, end + UNIT_ALIGN_BYTES, end + UNIT_ALIGN_BYTES + 100);
    await fs.writeFile(last, bytes);
    const { files: again, readBack } = await open(dir);
    expect(summary(readBack.records)).toEqual(summary(written));
    expect((await fs.readFile(last)).subarray(end).every((b) => b === 0)).toBe(true);
    await again.append([entries(7, 1, 1)]);
    const { readBack: after } = await reopen(again, dir);
    expect(summary(after.records).at(-1)).toEqual(['7@1:7']);
  });

  it('a segment closed by a crash before the next one got its name: the next append starts it', async () => {
    const dir = await logDir();
    const { files } = await writtenLog(dir, 1);
    // Stop just after a rollover's end record: the new segment is only a temporary file.
    await files.startSegment({ index: 3, term: 1 }, []);
    await files.close();
    const names = await segmentNames(dir);
    await fs.rm(path.join(dir, names.at(-1)!));
    await fs.writeFile(path.join(dir, 'crashed.tmp'), 'half a preallocation');
    const { files: again, readBack } = await open(dir);
    expect(await fs.readdir(dir)).not.toContain('crashed.tmp');
    expect(summary(readBack.records).at(-1)).toEqual(['1@1:1', '2@1:2', '3@1:3']);
    await again.append([entries(4, 1, 1)]);
    const { readBack: after } = await reopen(again, dir);
    expect(summary(after.records).at(-1)).toEqual(['4@1:4']);
    expect((await segmentNames(dir)).length).toBe(names.length);
  });

  it('a crash after a new segment got its name but before its first unit: open deletes it, and the term and vote survive', async () => {
    // Found in review: appends went on into the empty segment without the term and vote, and once
    // the older segments were deleted the node forgot its vote.
    const dir = await logDir();
    const { files, written } = await writtenLog(dir, 40);
    await files.close();
    const names = await segmentNames(dir);
    const newest = path.join(dir, names.at(-1)!);
    const bytes = await fs.readFile(newest);
    bytes.fill(0, SEGMENT_HEADER_BYTES);
    await fs.writeFile(newest, bytes);
    const { files: again, readBack } = await open(dir);
    expect(await segmentNames(dir)).toEqual(names.slice(0, -1));
    const kept = summary(withRepeatedTermVote(readBack.records));
    expect(kept).toEqual(summary(written).slice(0, kept.length));
    const lastRecord = readBack.records.at(-1);
    const next = lastRecord?.kind === 'entries' ? lastRecord.entries.at(-1)!.index + 1 : NaN;
    await again.append([entries(next, 1, 1)]);
    await again.deleteBefore(Number.MAX_SAFE_INTEGER);
    const { readBack: after } = await reopen(again, dir);
    expect(after.records[0]).toEqual({ kind: 'termVote', term: 1, vote: 'n1' });
    expect(summary(after.records).at(-1)).toEqual([`${next}@1:${next % 251}`]);
  });

  it("entries that replace some at or before the current segment's start go to a new segment named after the entry before them", async () => {
    // Found in review: the header kept naming the replaced entry's old term.
    const dir = await logDir();
    const { files } = await writtenLog(dir, 40);
    const start = (await reopen(files, dir)).readBack.headers.at(-1)!;
    const { files: again } = await open(dir);
    // Without the entry before them, replacing entries is refused before anything is written.
    await expect(again.append([entries(start.prevIndex - 1, 2, 2)])).rejects.toThrow(/need the entry before it/);
    const from = start.prevIndex - 1;
    await again.append([entries(from, 2, 2)], { index: from - 1, term: 1 });
    await again.deleteBefore(Number.MAX_SAFE_INTEGER);
    const { readBack } = await reopen(again, dir);
    expect(readBack.headers[0]).toMatchObject({ prevIndex: from - 1, prevTerm: 1 });
    expect(summary(readBack.records).at(-1)).toEqual([`${from}@2:${from}`, `${from + 1}@2:${from + 1}`]);
  });

  it('an install starts a segment after the snapshot point; with the older ones deleted the log starts there', async () => {
    const dir = await logDir();
    const { files } = await writtenLog(dir, 10);
    await files.append([{ kind: 'termVote', term: 5, vote: 'n2' }]);
    await files.startSegment({ index: 500, term: 4 }, [{ kind: 'snapshot', index: 500, term: 4 }]);
    await files.append([entries(501, 2, 5)]);
    await files.deleteBefore(Number.MAX_SAFE_INTEGER);
    const { readBack } = await reopen(files, dir);
    expect(readBack.headers).toMatchObject([{ prevIndex: 500, prevTerm: 4 }]);
    expect(summary(readBack.records)).toEqual([
      { kind: 'termVote', term: 5, vote: 'n2' },
      { kind: 'snapshot', index: 500, term: 4 },
      ['501@5:250', '502@5:0'],
    ]);
  });

  it('deleting old segments keeps the last one, and the log still opens from the oldest kept', async () => {
    const dir = await logDir();
    const { files } = await writtenLog(dir, 40);
    const sequences = [...files.segmentSequences];
    await files.deleteBefore(sequences[2]!);
    expect(files.segmentSequences).toEqual(sequences.slice(2));
    await files.deleteBefore(Number.MAX_SAFE_INTEGER);
    expect(files.segmentSequences).toEqual(sequences.slice(-1));
    const { readBack } = await reopen(files, dir);
    // The kept segment begins with the term and vote, and its header tells the entry before it.
    expect(readBack.records[0]).toEqual({ kind: 'termVote', term: 1, vote: 'n1' });
    const firstEntries = readBack.records.find((r) => r.kind === 'entries');
    expect(firstEntries?.kind === 'entries' && firstEntries.entries[0]?.index).toBe(readBack.headers[0]!.prevIndex + 1);
  });

  it('refuses a segment older than the last that was never closed, and a segment whose name does not match its header', async () => {
    const dir = await logDir();
    const { files } = await writtenLog(dir, 20);
    await files.close();
    const names = await segmentNames(dir);
    const first = path.join(dir, names[0]!);
    const original = await fs.readFile(first);
    // Its end record (the last unit written in it) gone.
    const bytes = original.slice();
    let end = bytes.length;
    while (end > 0 && bytes[end - 1] === 0) end--;
    bytes.fill(0, Math.floor((end - 1) / UNIT_ALIGN_BYTES) * UNIT_ALIGN_BYTES);
    await fs.writeFile(first, bytes);
    await expect(open(dir)).rejects.toThrow(/older than the last that was never closed/);
    // The same segment followed only by an empty newest one (its first unit never whole): that
    // one is deleted, and the unclosed segment is then the last, as in the whole-file reading
    // before (a review found the streamed reading refused this).
    const onlyTwo = await logDir();
    await fs.mkdir(onlyTwo, { recursive: true });
    await fs.writeFile(path.join(onlyTwo, names[0]!), bytes);
    const second = await fs.readFile(path.join(dir, names[1]!));
    second.fill(0, SEGMENT_HEADER_BYTES);
    await fs.writeFile(path.join(onlyTwo, names[1]!), second);
    const reopened = await open(onlyTwo);
    expect(reopened.files.segmentSequences).toEqual([1]);
    expect(await segmentNames(onlyTwo)).toEqual([names[0]]);
    await fs.writeFile(first, original);
    await fs.rename(first, path.join(dir, names[0]!.replace(/-0+1\.seg$/, '-0000000000000002.seg')));
    await expect(open(dir)).rejects.toThrow(/does not match its name/);
  });

  it('refuses, naming the file and offset, damage in a segment older than the last', async () => {
    const dir = await logDir();
    const { files } = await writtenLog(dir, 20);
    await files.close();
    const first = path.join(dir, (await segmentNames(dir))[0]!);
    const bytes = await fs.readFile(first);
    bytes[SEGMENT_HEADER_BYTES + UNIT_ALIGN_BYTES + 20]! ^= 1;
    await fs.writeFile(first, bytes);
    const error = await open(dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CorruptDataError);
    expect(String(error)).toContain(`${first}, offset ${SEGMENT_HEADER_BYTES + UNIT_ALIGN_BYTES}`);
  });

  it("refuses a missing segment in the middle, a segment cut short, and another node's segments", async () => {
    const dir = await logDir();
    const { files } = await writtenLog(dir, 20);
    await files.close();
    const names = await segmentNames(dir);
    const attempt = (overrides: Partial<SegmentFilesOptions> = {}) =>
      open(dir, overrides).then(
        (r) => r.files.close().then(() => null),
        (e: unknown) => e,
      );
    expect(await attempt({ nodeId: 'n2' })).toBeInstanceOf(StorageRefusedError);
    expect(String(await attempt({ nodeId: 'n2' }))).toMatch(/of node n1 in cluster c1, not of node n2/);
    expect(String(await attempt({ clusterId: 'c2' }))).toMatch(
      /of node n1 in cluster c1, not of node n1 in cluster c2/,
    );
    const second = path.join(dir, names[1]!);
    const kept = await fs.readFile(second);
    await fs.writeFile(second, kept.subarray(0, kept.length - 1));
    expect(String(await attempt())).toMatch(/8191 bytes, not the 8192 its header says/);
    await fs.rm(second);
    expect(String(await attempt())).toMatch(/segment 2 is missing before it/);
  });
});
