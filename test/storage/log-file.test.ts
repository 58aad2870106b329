// The log segment format (src/storage/log-file/): units round-trip, and
// a segment read back on open tells a torn last write (any subset of its sectors kept) from
// corruption anywhere else.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CorruptDataError, StorageRefusedError } from '../../src/storage/errors.js';
import {
  SEGMENT_HEADER_BYTES,
  decodeSegmentHeader,
  encodeSegmentHeader,
  type SegmentHeader,
} from '../../src/storage/log-file/segment-header.js';
import { streamSegmentFile } from '../../src/storage/log-file/segment-files.js';
import { scanSegment, type ScannedSegment, type ScannedUnit } from '../../src/storage/log-file/segment-scan.js';
import {
  MAX_UNIT_BODY_BYTES,
  UNIT_ALIGN_BYTES,
  UNIT_HEADER_BYTES,
  decodeUnitBody,
  encodeUnit,
  type UnitRecord,
} from '../../src/storage/log-file/unit-codec.js';
import { EntryType } from '../../src/raft/types.js';
import { crc32 } from 'node:zlib';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** streamSegmentFile with the units it hands over collected: scanSegment's result, from a file. */
async function scanSegmentFile(file: string, last: boolean): Promise<ScannedSegment> {
  const units: ScannedUnit[] = [];
  const { unitCount, ...verdict } = await streamSegmentFile(file, last, {
    unit: (unit) => units.push({ offset: unit.offset, records: unit.records.map(copiedRecord) }),
  });
  expect(unitCount).toBe(units.length);
  return { ...verdict, units };
}

function copiedRecord(record: UnitRecord): UnitRecord {
  return record.kind === 'entries'
    ? { kind: 'entries', entries: record.entries.map((e) => ({ ...e, data: e.data.slice() })) }
    : record;
}

const SEGMENT_BYTES = 64 * 1024;
const HEADER: SegmentHeader = {
  clusterId: 'test-cluster',
  nodeId: 'n1',
  sequence: 7,
  prevIndex: 40,
  prevTerm: 3,
  segmentBytes: SEGMENT_BYTES,
};

const safe = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });

const entriesRecord = fc
  .record({
    // After HEADER.prevIndex: a segment holds no entry at or before its header's.
    first: fc.integer({ min: HEADER.prevIndex + 1, max: 2 ** 40 }),
    items: fc.array(
      fc.record({
        term: safe,
        type: fc.constantFrom(EntryType.Normal, EntryType.ConfChange),
        // Up to several sectors per unit: a torn write must be able to keep some and lose others.
        data: fc.uint8Array({ maxLength: 400, size: 'max' }),
      }),
      { maxLength: 4 },
    ),
  })
  .map(({ first, items }): UnitRecord => ({
    kind: 'entries',
    entries: items.map((item, k) => ({ index: first + k, ...item })),
  }));

const record: fc.Arbitrary<UnitRecord> = fc.oneof(
  entriesRecord,
  fc.record({ kind: fc.constant('termVote' as const), term: safe, vote: fc.string({ maxLength: 40 }) }),
  fc.record({ kind: fc.constant('snapshot' as const), index: safe, term: safe }),
);

/** Units of records, none of them an end record. */
const units = fc.array(fc.array(record, { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 6 });

/**
 * The scan properties run without shrinking: shrinking these segments took over ten minutes when a
 * mutation broke the scanner. A failure still prints its seed and path for replay.
 */
const SCAN_RUNS = { numRuns: 300, endOnFailure: true };

/**
 * A segment of SEGMENT_BYTES: the header, then `unitRecords` as units, then zeros; where each unit
 * begins (and, last, where the next would), and where each unit's content ends (its padding begins).
 */
function segmentOf(unitRecords: readonly (readonly UnitRecord[])[]): {
  bytes: Uint8Array;
  offsets: number[];
  contentEnds: number[];
} {
  const bytes = new Uint8Array(SEGMENT_BYTES);
  bytes.set(encodeSegmentHeader(HEADER), 0);
  const offsets: number[] = [];
  const contentEnds: number[] = [];
  let at = SEGMENT_HEADER_BYTES;
  for (const records of unitRecords) {
    const unit = encodeUnit(records, at);
    offsets.push(at);
    contentEnds.push(at + UNIT_HEADER_BYTES + new DataView(unit.buffer).getUint32(0));
    bytes.set(unit, at);
    at += unit.length;
  }
  offsets.push(at);
  return { bytes, offsets, contentEnds };
}

/** The body of `unit` (padding included: decodeUnitBody is given the body alone). */
function entriesAt(index: number): UnitRecord {
  return { kind: 'entries', entries: [{ index, term: 3, type: EntryType.Normal, data: Uint8Array.of(1) }] };
}

function bodyOf(unit: Uint8Array): Uint8Array {
  return unit.subarray(UNIT_HEADER_BYTES, UNIT_HEADER_BYTES + new DataView(unit.buffer).getUint32(0));
}

/** Plain objects of the records, with entry data as arrays: what toEqual compares. */
function plain(records: readonly UnitRecord[]): unknown {
  return records.map((r) =>
    r.kind === 'entries' ? { ...r, entries: r.entries.map((e) => ({ ...e, data: [...e.data] })) } : r,
  );
}

describe('log segment units', () => {
  it('decode exactly what was encoded', () => {
    fc.assert(
      fc.property(fc.array(record, { minLength: 1, maxLength: 6 }), (records) => {
        expect(plain(decodeUnitBody(bodyOf(encodeUnit(records, 0)), 'test'))).toEqual(plain(records));
      }),
      { numRuns: 300 },
    );
  });

  it('refuses to encode what it could not read back', () => {
    expect(() => encodeUnit([], 0)).toThrow(RangeError);
    expect(() => encodeUnit([{ kind: 'end' }], 100)).toThrow(/not a sector boundary/);
    const gap = [
      { index: 5, term: 1, type: EntryType.Normal, data: new Uint8Array(0) },
      { index: 7, term: 1, type: EntryType.Normal, data: new Uint8Array(0) },
    ];
    expect(() => encodeUnit([{ kind: 'entries', entries: gap }], 0)).toThrow(/entry 7 follows 5/);
    expect(() => encodeUnit([{ kind: 'snapshot', index: 2 ** 53, term: 1 }], 0)).toThrow(RangeError);
    const huge = new Uint8Array(MAX_UNIT_BODY_BYTES);
    expect(() =>
      encodeUnit([{ kind: 'entries', entries: [{ index: 1, term: 1, type: EntryType.Normal, data: huge }] }], 0),
    ).toThrow(/exceeds/);
  });

  it('a body cut short, or with an unknown kind or entry type, is corruption', () => {
    const body = bodyOf(
      encodeUnit(
        [
          { kind: 'snapshot', index: 9, term: 2 },
          { kind: 'termVote', term: 2, vote: 'n2' },
        ],
        0,
      ),
    );
    for (let cut = 1; cut < body.length; cut++) {
      // A cut at a record boundary is a shorter valid body; anywhere else it must not decode.
      if (cut === 17) continue;
      expect(() => decodeUnitBody(body.subarray(0, cut), 'test')).toThrow(CorruptDataError);
    }
    expect(() => decodeUnitBody(Uint8Array.of(9), 'test')).toThrow(/unknown record kind 9/);
    const entries = bodyOf(
      encodeUnit(
        [{ kind: 'entries', entries: [{ index: 1, term: 1, type: EntryType.Normal, data: Uint8Array.of(1) }] }],
        0,
      ),
    ).slice();
    entries[1 + 8 + 4 + 8] = 5; // the entry's type
    expect(() => decodeUnitBody(entries, 'test')).toThrow(/unknown entry type 5/);
  });
});

describe('log segment header', () => {
  it('round-trips, and any changed byte is corruption', () => {
    const bytes = encodeSegmentHeader(HEADER);
    expect(decodeSegmentHeader(bytes, 'seg')).toEqual(HEADER);
    const used = 8 + 2 + 32 + 2 + HEADER.clusterId.length + 2 + HEADER.nodeId.length + 4;
    for (let i = 0; i < used; i++) {
      const damaged = bytes.slice();
      damaged[i]! ^= 0x10;
      expect(() => decodeSegmentHeader(damaged, 'seg'), `byte ${i}`).toThrow(CorruptDataError);
    }
  });

  it('a segment of a newer format is refused with what to do', () => {
    const bytes = encodeSegmentHeader(HEADER);
    const view = new DataView(bytes.buffer);
    view.setUint16(8, 3);
    const length = 8 + 2 + 32 + 2 + HEADER.clusterId.length + 2 + HEADER.nodeId.length;
    // A checksum that matches: a real newer file, not damage.
    view.setUint32(length, crc32(bytes.subarray(0, length)));
    expect(() => decodeSegmentHeader(bytes, 'seg')).toThrow(StorageRefusedError);
    expect(() => decodeSegmentHeader(bytes, 'seg')).toThrow(/format 3.*run the raftkv version that wrote it/);
  });

  it("reads the first format (stop 33's, with no size field) as 64 MiB segments", () => {
    // Format 1's layout: the three numbers, then the ids, then the checksum.
    const cluster = new TextEncoder().encode(HEADER.clusterId);
    const node = new TextEncoder().encode(HEADER.nodeId);
    const bytes = new Uint8Array(SEGMENT_HEADER_BYTES);
    const view = new DataView(bytes.buffer);
    bytes.set(new TextEncoder().encode('raftkvlg'), 0);
    view.setUint16(8, 1);
    let at = 10;
    for (const value of [HEADER.sequence, HEADER.prevIndex, HEADER.prevTerm]) {
      view.setBigUint64(at, BigInt(value));
      at += 8;
    }
    for (const id of [cluster, node]) {
      view.setUint16(at, id.length);
      bytes.set(id, at + 2);
      at += 2 + id.length;
    }
    view.setUint32(at, crc32(bytes.subarray(0, at)));
    expect(decodeSegmentHeader(bytes, 'seg')).toEqual({ ...HEADER, segmentBytes: 64 * 1024 * 1024 });
  });
});

describe('log segment scan', () => {
  it('reads back every unit of a whole segment, and where the next one goes', () => {
    fc.assert(
      fc.property(units, (unitRecords) => {
        const { bytes, offsets } = segmentOf(unitRecords);
        const scanned = scanSegment(bytes, true, 'seg');
        expect(scanned.header).toEqual(HEADER);
        expect(scanned.units.map((u) => u.offset)).toEqual(offsets.slice(0, -1));
        expect(scanned.units.map((u) => plain(u.records))).toEqual(unitRecords.map(plain));
        expect(scanned.end).toBe(offsets[offsets.length - 1]);
        expect(scanned).toMatchObject({ closed: false, torn: null });
      }),
      SCAN_RUNS,
    );
  });

  it('a last write that kept any subset of its sectors is torn: dropped, never refused', () => {
    fc.assert(
      fc.property(units, fc.array(fc.boolean(), { minLength: 1, maxLength: 64 }), (unitRecords, kept) => {
        const { bytes, offsets } = segmentOf(unitRecords);
        const whole = bytes.slice();
        const from = offsets[offsets.length - 2]!;
        const to = offsets[offsets.length - 1]!;
        // The sectors the power loss did not keep read as the zeros they held before the write.
        for (let sector = from, k = 0; sector < to; sector += UNIT_ALIGN_BYTES, k++) {
          if (kept[k % kept.length] !== true) bytes.fill(0, sector, sector + UNIT_ALIGN_BYTES);
        }
        const scanned = scanSegment(bytes, true, 'seg');
        // A lost sector that held only zeros changed nothing: the unit is whole.
        if (bytes.every((b, i) => b === whole[i])) {
          expect(scanned.units.length).toBe(unitRecords.length);
          return;
        }
        expect(scanned.units.map((u) => plain(u.records))).toEqual(unitRecords.slice(0, -1).map(plain));
        expect(scanned.end).toBe(from);
        if (scanned.torn === null) {
          expect(bytes.subarray(from).every((b) => b === 0)).toBe(true);
        } else {
          expect(scanned.torn.from).toBe(from);
          expect(scanned.torn.to).toBeLessThanOrEqual(to);
          expect(bytes.subarray(scanned.torn.to).every((b) => b === 0)).toBe(true);
        }
      }),
      SCAN_RUNS,
    );
  });

  it('reading a segment file one unit at a time gives the verdict the whole file gives', async () => {
    // streamSegmentFile reads one unit at a time, then checks that only zeros follow; anything
    // else is judged on the whole file. Units whose values end in many zeros must still be read
    // as whole units, not taken for the zeros after the last.
    const zeroTailed = units.map((segment) =>
      segment.map((list) =>
        list.map((r): UnitRecord =>
          r.kind === 'entries'
            ? {
                kind: 'entries',
                entries: r.entries.map((e) => ({
                  ...e,
                  data: Uint8Array.from([...e.data, 1, ...new Uint8Array(1500)]),
                })),
              }
            : r,
        ),
      ),
    );
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'raftkv-scan-'));
    const file = path.join(dir, 'seg');
    const verdict = (scan: () => unknown): unknown => {
      try {
        const { header, units: found, end, closed, torn } = scan() as ReturnType<typeof scanSegment>;
        return { header, units: found.map((u) => [u.offset, plain(u.records)]), end, closed, torn };
      } catch (error) {
        return { refused: (error as Error).message };
      }
    };
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(units, zeroTailed),
          fc.array(fc.boolean(), { minLength: 1, maxLength: 16 }),
          fc.option(fc.tuple(fc.nat(SEGMENT_BYTES - 1), fc.integer({ min: 1, max: 255 }))),
          fc.boolean(),
          async (unitRecords, kept, flip, last) => {
            const { bytes, offsets } = segmentOf(unitRecords);
            const from = offsets[offsets.length - 2]!;
            const to = offsets[offsets.length - 1]!;
            for (let sector = from, k = 0; sector < to; sector += UNIT_ALIGN_BYTES, k++) {
              if (kept[k % kept.length] !== true) bytes.fill(0, sector, sector + UNIT_ALIGN_BYTES);
            }
            if (flip !== null) bytes[flip[0]]! ^= flip[1];
            await fs.writeFile(file, bytes);
            const whole = verdict(() => scanSegment(bytes, last, file));
            let fromFile: unknown;
            try {
              const scanned = await scanSegmentFile(file, last);
              fromFile = verdict(() => scanned);
            } catch (error) {
              fromFile = { refused: (error as Error).message };
            }
            expect(fromFile).toEqual(whole);
          },
        ),
        { numRuns: 300, endOnFailure: true },
      );
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('reads a clean segment once, a unit or a chunk at a time; a stray byte one sector past its units is still seen', async () => {
    // Found in review: the property above rarely puts a stray byte exactly on a sector boundary
    // past the last unit, never uses a segment over one read chunk (1 MiB), and never checks how
    // much is read, or how much at once.
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'raftkv-scan-'));
    const file = path.join(dir, 'seg');
    const size = 4 * 1024 * 1024;
    const handleProto = Object.getPrototypeOf(
      await fs.open(process.execPath, 'r').then(async (h) => (await h.close(), h)),
    );
    const readBytes = async (scan: () => Promise<unknown>): Promise<{ total: number; largest: number }> => {
      let total = 0;
      let largest = 0;
      const original = handleProto.read;
      handleProto.read = async function (this: unknown, ...args: unknown[]) {
        const result = await original.apply(this, args);
        const { bytesRead } = result as { bytesRead: number };
        total += bytesRead;
        largest = Math.max(largest, bytesRead);
        return result;
      };
      try {
        await scan();
      } finally {
        handleProto.read = original;
      }
      return { total, largest };
    };
    try {
      // A unit at 4096 whose value ends in 1.5 MiB of zeros: it crosses read chunks, and past its
      // last nonzero byte; then an end record.
      const bytes = new Uint8Array(size);
      bytes.set(encodeSegmentHeader({ ...HEADER, segmentBytes: size }), 0);
      const data = new Uint8Array(1_500_000);
      data[0] = 1;
      const unit = encodeUnit(
        [{ kind: 'entries', entries: [{ index: 41, term: 3, type: EntryType.Normal, data }] }],
        SEGMENT_HEADER_BYTES,
      );
      bytes.set(unit, SEGMENT_HEADER_BYTES);
      const endAt = SEGMENT_HEADER_BYTES + unit.length;
      await fs.writeFile(file, bytes);
      const clean = await scanSegmentFile(file, true);
      expect(clean.units).toHaveLength(1);
      expect(clean.end).toBe(endAt);
      // Each byte once at most, and never more at once than the unit's body or a 1 MiB chunk.
      const read = await readBytes(() => scanSegmentFile(file, true));
      expect(read.total).toBeLessThanOrEqual(size);
      expect(read.largest).toBeLessThanOrEqual(data.length + 64);
      // One byte on the sector boundary right after the last unit: torn in the last segment, refused in an older one.
      bytes[endAt + UNIT_ALIGN_BYTES] = 1;
      await fs.writeFile(file, bytes);
      expect((await scanSegmentFile(file, true)).torn).toEqual(scanSegment(bytes, true, file).torn);
      await expect(scanSegmentFile(file, false)).rejects.toThrow(/older than the last/);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('damage with a whole unit after it, or in a segment older than the last, is corruption', () => {
    fc.assert(
      fc.property(
        units.filter((u) => u.length >= 2),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        (unitRecords, position, flip) => {
          const { bytes, offsets, contentEnds } = segmentOf(unitRecords);
          // Any byte (not padding) of any unit but the last: a later whole unit shows it was not the
          // last write.
          const unit = position % (unitRecords.length - 1);
          const at =
            offsets[unit]! + (Math.floor(position / unitRecords.length) % (contentEnds[unit]! - offsets[unit]!));
          bytes[at]! ^= flip;
          expect(() => scanSegment(bytes, true, 'seg')).toThrow(CorruptDataError);
          expect(() => scanSegment(bytes, true, 'seg')).toThrow(/seg, offset \d+/);
        },
      ),
      SCAN_RUNS,
    );
    const { bytes, offsets } = segmentOf([[{ kind: 'snapshot', index: 1, term: 1 }]]);
    bytes[offsets[0]! + UNIT_HEADER_BYTES + 3]! ^= 1;
    expect(() => scanSegment(bytes, false, 'seg')).toThrow(/older than the last/);
  });

  it('a damaged last unit with no zero sector is corruption, not a torn write', () => {
    // One small unit inside one sector: a disk writes a sector whole, so it cannot be half there.
    const { bytes, offsets } = segmentOf([[{ kind: 'termVote', term: 4, vote: 'n1' }]]);
    bytes[offsets[0]! + UNIT_HEADER_BYTES + 2]! ^= 1;
    expect(() => scanSegment(bytes, true, 'seg')).toThrow(CorruptDataError);
  });

  it("a unit's bytes at another offset are not a unit: its checksum covers where it was written", () => {
    // As a client's value holding a well-formed unit would be, inside a real unit whose first
    // sector a power loss took: it must not pass for a whole unit written after the damage.
    const { bytes, offsets } = segmentOf([[{ kind: 'snapshot', index: 1, term: 1 }]]);
    const unit = bytes.slice(offsets[0], offsets[1]);
    bytes.fill(0, offsets[0], offsets[1]);
    bytes.set(unit, offsets[1]!);
    const scanned = scanSegment(bytes, true, 'seg');
    expect(scanned.units).toEqual([]);
    expect(scanned.torn).toEqual({ from: offsets[0], to: offsets[1]! + UNIT_HEADER_BYTES + 17 });
  });

  it("a damaged header of the last unit is corruption: a power loss keeps a unit's first sector whole or not at all", () => {
    // Any one changed bit of the header (its length field, either checksum), in the last unit.
    const { bytes, offsets } = segmentOf([
      [{ kind: 'snapshot', index: 1, term: 1 }],
      [{ kind: 'snapshot', index: 2, term: 1 }],
    ]);
    for (let i = 0; i < UNIT_HEADER_BYTES * 8; i++) {
      const damaged = bytes.slice();
      damaged[offsets[1]! + (i >> 3)]! ^= 1 << (i & 7);
      expect(() => scanSegment(damaged, true, 'seg'), `bit ${i}`).toThrow(/a unit header that fails its checksum/);
    }
  });

  it('a damaged last unit of several sectors, every one of them written, is corruption', () => {
    const data = new Uint8Array(1500).fill(7);
    const { bytes, offsets } = segmentOf([
      [{ kind: 'entries', entries: [{ index: 1, term: 1, type: EntryType.Normal, data }] }],
    ]);
    bytes[offsets[0]! + 1200]! ^= 1;
    expect(() => scanSegment(bytes, true, 'seg')).toThrow(/every sector was written/);
    // The same unit with its third sector lost is a torn write.
    const torn = segmentOf([[{ kind: 'entries', entries: [{ index: 1, term: 1, type: EntryType.Normal, data }] }]]);
    torn.bytes.fill(0, torn.offsets[0]! + 2 * UNIT_ALIGN_BYTES, torn.offsets[0]! + 3 * UNIT_ALIGN_BYTES);
    expect(scanSegment(torn.bytes, true, 'seg')).toMatchObject({ units: [], torn: { from: torn.offsets[0] } });
  });

  it("entries at or before the segment's header entry are corruption", () => {
    // HEADER says the segment starts after entry 40.
    const { bytes } = segmentOf([[entriesAt(40)]]);
    expect(() => scanSegment(bytes, true, 'seg')).toThrow(/entry 40 in a segment that starts after entry 40/);
    expect(scanSegment(segmentOf([[entriesAt(41)]]).bytes, true, 'seg').units.length).toBe(1);
  });

  it('an end record closes the segment: nothing may follow it', () => {
    const closed = segmentOf([[{ kind: 'snapshot', index: 1, term: 1 }], [{ kind: 'end' }]]);
    expect(scanSegment(closed.bytes, false, 'seg')).toMatchObject({ closed: true, torn: null });
    closed.bytes.set(encodeUnit([{ kind: 'snapshot', index: 2, term: 1 }], closed.offsets[2]!), closed.offsets[2]!);
    expect(() => scanSegment(closed.bytes, true, 'seg')).toThrow(/data after the end record/);
    const inside = segmentOf([[{ kind: 'end' }, { kind: 'snapshot', index: 1, term: 1 }]]);
    expect(() => scanSegment(inside.bytes, true, 'seg')).toThrow(/records after an end record/);
  });

  it('stray bytes far past the last unit are corruption even in the last segment', () => {
    const { bytes } = segmentOf([[{ kind: 'snapshot', index: 1, term: 1 }]]);
    const big = new Uint8Array(SEGMENT_HEADER_BYTES + UNIT_HEADER_BYTES + MAX_UNIT_BODY_BYTES + 1024);
    big.set(bytes.subarray(0, SEGMENT_HEADER_BYTES + 100), 0);
    big[big.length - 1] = 1;
    expect(() => scanSegment(big, true, 'seg')).toThrow(/with data written after it/);
  });
});
