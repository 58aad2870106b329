import { describe, expect, it } from 'vitest';
import type { ChaosOp } from '../../scripts/harness/chaos/recorder.js';
import { decideVerdict, EXIT_CODES, type ChaosSummary } from '../../scripts/harness/chaos/result.js';
import { renderReport } from '../../scripts/harness/chaos/report-html.js';
import { formatSummary, summaryLine } from '../../scripts/harness/chaos/format-summary.js';
import {
  longestUnavailability,
  nodeTimeline,
  opStats,
  timeline,
  versionedStats,
} from '../../scripts/harness/chaos/summary.js';
import type { SnapshotActivity } from '../../scripts/harness/chaos/snapshots.js';

function fakeSummary(violation: boolean): ChaosSummary {
  const ops: ChaosOp[] = [
    {
      id: 0,
      client: 0,
      key: 'k0',
      kind: 'put',
      value: 'w0.0',
      invoke: 1000,
      complete: 1010,
      status: 'ok',
      node: 'n1',
      reason: '200',
      end: 1010,
    },
    {
      id: 1,
      client: 1,
      key: 'k0',
      kind: 'put',
      value: 'w1.0',
      invoke: 1020,
      complete: 1030,
      status: 'ok',
      node: 'n2',
      reason: '200',
      end: 1030,
    },
    {
      id: 2,
      client: 2,
      key: 'k0',
      kind: 'get',
      value: 'w0.0',
      invoke: 1040,
      complete: 1050,
      status: 'ok',
      node: 'n3',
      reason: '200',
      end: 1050,
    },
    {
      id: 3,
      client: 2,
      key: 'k0',
      kind: 'put',
      value: 'w2.0<script>',
      invoke: 2000,
      complete: null,
      status: 'unknown',
      node: 'n3',
      reason: 'timeout',
      end: 4000,
    },
  ];
  const verdict = decideVerdict({
    linearizability: violation ? 'violation' : 'ok',
    lostWrites: 0,
    crashes: [],
    recovered: true,
    recoveryProblem: null,
    okOps: 3,
    problems: [],
  });
  return {
    seed: 5,
    startedAt: '2026-01-01T00:00:00.000Z',
    config: {
      nodes: 3,
      clients: 3,
      durationMs: 4000,
      kinds: ['kill-leader', 'partition-link'],
      network: 'fault-switch',
      keys: 1,
      requestTimeoutMs: 2000,
      faultMs: { min: 1000, max: 2000 },
      gapMs: { min: 1000, max: 1000 },
      unsafeMode: violation ? 'local-reads' : null,
    },
    schedule: [],
    workload: { from: 1000, to: 5000, capReached: false },
    endedAt: 6000,
    ops: { ...opStats(ops), total: ops.length, unexpected: 0, reasons: [['put timeout', 1]] },
    opsPerSecond: 1,
    faults: [
      {
        index: 0,
        kind: 'kill-leader',
        label: 'kill-leader n1',
        nodes: ['n1'],
        start: 2000,
        end: 3500,
        plannedMs: 1500,
      },
    ],
    faultCounts: [['kill-leader', 1]],
    leaderships: [
      { at: 500, term: 1, leader: 'n1' },
      { at: 2600, term: 2, leader: 'n2' },
    ],
    leaderChanges: 1,
    unavailability: longestUnavailability(ops, 1000, 5000),
    timeline: timeline(ops, 1000, 5000),
    nodeTimeline: nodeTimeline(ops, ['n1', 'n2', 'n3'], 1000, 5000),
    recovery: {
      recovered: true,
      problem: null,
      leader: 'n2',
      finalValues: { k0: 'w1.0' },
      stuckNodes: [{ node: 'n3', answers: '503 read_timeout ×3' }],
    },
    linearizability: {
      result: violation ? 'violation' : 'ok',
      checkMs: 1,
      keys: [{ key: 'k0', result: violation ? 'violation' : 'ok', ops: 4 } as never],
      violations: violation
        ? [{ key: 'k0', message: 'get k0 -> w0.0 cannot be linearized', failedOp: 2, culprits: ops.slice(0, 3) }]
        : [],
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

/** A run with --snapshot-every 50 --snapshot-keep 10 (workload 1000-5000 ms on the run clock). */
function snapshotSummary(): ChaosSummary {
  const snapshots: SnapshotActivity = {
    sends: [
      { from: 'n1', to: 'n2', index: 120, term: 1, start: 2400, end: 2450, outcome: 'sent', bytes: 900 },
      {
        from: 'n1',
        to: 'n3',
        index: 130,
        term: 1,
        start: 2600,
        end: 2900,
        outcome: 'failed',
        bytes: 0,
        error: 'no answer within 30000 ms',
      },
      { from: 'n2', to: 'n1', index: 200, term: 2, start: 4000, end: 4100, outcome: 'sent', bytes: 2048 },
    ],
    installs: [
      { node: 'n2', from: 'n1', index: 120, term: 1, receiveStart: 2402, at: 2500, bytes: 900 },
      // During recovery, after the workload: in the table, not on the charts.
      { node: 'n1', from: 'n2', index: 200, term: 2, receiveStart: 4001, at: 5600, bytes: 2048 },
    ],
    perNode: {
      n1: { installed: 1, notNeeded: 0, sent: 1, failed: 1 },
      n2: { installed: 1, notNeeded: 0, sent: 1, failed: 0 },
      n3: { installed: 0, notNeeded: 1, sent: 0, failed: 0 },
    },
    truncated: false,
  };
  const base = fakeSummary(false);
  return { ...base, config: { ...base.config, snapshot: { everyEntries: 50, keepEntries: 10 } }, snapshots };
}

describe('snapshot transfers in the report', () => {
  it('marks installs and transfers on the charts and the node rows, with a legend entry, a card and a table', () => {
    const html = renderReport(snapshotSummary());
    // The install during the workload: a line over both charts (throughput, latency) with its tooltip.
    const tip = 'n2 installed a snapshot from n1 at 1.50 s: index 120, term 1, 900 B, transfer began 1.40 s';
    expect(html.match(new RegExp(`<line [^>]*class="snap"><title>${tip}</title>`, 'g'))).toHaveLength(2);
    // ...and a ▼ on both charts and on n2's node row.
    expect(html.match(new RegExp(`<path [^>]*class="snap-mark[^"]*"><title>${tip}</title>`, 'g'))).toHaveLength(3);
    expect(html).toMatch(/<path [^>]*class="snap-mark snap-node"><title>n2 installed/);
    // The install after the workload is listed, not drawn.
    expect(html).not.toMatch(/class="snap"><title>n1 installed/);
    expect(html).toContain('<td>4.60 (recovery)</td><td>n2 → n1</td><td>installed</td><td>200</td><td>2.0 KiB</td>');
    // Transfers: bars on both charts and on the sender's row; the failed one in its own colour.
    expect(
      html.match(
        /class="snap-send"><title>n1 → n2: snapshot at index 120, began 1.40 s, sent at 1.45 s, 900 B<\/title>/g,
      ),
    ).toHaveLength(3);
    expect(
      html.match(/class="snap-fail"><title>n1 → n3: snapshot at index 130[^<]*no answer within 30000 ms/g),
    ).toHaveLength(3);
    expect(html).toContain('snapshot installed (▼ node)');
    expect(html).toContain('snapshot transfer (leader to follower)');
    expect(html).toContain('<div class="v">2</div><div class="l">snapshots installed</div>');
    expect(html).toContain('every 50 applied entries, keeping 10');
    expect(html).toContain('<tr><td>n3</td><td>0</td><td>1</td><td>0</td><td>0</td></tr>');
    expect(html).toContain('--snapshot-every 50 --snapshot-keep 10');
    expect(html).not.toMatch(/<(script|link|img|iframe)\b/i);
  });

  it('shows nothing about snapshots for a run without them, or a summary written before they were recorded', () => {
    const html = renderReport(fakeSummary(false));
    expect(html).not.toContain('snapshot installed');
    expect(html).not.toContain('class="snap');
    expect(html).not.toContain('<h2>Snapshots');
  });

  it('the terminal summary counts installs per node, and its last line the installs', () => {
    const summary = snapshotSummary();
    const text = formatSummary(summary, '/tmp/run');
    expect(text).toContain(
      'snapshots         every 50 entries, keep 10; installs n1 1, n2 1, n3 0 (2 in all); sent n1 1 (+1 failed), n2 1; 1 received but not needed',
    );
    expect(summaryLine(summary)).toBe(
      'seed=5 nemesis=kill-leader,partition-link ops ok/fail/unknown=3/0/1 faults=1 leader-changes=1 longest-unavailability=3.95s snapshot-installs=2 verdict=PASS',
    );
    expect(formatSummary(fakeSummary(false), '/tmp/run')).not.toContain('snapshots ');
  });
});

describe('the terminal summary', () => {
  it('ends with one line that says it all', () => {
    const summary = fakeSummary(false);
    expect(summaryLine(summary)).toBe(
      'seed=5 nemesis=kill-leader,partition-link ops ok/fail/unknown=3/0/1 faults=1 leader-changes=1 longest-unavailability=3.95s verdict=PASS',
    );
    const text = formatSummary(summary, '/tmp/run');
    expect(text).toContain('verdict           PASS (exit 0)');
    expect(text).toContain('liveness warning  n3');
  });
});

describe('a run of the versioned workload', () => {
  function versionedSummary(): ChaosSummary {
    const base = fakeSummary(false);
    const cas: ChaosOp[] = [
      {
        id: 10,
        client: 0,
        key: 'k0',
        kind: 'cas',
        value: 'w0.1',
        expected: 'w1.0',
        succeeded: true,
        invoke: 3000,
        complete: 3400,
        status: 'ok',
        node: 'n2',
        reason: '200',
        end: 3400,
        attempts: 2,
        replayed: true,
      },
      {
        id: 11,
        client: 1,
        key: 'k0',
        kind: 'cas',
        value: 'w1.1',
        expected: 'w1.0',
        succeeded: false,
        observed: 'w0.1',
        invoke: 3500,
        complete: 3510,
        status: 'ok',
        node: 'n1',
        reason: '200',
        end: 3510,
        viaTxn: true,
      },
    ];
    const ops = [...base.durability.lost, ...cas];
    return {
      ...base,
      config: { ...base.config, workload: 'versioned' },
      ops: { ...base.ops, cas: opStats(ops).cas },
      versioned: versionedStats(ops),
      linearizability: {
        ...base.linearizability,
        violations: [{ key: 'k0', message: 'cas k0 cannot be linearized', failedOp: 11, culprits: cas }],
      },
    };
  }

  it('shows cas operations, transactions, retries and replays in the terminal summary, its last line and the report', () => {
    const summary = versionedSummary();
    const text = formatSummary(summary, '/tmp/run');
    expect(text).toContain('workload          versioned');
    expect(text).toMatch(/\n {2}cas {14}\s+2\s+0\s+0/);
    expect(text).toContain(
      'versioned         cas 2 answered (1 succeeded, 1 failed; 1 transactions); 1 operations retried with their Idempotency-Key (1 retries; 1 answered in the end, 1 by a replay of the first answer)',
    );
    expect(summaryLine(summary)).toBe(
      'seed=5 nemesis=kill-leader,partition-link ops ok/fail/unknown=3/0/1 faults=1 leader-changes=1 longest-unavailability=3.95s cas=2/1 retries=1 replays=1 verdict=PASS',
    );
    const html = renderReport(summary);
    expect(html).toContain('<td>cas</td>');
    expect(html).toContain('1 of them transactions');
    expect(html).toContain('&#39;w1.0&#39; → &#39;w1.1&#39; failed, saw &#39;w0.1&#39;');
  });

  it('a plain run shows no cas row and no versioned line, and its replay command names the workload', () => {
    const base = fakeSummary(false);
    const summary: ChaosSummary = {
      ...base,
      config: { ...base.config, workload: 'plain' },
      versioned: versionedStats([]),
    };
    const text = formatSummary(summary, '/tmp/run');
    expect(text).not.toContain('versioned ');
    expect(text).not.toMatch(/\n {2}cas /);
    expect(summaryLine(summary)).not.toContain('cas=');
    expect(renderReport(summary)).toContain('--workload plain</code>');
  });
});
