import { describe, expect, it } from 'vitest';
import type { OpKind, OpStatus } from '../../scripts/harness/check/history.js';
import { leaderChanges, leadershipsFromLogs } from '../../scripts/harness/chaos/leaders.js';
import type { ChaosOp } from '../../scripts/harness/chaos/recorder.js';
import { decideVerdict, type VerdictInputs } from '../../scripts/harness/chaos/result.js';
import {
  longestUnavailability,
  lostAckedWrites,
  nodeTimeline,
  opStats,
  percentile,
  timeline,
  versionedStats,
} from '../../scripts/harness/chaos/summary.js';

let nextId = 0;
function op(
  kind: OpKind,
  status: OpStatus,
  invoke: number,
  end: number,
  value: string | null = null,
  key = 'k',
): ChaosOp {
  return {
    id: nextId++,
    client: 0,
    key,
    kind,
    value,
    invoke,
    complete: status === 'unknown' ? null : end,
    status,
    node: 'n1',
    reason: status === 'ok' ? '200' : 'x',
    end,
  };
}

describe('summary math', () => {
  it('percentiles are nearest-rank', () => {
    const values = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(values, 50)).toBe(50);
    expect(percentile(values, 99)).toBe(99);
    expect(percentile(values, 100)).toBe(100);
    expect(percentile([7], 99)).toBe(7);
    expect(percentile([], 50)).toBeNull();
  });

  it('counts outcomes per kind, with latency percentiles of the successful operations only', () => {
    const stats = opStats([
      op('get', 'ok', 0, 10),
      op('get', 'ok', 0, 30),
      op('get', 'fail', 0, 1000),
      op('put', 'unknown', 0, 2000, 'v'),
      op('delete', 'ok', 5, 10),
    ]);
    expect(stats.get).toEqual({ ok: 2, fail: 1, unknown: 0, p50: 10, p99: 30 });
    expect(stats.put).toEqual({ ok: 0, fail: 0, unknown: 1, p50: null, p99: null });
    expect(stats.all).toMatchObject({ ok: 3, fail: 1, unknown: 1, p50: 10, p99: 30 });
  });

  it('the longest unavailability is the longest stretch without a successful completion, window ends included', () => {
    const ops = [
      op('get', 'ok', 0, 1000),
      op('put', 'fail', 1000, 2500, 'v'),
      op('put', 'ok', 2000, 4000, 'w'),
      op('get', 'ok', 4000, 4500),
    ];
    expect(longestUnavailability(ops, 0, 5000)).toEqual({ longestMs: 3000, from: 1000, to: 4000 });
    expect(longestUnavailability(ops, 0, 12_000)).toEqual({ longestMs: 7500, from: 4500, to: 12_000 });
    expect(longestUnavailability([], 100, 600)).toEqual({ longestMs: 500, from: 100, to: 600 });
  });

  it('the timeline buckets operations by the second they ended, relative to the workload start', () => {
    const ops = [
      op('get', 'ok', 1000, 1100),
      op('get', 'ok', 1200, 1500),
      op('put', 'fail', 1900, 2100, 'v'),
      op('put', 'unknown', 2000, 4999, 'w'),
    ];
    const buckets = timeline(ops, 1000, 4000);
    expect(buckets).toHaveLength(3);
    expect(buckets[0]).toEqual({ second: 0, ok: 2, fail: 0, unknown: 0, p50: 100, p99: 300 });
    expect(buckets[1]).toMatchObject({ second: 1, ok: 0, fail: 1, p50: null });
    expect(buckets[2]).toMatchObject({ second: 2, unknown: 1 }); // past the end: clamped into the last bucket
  });
});

describe('lost acknowledged writes', () => {
  it('flags an acknowledged write that the final value contradicts and nothing could have overwritten', () => {
    const w1 = op('put', 'ok', 0, 10, 'a');
    const w2 = op('put', 'ok', 20, 30, 'b');
    expect(lostAckedWrites([w1, w2], new Map([['k', 'a']]))).toEqual([w2]);
    expect(lostAckedWrites([w1, w2], new Map([['k', 'b']]))).toEqual([]);
    const del = op('delete', 'ok', 40, 50);
    expect(lostAckedWrites([w1, w2, del], new Map([['k', 'b']]))).toEqual([del]);
    expect(lostAckedWrites([w1, w2, del], new Map([['k', null]]))).toEqual([]);
  });

  it('a concurrent or unknown write may legitimately come after it; failed writes and keys never read do not count', () => {
    const w1 = op('put', 'ok', 0, 100, 'a');
    const concurrent = op('put', 'ok', 50, 60, 'b'); // invoked before w1 completed: may be linearized after it
    expect(lostAckedWrites([w1, concurrent], new Map([['k', 'b']]))).toEqual([]);
    const pending = op('put', 'unknown', -50, 5000, 'c'); // may take effect any time after its invoke
    expect(lostAckedWrites([w1, pending], new Map([['k', 'c']]))).toEqual([]);
    const failed = op('put', 'fail', 200, 210, 'd');
    expect(lostAckedWrites([w1, failed], new Map([['k', 'd']]))).toEqual([w1]);
    expect(lostAckedWrites([w1], new Map())).toEqual([]);
  });
});

describe('conditional writes in the summary', () => {
  const cas = (
    status: OpStatus,
    invoke: number,
    end: number,
    value: string | null,
    extra: Partial<ChaosOp>,
  ): ChaosOp => ({
    ...op('cas', status, invoke, end, value),
    expected: null,
    ...extra,
  });

  it('a cas that failed wrote nothing: it is neither lost nor a write that could overwrite another', () => {
    const w1 = op('put', 'ok', 0, 10, 'a');
    const failed = cas('ok', 20, 30, 'b', { expected: 'x', succeeded: false, observed: 'a' });
    expect(lostAckedWrites([w1, failed], new Map([['k', 'a']]))).toEqual([]);
    const w2 = op('put', 'ok', 40, 50, 'c');
    const failedLater = cas('ok', 45, 60, 'd', { expected: 'x', succeeded: false });
    // Only the failed cas was concurrent with w2: it cannot have overwritten it.
    expect(lostAckedWrites([w2, failedLater], new Map([['k', 'd']]))).toEqual([w2]);
  });

  it('a cas that succeeded is an acknowledged write like a put (a conditional delete, of null); an unknown one may overwrite', () => {
    const won = cas('ok', 0, 10, 'a', { succeeded: true });
    expect(lostAckedWrites([won], new Map([['k', 'b']]))).toEqual([won]);
    expect(lostAckedWrites([won], new Map([['k', 'a']]))).toEqual([]);
    const deleted = cas('ok', 20, 30, null, { expected: 'a', succeeded: true });
    expect(lostAckedWrites([won, deleted], new Map([['k', 'a']]))).toEqual([deleted]);
    const unknown = cas('unknown', 40, 5000, 'c', { expected: null });
    expect(lostAckedWrites([won, deleted, unknown], new Map([['k', 'c']]))).toEqual([]);
  });

  it('counts cas answers, transactions, retried operations, retries and replays', () => {
    const ops = [
      cas('ok', 0, 10, 'a', { succeeded: true, viaTxn: true, attempts: 3, replayed: true }),
      cas('ok', 0, 10, 'b', { succeeded: false, observed: null }),
      cas('unknown', 0, 10, 'c', { attempts: 5 }),
      op('put', 'ok', 0, 10, 'd'),
      { ...op('delete', 'ok', 0, 10), attempts: 2 },
    ];
    expect(versionedStats(ops)).toEqual({
      casAnswered: 2,
      casSucceeded: 1,
      txnAnswered: 1,
      retriedOps: 3,
      retries: 2 + 4 + 1,
      replays: 1,
      settledByRetry: 2,
    });
  });
});

describe('leader changes from node logs', () => {
  it('counts each (term, leader) once, at its first appearance, ignoring other lines', () => {
    const line = (time: number, term: number, leader: string): string =>
      JSON.stringify({ level: 30, time, node: 'nX', term, leader, role: 'follower', msg: `leader is ${leader}` });
    const logs = [
      [
        line(1000, 1, 'n1'),
        '{"level":30,"time":1001,"msg":"raft node started"}',
        'not json "leader is n9"',
        line(5000, 2, 'n2'),
      ].join('\n'),
      [line(1003, 1, 'n1'), line(4990, 2, 'n2'), line(9000, 3, 'n2')].join('\n'),
    ];
    const leaderships = leadershipsFromLogs(logs, (t) => t - 1000);
    expect(leaderships).toEqual([
      { at: 0, term: 1, leader: 'n1' },
      { at: 3990, term: 2, leader: 'n2' },
      { at: 8000, term: 3, leader: 'n2' },
    ]);
    expect(leaderChanges(leaderships)).toBe(2);
    expect(leaderChanges([])).toBe(0);
  });
});

describe('the verdict', () => {
  const clean: VerdictInputs = {
    linearizability: 'ok',
    lostWrites: 0,
    crashes: [],
    recovered: true,
    recoveryProblem: null,
    okOps: 10,
    problems: [],
  };
  it('passes a clean run', () => {
    expect(decideVerdict(clean).verdict).toBe('pass');
  });
  it('a violation, a lost write or a crash fails the run, even when it is also incomplete', () => {
    expect(decideVerdict({ ...clean, linearizability: 'violation' }).verdict).toBe('violation');
    expect(decideVerdict({ ...clean, lostWrites: 1 }).verdict).toBe('violation');
    const crash = { node: 'n2', at: 1, code: 1, signal: null };
    expect(decideVerdict({ ...clean, crashes: [crash], recovered: false, problems: ['interrupted'] })).toMatchObject({
      verdict: 'violation',
      reasons: [expect.stringMatching(/n2 exited on its own/)],
    });
  });
  it('anything that kept the check from being complete is inconclusive', () => {
    expect(decideVerdict({ ...clean, linearizability: 'unknown' }).verdict).toBe('inconclusive');
    expect(decideVerdict({ ...clean, linearizability: 'not-run' }).verdict).toBe('inconclusive');
    expect(decideVerdict({ ...clean, recovered: false, recoveryProblem: 'no leader' }).reasons).toEqual([
      'the cluster did not recover: no leader',
    ]);
    expect(decideVerdict({ ...clean, okOps: 0 }).verdict).toBe('inconclusive');
    expect(decideVerdict({ ...clean, problems: ['setup failed'], recovered: null })).toEqual({
      verdict: 'inconclusive',
      reasons: ['setup failed'],
    });
    expect(decideVerdict({ ...clean, recovered: null }).reasons).toEqual(['the cluster was not healed and read back']);
  });
});

describe('per-node timeline', () => {
  it('counts what each node answered, per second', () => {
    const a = { ...op('get', 'ok', 0, 500), node: 'n1' };
    const b = { ...op('get', 'fail', 0, 1500), node: 'n2' };
    const c = { ...op('put', 'unknown', 0, 1600, 'v'), node: 'n2' };
    expect(nodeTimeline([a, b, c], ['n1', 'n2'], 0, 2000)).toEqual({
      n1: [
        { ok: 1, notOk: 0 },
        { ok: 0, notOk: 0 },
      ],
      n2: [
        { ok: 0, notOk: 0 },
        { ok: 0, notOk: 2 },
      ],
    });
  });
});
