import { describe, expect, it } from 'vitest';
import { NEMESIS_KINDS, parseNemesisList } from '../../scripts/harness/chaos/nemesis-kinds.js';
import { generateSchedule, type ScheduleOptions } from '../../scripts/harness/chaos/schedule.js';

const base: ScheduleOptions = {
  seed: 42,
  kinds: NEMESIS_KINDS,
  nodeIds: ['n1', 'n2', 'n3'],
  durationMs: 60_000,
  faultMs: { min: 2000, max: 6000 },
  gapMs: { min: 2000, max: 5000 },
};

describe('the nemesis schedule', () => {
  it('is a pure function of the seed and the options', () => {
    expect(generateSchedule(base)).toEqual(generateSchedule({ ...base }));
    expect(generateSchedule({ ...base, seed: 43 })).not.toEqual(generateSchedule(base));
  });

  it('does not depend on how the nemesis list was spelled', () => {
    const a = generateSchedule({ ...base, kinds: parseNemesisList('pause,kill') });
    const b = generateSchedule({
      ...base,
      kinds: parseNemesisList('kill-random,pause-leader,kill-all,kill-leader,pause-random'),
    });
    expect(a).toEqual(b);
  });

  it('keeps durations and gaps in range, faults inside the run, one at a time', () => {
    for (let seed = 0; seed < 50; seed++) {
      const plans = generateSchedule({ ...base, seed });
      expect(plans.length).toBeGreaterThan(3);
      let end = 0;
      for (const plan of plans) {
        expect(plan.durationMs).toBeGreaterThanOrEqual(2000);
        expect(plan.durationMs).toBeLessThanOrEqual(6000);
        expect(plan.gapMs).toBeGreaterThanOrEqual(2000);
        expect(plan.gapMs).toBeLessThanOrEqual(5000);
        expect(plan.plannedStartMs).toBe(end + plan.gapMs);
        end = plan.plannedStartMs + plan.durationMs;
      }
      expect(end).toBeLessThanOrEqual(base.durationMs);
    }
  });

  it('uses only the chosen kinds, and over many seeds every one of them', () => {
    const kinds = parseNemesisList('partition');
    const seen = new Set<string>();
    for (let seed = 0; seed < 30; seed++)
      for (const plan of generateSchedule({ ...base, seed, kinds })) seen.add(plan.kind);
    expect([...seen].sort()).toEqual([...kinds].sort());
  });

  it('targets nodes of the cluster, with minorities that leave a majority', () => {
    const ids = ['n1', 'n2', 'n3', 'n4', 'n5'];
    for (let seed = 0; seed < 30; seed++) {
      for (const plan of generateSchedule({ ...base, seed, nodeIds: ids })) {
        const t = plan.target;
        if (t.type === 'node') expect(ids).toContain(t.node);
        if (t.type === 'leader') expect(ids).toContain(t.fallback);
        if (t.type === 'split') expect(t.minority).toHaveLength(2);
        if (t.type === 'link') expect(t.a < t.b).toBe(true);
        if (t.type === 'oneway') expect(t.from).not.toBe(t.to);
      }
    }
  });

  it('is empty without kinds, and refuses nonsense', () => {
    expect(generateSchedule({ ...base, kinds: [] })).toEqual([]);
    expect(() => generateSchedule({ ...base, nodeIds: ['n1'] })).toThrow(/two nodes/);
    expect(() => generateSchedule({ ...base, faultMs: { min: 5, max: 1 } })).toThrow(/faultMs/);
  });
});

describe('nemesis names', () => {
  it('expands groups, keeps canonical order, and names the known kinds on a typo', () => {
    expect(parseNemesisList('kill')).toEqual(['kill-random', 'kill-leader', 'kill-all']);
    expect(parseNemesisList('partition-link, pause-leader')).toEqual(['pause-leader', 'partition-link']);
    expect(parseNemesisList('all')).toEqual([...NEMESIS_KINDS]);
    expect(parseNemesisList('none')).toEqual([]);
    expect(() => parseNemesisList('kill,explode')).toThrow(/unknown nemesis "explode".*kill-random/);
  });
});
