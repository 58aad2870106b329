// The index from log entries to the units that hold them (src/storage/log-file/unit-index.ts, not
// used by the node yet), against a model: a map from each entry to its unit, changed the way the
// log changes (appends, conflicting suffixes replaced, old segments deleted, installs).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { UnitIndex } from '../../src/storage/log-file/unit-index.js';

type Step =
  | { kind: 'append'; back: number; count: number; newSegment: boolean }
  | { kind: 'drop'; keep: number }
  | { kind: 'install'; gap: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('append' as const),
      back: fc.nat(4),
      count: fc.integer({ min: 1, max: 5 }),
      newSegment: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('drop' as const), keep: fc.nat(3) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('install' as const), gap: fc.integer({ min: 1, max: 20 }) }) },
);

describe('the unit index', () => {
  it('finds the unit of every entry the log holds, and of none it does not, whatever the appends, truncations, deletions and installs', () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), (steps) => {
        const index = new UnitIndex();
        // The model: entry -> "sequence/offset" of the unit that holds it.
        let model = new Map<number, string>();
        let last = 0;
        let sequence = 1;
        let offset = 4096;
        for (const s of steps) {
          if (s.kind === 'append') {
            if (s.newSegment) {
              sequence++;
              offset = 4096;
            }
            const first = Math.max(1, last + 1 - s.back);
            const end = first + s.count - 1;
            index.add({ sequence, offset }, first, end);
            for (const i of [...model.keys()]) if (i >= first) model.delete(i);
            for (let i = first; i <= end; i++) model.set(i, `${sequence}/${offset}`);
            last = end;
            offset += 512;
          } else if (s.kind === 'drop') {
            // Compaction deletes whole segments, never the last.
            const below = Math.max(1, sequence - s.keep);
            index.dropSegmentsBefore(below);
            model = new Map([...model].filter(([, where]) => Number(where.split('/')[0]) >= below));
          } else {
            index.clear();
            model.clear();
            last += s.gap;
            sequence++;
            offset = 4096;
          }
          const held = [...model.keys()].sort((a, b) => a - b);
          expect(index.firstIndex).toBe(held[0]);
          expect(index.lastIndex).toBe(held[held.length - 1]);
          for (let i = (held[0] ?? last) - 2; i <= last + 2; i++) {
            const found = index.find(i);
            expect(found === undefined ? undefined : `${found.sequence}/${found.offset}`).toBe(model.get(i));
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it('refuses a unit that leaves a gap, or holds no entry', () => {
    const index = new UnitIndex();
    index.add({ sequence: 1, offset: 4096 }, 1, 3);
    expect(() => index.add({ sequence: 1, offset: 4608 }, 5, 6)).toThrow(/entry 5 leaves a gap after 3/);
    expect(() => index.add({ sequence: 1, offset: 4608 }, 4, 3)).toThrow(RangeError);
  });
});
