import { describe, expect, it } from 'vitest';
import type { ChaosOp } from '../../scripts/harness/chaos/recorder.js';
import { decideVerdict, EXIT_CODES, type ChaosSummary } from '../../scripts/harness/chaos/result.js';
import { renderReport } from '../../scripts/harness/chaos/report-html.js';
import { formatSummary, summaryLine } from '../../scripts/harness/chaos/format-summary.js';
import { longestUnavailability, nodeTimeline, opStats, timeline } from '../../scripts/harness/chaos/summary.js';

function fakeSummary(violation: boolean): ChaosSummary {
  const ops: ChaosOp[] = [
    { id: 0, client: 0, key: 'k0', kind: 'put', value: 'w0.0', invoke: 1000, complete: 1010, status: 'ok', node: 'n1', reason: '200', end: 1010 },
    { id: 1, client: 1, key: 'k0', kind: 'put', value: 'w1.0', invoke: 1020, complete: 1030, status: 'ok', node: 'n2', reason: '200', end: 1030 },
    { id: 2, client: 2, key: 'k0', kind: 'get', value: 'w0.0', invoke: 1040, complete: 1050, status: 'ok', node: 'n3', reason: '200', end: 1050 },
    { id: 3, client: 2, key: 'k0', kind: 'put', value: 'w2.0<script>', invoke: 2000, complete: null, status: 'unknown', node: 'n3', reason: 'timeout', end: 4000 },
  ];
  const verdict = decideVerdict({ linearizability: violation ? 'violation' : 'ok', lostWrites: 0, crashes: [], recovered: true, recoveryProblem: null, okOps: 3, problems: [] });
  return {
    seed: 5,
    startedAt: '2026-01-01T00:00:00.000Z',
    config: { nodes: 3, clients: 3, durationMs: 4000, kinds: ['kill-leader', 'partition-link'], network: 'fault-switch', keys: 1, requestTimeoutMs: 2000, faultMs: { min: 1000, max: 2000 }, gapMs: { min: 1000, max: 1000 }, unsafeMode: violation ? 'local-reads' : null },
    schedule: [],
    workload: { from: 1000, to: 5000, capReached: false },
    endedAt: 6000,
    ops: { ...opStats(ops), total: ops.length, unexpected: 0, reasons: [['put timeout', 1]] },
    opsPerSecond: 1,
    faults: [{ index: 0, kind: 'kill-leader', label: 'kill-leader n1', nodes: ['n1'], start: 2000, end: 3500, plannedMs: 1500 }],
    faultCounts: [['kill-leader', 1]],
    leaderships: [{ at: 500, term: 1, leader: 'n1' }, { at: 2600, term: 2, leader: 'n2' }],
    leaderChanges: 1,
    unavailability: longestUnavailability(ops, 1000, 5000),
    timeline: timeline(ops, 1000, 5000),
    nodeTimeline: nodeTimeline(ops, ['n1', 'n2', 'n3'], 1000, 5000),
    recovery: { recovered: true, problem: null, leader: 'n2', finalValues: { k0: 'w1.0' }, stuckNodes: [{ node: 'n3', answers: '503 read_timeout ×3' }] },
    linearizability: {
      result: violation ? 'violation' : 'ok',
      checkMs: 1,
      keys: [{ key: 'k0', result: violation ? 'violation' : 'ok', ops: 4 } as never],
      violations: violation ? [{ key: 'k0', message: 'get k0 -> w0.0 cannot be linearized', failedOp: 2, culprits: ops.slice(0, 3) }] : [],
    },
    durability: { acknowledgedWrites: 2, lost: [] },
    crashes: [],
    problems: [],
    verdict: verdict.verdict,
    reasons: verdict.reasons,
    exitCode: EXIT_CODES[verdict.verdict],
  };
}

describe('the HTML report', () => {
  it('is one self-contained page: no scripts or resources from elsewhere, user data escaped', () => {
    const html = renderReport(fakeSummary(false));
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).not.toMatch(/<(script|link|img|iframe)\b/i);
    expect(html).not.toMatch(/(src|href)=["']?https?:/i);
    expect(html).not.toContain('w2.0<script>');
    expect(html).toContain('kill-leader n1');
    expect(html).toContain('PASS');
    expect(html).toContain('served no linearizable read'); // the stuck-node warning
  });

  it('shows a violation with the operation that could not be linearized', () => {
    const html = renderReport(fakeSummary(true));
    expect(html).toContain('VIOLATION');
    expect(html).toContain('Linearizability violations');
    expect(html).toContain('get k0 -&gt; w0.0 cannot be linearized');
    expect(html).toContain('UNSAFE node mode local-reads');
  });
});

describe('the terminal summary', () => {
  it('ends with one line that says it all', () => {
    const summary = fakeSummary(false);
    expect(summaryLine(summary)).toBe('seed=5 nemesis=kill-leader,partition-link ops ok/fail/unknown=3/0/1 faults=1 leader-changes=1 longest-unavailability=3.95s verdict=PASS');
    const text = formatSummary(summary, '/tmp/run');
    expect(text).toContain('verdict           PASS (exit 0)');
    expect(text).toContain('liveness warning  n3');
  });
});
