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
import type { MembershipChange } from '../../scripts/harness/chaos/membership-change.js';
import type { FaultRecord } from '../../scripts/harness/chaos/nemesis.js';
import { MEMBERSHIP_COLOR } from '../../scripts/harness/chaos/report-membership.js';

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

/** A run with --nemesis kill-leader,membership: n1 replaced by n4, then a grow that gave up (workload 1000-5000 ms). */
function membershipSummary(): ChaosSummary {
  const base = fakeSummary(false);
  const replace: MembershipChange = {
    action: 'replace',
    victim: 'n1',
    victimLed: true,
    newcomer: 'n4',
    steps: [
      { step: 'transfer', node: 'n2', at: 1200, ok: true },
      { step: 'remove', node: 'n1', at: 1300, ok: true },
      { step: 'stop', node: 'n1', at: 1400, ok: true },
      { step: 'add', node: 'n4', at: 1500, ok: true },
      { step: 'start', node: 'n4', at: 1510, ok: true, detail: '--join n2' },
      { step: 'promote', node: 'n4', at: 2500, ok: true, detail: '409 not_caught_up ×4' },
    ],
    outcome: 'done',
    voters: ['n2', 'n3', 'n4'],
  };
  const grow: MembershipChange = {
    action: 'grow',
    victim: null,
    victimLed: false,
    newcomer: 'n5',
    steps: [
      { step: 'add', node: 'n5', at: 3000, ok: true },
      { step: 'start', node: 'n5', at: 3010, ok: true, detail: '--join n2' },
      { step: 'promote', node: 'n5', at: 4000, ok: false, detail: 'not done within 20 s (409 not_caught_up ×80)' },
      { step: 'undo', node: 'n5', at: 4100, ok: true },
    ],
    outcome: 'gave-up',
    gaveUp: 'promote n5: not done within 20 s (409 not_caught_up ×80)',
    voters: ['n2', 'n3', 'n4'],
  };
  const record = (index: number, change: MembershipChange, start: number, end: number): FaultRecord => ({
    index,
    kind: 'membership',
    label: `membership ${change.action}`,
    nodes: [change.victim, change.newcomer].filter((id): id is string => id !== null),
    start,
    end,
    plannedMs: 3000,
    membership: change,
  });
  return {
    ...base,
    config: { ...base.config, kinds: ['kill-leader', 'membership'] },
    faults: [record(1, replace, 1100, 2600), record(2, grow, 2900, 4150)],
    faultCounts: [['membership', 2]],
    nodeTimeline: nodeTimeline([], ['n1', 'n2', 'n3', 'n4', 'n5'], 1000, 5000),
  };
}

describe('membership changes in the report', () => {
  it('marks removals, adds and promotions on the charts and the node rows, with a legend entry, a card and a table', () => {
    const html = renderReport(membershipSummary());
    // The removal and the promotion: a line over both charts (throughput, latency), labelled.
    const removed = 'n1 removed at 0.30 s (replace n1 (leader) -&gt; n4)';
    expect(html.match(new RegExp(`<line [^>]*class="mem"><title>${escapeRe(removed)}</title>`, 'g'))).toHaveLength(2);
    expect(html).toMatch(
      /<line [^>]*class="mem"><title>n4 promoted to voter at 1.50 s \(replace n1 \(leader\) -&gt; n4\); 409 not_caught_up ×4<\/title>/,
    );
    expect(html).toContain('class="mlabel">✕ -n1</text>');
    expect(html).toContain('class="mlabel">▲ +n4</text>');
    // Added as a learner: a dot on both charts; the grow that gave up was added, never promoted.
    expect(html.match(/<circle [^>]*class="mem-add"><title>n5 added as a learner at 2.00 s/g)).toHaveLength(2);
    expect(html).not.toMatch(/n5 promoted/);
    // The node rows: ✕ on n1's, ● and ▲ on n4's, a bar while n4 caught up.
    expect(html).toMatch(/class="mem-node">✕<title>n1 removed/);
    expect(html).toMatch(/class="mem-node">▲<title>n4 promoted/);
    expect(html).toContain('<title>n4: a learner from 0.50 s, promoted at 1.50 s</title>');
    expect(html).toContain('<title>n5: a learner from 2.00 s, never promoted</title>');
    // The change windows are shaded in their own colour, not outlined as faults on the node rows.
    expect(html).toContain(`fill="${MEMBERSHIP_COLOR}" fill-opacity="0.13"`);
    expect(html).not.toMatch(/<rect [^>]*stroke="#bf3989"[^>]*><title>membership/);
    expect(html).toContain('voter removed (✕ -node) / promoted (▲ +node)');
    expect(html).toContain(
      '<div class="v">replaced 1 · grew 0 · shrank 0</div><div class="l">membership changes</div>',
    );
    expect(html).toContain('1 replacement(s), 0 grow(s), 0 shrink(s); <b class="bad">1 gave up</b>');
    expect(html).toContain(
      '<td>replace n1 (leader) -&gt; n4</td><td>transfer n2 0.20<br>remove n1 0.30<br>stop n1 0.40<br>add n4 0.50<br>start n4 0.51 <small>(--join n2)</small><br>promote n4 1.50 <small>(409 not_caught_up ×4)</small></td><td>done</td><td>n2, n3, n4</td>',
    );
    expect(html).toContain(
      '<b class="bad">promote n5 3.00 <small>(not done within 20 s (409 not_caught_up ×80))</small> failed</b>',
    );
    expect(html).toContain('gave up: promote n5: not done within 20 s');
    // The replay command names the kinds.
    expect(html).toContain('--nemesis kill-leader,membership');
    expect(html).not.toMatch(/<(script|link|img|iframe)\b/i);
  });

  it('shows nothing about membership for a run without it', () => {
    const html = renderReport(fakeSummary(false));
    expect(html).not.toContain('class="mem');
    expect(html).not.toContain('<h2>Membership');
    expect(html).not.toContain('membership changes');
    expect(formatSummary(fakeSummary(false), '/tmp/run')).not.toContain('membership');
  });

  it('the terminal summary lists every change with its steps, and its last line counts them', () => {
    const summary = membershipSummary();
    const text = formatSummary(summary, '/tmp/run');
    expect(text).toContain('membership        1 replaced, 0 grown, 0 shrunk; 1 gave up');
    expect(text).toContain(
      '  #1 t+0.1s replace n1 (leader) -> n4: transfer n2 t+0.2s, remove n1 t+0.3s, stop n1 t+0.4s, add n4 t+0.5s, start n4 t+0.5s, promote n4 t+1.5s; voters n2,n3,n4',
    );
    expect(text).toContain(
      '  #2 t+1.9s grow +n5 (gave up): add n5 t+2.0s, start n5 t+2.0s, promote n5 t+3.0s FAILED, undo n5 t+3.1s; gave up: promote n5: not done within 20 s (409 not_caught_up ×80); voters n2,n3,n4',
    );
    expect(summaryLine(summary)).toBe(
      'seed=5 nemesis=kill-leader,membership ops ok/fail/unknown=3/0/1 faults=2 leader-changes=1 longest-unavailability=3.95s replacements=1 grows=0 shrinks=0 membership-gave-up=1 verdict=PASS',
    );
  });
});

function escapeRe(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
