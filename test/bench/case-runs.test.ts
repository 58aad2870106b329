// With `--repeat`, a case holds several rounds of each system: the report and the targets take
// each side's median run (scripts/bench/case-runs.ts), never its luckiest.
import { describe, expect, it } from 'vitest';
import { etcdBest, etcdCheapestCpu, medianBy, ratio, raftkvCpu, raftkvRun } from '../../scripts/bench/case-runs.js';
import { sideBySide } from '../../scripts/bench/format.js';
import { parseBenchArgs } from '../../scripts/bench/options.js';
import { readPathRatio } from '../../scripts/bench/runner.js';
import type { BenchReport } from '../../scripts/bench/report.js';
import { evaluateTargets, type TargetResult } from '../../scripts/bench/targets.js';
import type { CaseResult, VariantRun } from '../../scripts/bench/types.js';

/** A PUT run at 64 connections: `reqPerSec` for 10 s, and each node's CPU seconds per second (n1 leads). */
function run(system: 'raftkv' | 'etcd', variant: string, round: number, reqPerSec: number, cpu: number[]): VariantRun {
  const requests = reqPerSec * 10;
  return {
    system,
    variant,
    describe: 'PUT /kv/<key>',
    target: 'leader',
    round,
    loadAvg1: 1,
    load: {
      tool: 'wrk',
      connections: 64,
      durationS: 10,
      requests,
      reqPerSec,
      p50Ms: 5,
      p99Ms: 20,
      maxMs: 40,
      non2xx: 0,
      socketErrors: 0,
      timeouts: 0,
    },
    deltas: {
      leaderChanges: 0,
      termChanges: 0,
      leaderBefore: 'n1',
      leaderAfter: 'n1',
      fsyncs: requests,
      writesAcknowledged: system === 'raftkv' ? requests : null,
      cpuSeconds: { n1: cpu[0]! * 10, n2: cpu[1]! * 10, n3: cpu[2]! * 10 },
    },
  };
}

// Three rounds each. raftkv's rounds: 7,000 / 9,000 (lucky) / 8,000 req/s. etcd v2: 6,000 /
// 5,000 / 7,500 (its best single run), median 6,000; etcd v3: 5,800 / 6,500 / 6,400, median 6,400.
const put: CaseResult = {
  name: 'put',
  connections: 64,
  runs: [
    run('raftkv', 'raftkv', 1, 7000, [0.7, 0.35, 0.35]),
    run('raftkv', 'raftkv', 2, 9000, [0.9, 0.3, 0.3]),
    run('raftkv', 'raftkv', 3, 8000, [1.0, 0.4, 0.4]),
    run('etcd', 'etcd-v2', 1, 6000, [0.9, 0.3, 0.3]),
    run('etcd', 'etcd-v2', 2, 5000, [0.9, 0.35, 0.35]),
    run('etcd', 'etcd-v2', 3, 7500, [1.0, 0.3, 0.3]),
    run('etcd', 'etcd-v3', 1, 5800, [1.0, 0.4, 0.4]),
    run('etcd', 'etcd-v3', 2, 6500, [1.1, 0.4, 0.4]),
    run('etcd', 'etcd-v3', 3, 6400, [1.2, 0.4, 0.4]),
  ],
};

/** The targets of a run of `c` alone, against etcd, at 64 connections. */
function targetsOf(c: CaseResult): TargetResult[] {
  return evaluateTargets({
    cases: [c],
    maxConnections: 64,
    readPathRatio: null,
    memory: [],
    memoryAfterWrites: [],
    scanUnderWrite: [],
    vsEtcd: true,
  });
}

describe('the runs a case is judged by', () => {
  it('medianBy takes the middle item, of an even count the middle one worse for its side, and null of none', () => {
    expect(medianBy([3, 1, 2], (n) => n, 'lower')).toBe(2);
    expect(medianBy([3, 1, 2], (n) => n, 'higher')).toBe(2);
    expect(medianBy([4, 1, 3, 2], (n) => n, 'lower')).toBe(2);
    expect(medianBy([4, 1, 3, 2], (n) => n, 'higher')).toBe(3);
    expect(medianBy([], (n: number) => n, 'lower')).toBeNull();
  });

  it('of two rounds (or three with one failed) each side gets its worse middle run: fewer req/s, more CPU', () => {
    const failed: VariantRun = { ...run('raftkv', 'raftkv', 2, 0, [0, 0, 0]), failed: 'wrk exited with 1' };
    const two: CaseResult = {
      name: 'put',
      connections: 64,
      runs: [
        run('raftkv', 'raftkv', 1, 7000, [0.7, 0.35, 0.35]),
        failed,
        { ...put.runs[1]!, round: 3 },
        ...put.runs.slice(3),
      ],
    };
    // Rounds 7,000 req/s at 200 us and 9,000 at 167 us: the slower run, and the dearer CPU.
    expect(raftkvRun(two)?.load.reqPerSec).toBe(7000);
    expect(raftkvCpu(two)?.cpu.total).toBeCloseTo(200);
    // The failed round is listed where it ran, not left out.
    const row = sideBySide({ cases: [two] } as unknown as BenchReport).split('\n')[2]!;
    expect(row).toContain('| 7,000 (7,000 / failed / 9,000) |');
    expect(row).toContain('| 200 (100 / 50) (200 / failed / 167) |');
  });

  it('the read-path ratio without pairs takes the median rounds of get-leader and get-log', () => {
    const reads = (name: 'get-leader' | 'get-log', rps: number[]): CaseResult => ({
      name,
      connections: 64,
      runs: rps.map((r, i) => ({ ...run('raftkv', 'raftkv', i + 1, r, [0.1, 0.1, 0.1]), describe: name })),
    });
    expect(
      readPathRatio([reads('get-leader', [30_000, 20_000, 24_000]), reads('get-log', [8_000, 6_000, 7_000])], 64),
    ).toBe(24_000 / 7_000);
  });

  it("takes raftkv's median run and the etcd API whose median is best, never a side's luckiest run", () => {
    expect(raftkvRun(put)?.round).toBe(3);
    const best = etcdBest(put);
    expect([best?.variant, best?.round]).toEqual(['etcd-v3', 3]);
    expect(ratio(put)).toBeCloseTo(8000 / 6400);
  });

  it("compares each side's median CPU per write over its rounds", () => {
    // raftkv per write: 200, 167 and 225 us; etcd v2: 250, 320 and 213 (median 250); v3: 310,
    // 292 and 313 (median 310).
    expect(raftkvCpu(put)?.cpu.total).toBeCloseTo(200);
    expect(raftkvCpu(put)?.run.round).toBe(1);
    const cheapest = etcdCheapestCpu(put);
    expect([cheapest?.run.variant, cheapest?.cpu.total]).toEqual(['etcd-v2', 250]);
    const targets = targetsOf(put);
    const measured = (prefix: string): string | undefined => targets.find((t) => t.target.startsWith(prefix))?.measured;
    expect(measured('PUT at 64 connections >=')).toBe('1.25x (8000 vs 6400 req/s, etcd-v3)');
    expect(measured('PUT at 64 connections: CPU')).toBe('0.80x (200 vs 250 µs, etcd-v2)');
    // The follower's share is the median-CPU run's own: 50 / 100 us.
    expect(measured("PUT at 64 connections: a follower's")).toBe('0.50 (50 vs 100 µs per write)');
  });

  it('the side-by-side table shows each median with every round after it', () => {
    const report = { cases: [put] } as unknown as BenchReport;
    const row = sideBySide(report).split('\n')[2]!;
    expect(row).toContain('| 8,000 (7,000 / 9,000 / 8,000) | 6,400 (5,800 / 6,500 / 6,400) (v3) | 1.25x |');
    // etcd's CPU cell is its best API's (v3 here), as before rounds; the CPU target takes the cheapest.
    expect(row).toContain('| 200 (100 / 50) (200 / 167 / 225) | 310 (172 / 69) (310 / 292 / 313) |');
  });

  it("judges each side's p99 by its median over the rounds, not by its median run's own", () => {
    // raftkv's median run by req/s (round 3) had its luckiest p99, and etcd v3's median run (round
    // 3) its unluckiest: the medians of the rounds are 20 ms and 25 ms.
    const p99s = new Map([
      ['raftkv', [30, 20, 8]],
      ['etcd-v2', [20, 20, 20]],
      ['etcd-v3', [25, 15, 40]],
    ]);
    const withP99: CaseResult = {
      ...put,
      runs: put.runs.map((r) => ({ ...r, load: { ...r.load, p99Ms: p99s.get(r.variant)![(r.round ?? 1) - 1]! } })),
    };
    const targets = targetsOf(withP99);
    const p99 = targets.find((t) => t.target === "PUT at 64 connections: p99 no worse than etcd's");
    expect([p99?.measured, p99?.status]).toEqual(['20.00 ms vs 25.00 ms (etcd-v3)', 'met']);
    const row = sideBySide({ cases: [withP99] } as unknown as BenchReport).split('\n')[2]!;
    expect(row).toContain('| 20.0 (30.0 / 20.0 / 8.00) | 25.0 (25.0 / 15.0 / 40.0) |');
  });

  it('--repeat takes 1 to 9 rounds (1 by default)', () => {
    const rounds = (argv: string[]): number => {
      const options = parseBenchArgs(argv, 2);
      if (options === 'help' || 'report' in options) throw new Error('unexpected');
      return options.repeat;
    };
    expect(rounds([])).toBe(1);
    expect(rounds(['--repeat', '3'])).toBe(3);
    expect(() => rounds(['--repeat', '0'])).toThrow(/--repeat must be 1 to 9/);
    expect(() => rounds(['--repeat', '10'])).toThrow(/--repeat must be 1 to 9/);
    expect(() => rounds(['--repeat', '2.5'])).toThrow(/whole/);
  });
});
