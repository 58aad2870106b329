// The terminal summary of a chaos run: a table people can read at a glance, and one line that
// says it all (used in docs/chaos.md's acceptance runs).
import { formatOp } from '../check/history.js';
import { NODE_PROBE_MS } from './final-reads.js';
import { describeChange, membershipCounts, type MembershipChange } from './membership-change.js';
import type { FaultRecord } from './nemesis.js';
import type { ChaosSummary } from './result.js';
import { totalInstalls } from './snapshots.js';
import type { KindStats } from './summary.js';

const MAX_VIOLATIONS_SHOWN = 3;

export function formatSummary(summary: ChaosSummary, runDir: string): string {
  const lines: string[] = [];
  const c = summary.config;
  lines.push('─'.repeat(78));
  lines.push(
    `raftkv chaos run   seed ${summary.seed}   ${c.nodes} nodes   ${c.clients} clients   ${c.durationMs / 1000} s   network ${c.network}` +
      (c.unsafeMode === null ? '' : `   UNSAFE ${c.unsafeMode}`),
  );
  lines.push(`nemesis           ${c.kinds.join(', ') || 'none'}`);
  if (c.workload !== undefined) lines.push(`workload          ${c.workload}`);
  lines.push('');
  lines.push(
    `operations        ${pad('ok', 8)}${pad('fail', 8)}${pad('unknown', 9)}${pad('p50 ms', 9)}${pad('p99 ms', 9)}`,
  );
  for (const kind of ['get', 'put', 'delete', 'cas', 'all'] as const) {
    // Summaries from before cas operations have no row for them; a plain run has an empty one.
    const stats = summary.ops[kind] as KindStats | undefined;
    if (stats === undefined || (kind === 'cas' && stats.ok + stats.fail + stats.unknown === 0)) continue;
    lines.push(`  ${kind.padEnd(16)}${row(stats)}`);
  }
  lines.push(`throughput        ${summary.opsPerSecond.toFixed(0)} ops/s`);
  const versioned = versionedText(summary);
  if (versioned !== null) lines.push(`versioned         ${versioned}`);
  lines.push(
    `faults injected   ${summary.faults.length}${summary.faultCounts.length === 0 ? '' : `: ${summary.faultCounts.map(([k, n]) => `${k} ${n}`).join(', ')}`}`,
  );
  lines.push(`leader changes    ${summary.leaderChanges}`);
  const snapshots = snapshotText(summary);
  if (snapshots !== null) lines.push(`snapshots         ${snapshots}`);
  lines.push(...membershipLines(summary));
  lines.push(`longest unavailability  ${unavailabilityText(summary)}`);
  const lin = summary.linearizability;
  lines.push(
    `linearizability   ${lin.result}${lin.result === 'not-run' ? '' : ` (${lin.keys.length} keys, ${summary.ops.all.ok + summary.ops.all.unknown} informative ops, checked in ${(lin.checkMs / 1000).toFixed(1)} s)`}`,
  );
  for (const v of lin.violations.slice(0, MAX_VIOLATIONS_SHOWN)) {
    lines.push(`  key ${v.key}: ${v.message}`);
    const failed = v.culprits.find((op) => op.id === v.failedOp);
    if (failed !== undefined) lines.push(`    failed: ${formatOp(failed)} via ${failed.node}`);
  }
  if (lin.violations.length > MAX_VIOLATIONS_SHOWN)
    lines.push(`  ... and ${lin.violations.length - MAX_VIOLATIONS_SHOWN} more keys (report.html lists them all)`);
  if (lin.violations.length > 0) lines.push('  (operation times are ms on the run clock, as in history.jsonl)');
  for (const k of lin.keys) if (k.result === 'unknown' && 'message' in k) lines.push(`  key ${k.key}: ${k.message}`);
  const lost = summary.durability.lost;
  lines.push(
    `durability        ${lost.length === 0 ? 'ok' : 'VIOLATED'}: ${lost.length} of ${summary.durability.acknowledgedWrites} acknowledged writes lost`,
  );
  for (const op of lost.slice(0, 5))
    lines.push(
      `  lost: ${formatOp(op)} via ${op.node}; final value ${JSON.stringify(summary.recovery.finalValues[op.key] ?? null)}`,
    );
  lines.push(
    `node crashes      ${summary.crashes.length === 0 ? 'none' : summary.crashes.map((x) => `${x.node} at ${seconds(x.at - summary.workload.from)}`).join(', ')}`,
  );
  for (const crash of summary.crashes) {
    lines.push(`  last lines of ${crash.node}'s log:`);
    for (const line of crash.logTail) lines.push(`    ${line.slice(0, 300)}`);
  }
  for (const stuck of summary.recovery.stuckNodes) {
    lines.push(
      `liveness warning  ${stuck.node} served no linearizable read in ${NODE_PROBE_MS / 1000} s after recovery (${stuck.answers})`,
    );
  }
  if (summary.ops.unexpected > 0)
    lines.push(`warning           ${summary.ops.unexpected} unexpected answers (see summary.json ops.reasons)`);
  for (const problem of summary.problems) lines.push(`problem           ${problem.split('\n')[0]}`);
  lines.push(
    `verdict           ${summary.verdict.toUpperCase()} (exit ${summary.exitCode}): ${summary.reasons.join('; ')}`,
  );
  lines.push(`run dir           ${runDir}  (report.html, summary.json, history.jsonl, nodes/)`);
  lines.push(`summary: ${summaryLine(summary)}`);
  lines.push('─'.repeat(78));
  return lines.join('\n');
}

/** One line: seed, nemesis, ops, faults, leader changes, unavailability, verdict. */
export function summaryLine(summary: ChaosSummary): string {
  const all = summary.ops.all;
  return (
    `seed=${summary.seed} nemesis=${summary.config.kinds.join(',') || 'none'} ` +
    `ops ok/fail/unknown=${all.ok}/${all.fail}/${all.unknown} faults=${summary.faults.length} ` +
    `leader-changes=${summary.leaderChanges} longest-unavailability=${(summary.unavailability.longestMs / 1000).toFixed(2)}s ` +
    snapshotField(summary) +
    versionedField(summary) +
    membershipField(summary) +
    `verdict=${summary.verdict.toUpperCase()}`
  );
}

/** "cas=A/S retries=R replays=P " for a run of the versioned workload; else nothing. */
function versionedField(summary: ChaosSummary): string {
  const v = summary.versioned;
  if (v === undefined || summary.config.workload !== 'versioned') return '';
  return `cas=${v.casAnswered}/${v.casSucceeded} retries=${v.retries} replays=${v.replays} `;
}

/** What conditional writes, transactions and retries did; null for a run without them. */
function versionedText(summary: ChaosSummary): string | null {
  const v = summary.versioned;
  if (v === undefined || summary.config.workload !== 'versioned') return null;
  return (
    `cas ${v.casAnswered} answered (${v.casSucceeded} succeeded, ${v.casAnswered - v.casSucceeded} failed; ` +
    `${v.txnAnswered} transactions); ${v.retriedOps} operations retried with their Idempotency-Key ` +
    `(${v.retries} retries; ${v.settledByRetry} answered in the end, ${v.replays} by a replay of the first answer)`
  );
}

/** "snapshot-installs=N " when the run set --snapshot-every or any follower installed a snapshot; else nothing. */
function snapshotField(summary: ChaosSummary): string {
  const installs = summary.snapshots === undefined ? 0 : totalInstalls(summary.snapshots);
  return (summary.config.snapshot ?? null) === null && installs === 0 ? '' : `snapshot-installs=${installs} `;
}

function changesOf(summary: ChaosSummary): { record: FaultRecord; change: MembershipChange }[] {
  return summary.faults.flatMap((record) =>
    record.membership === undefined ? [] : [{ record, change: record.membership }],
  );
}

function hasMembership(summary: ChaosSummary): boolean {
  return summary.config.kinds.includes('membership') || changesOf(summary).length > 0;
}

/**
 * "replacements=2 grows=1 shrinks=1 " (plus "refills=N" and "membership-gave-up=N" when not 0) for a
 * run with the membership nemesis; else nothing. A refill completes a replacement that gave up.
 */
function membershipField(summary: ChaosSummary): string {
  if (!hasMembership(summary)) return '';
  const c = membershipCounts(changesOf(summary).map((x) => x.change));
  return (
    `replacements=${c.replace} grows=${c.grow} shrinks=${c.shrink} ` +
    (c.refill > 0 ? `refills=${c.refill} ` : '') +
    (c.gaveUp > 0 ? `membership-gave-up=${c.gaveUp} ` : '')
  );
}

/** The membership line, then one line per change: when, what, and when each step ended. */
function membershipLines(summary: ChaosSummary): string[] {
  if (!hasMembership(summary)) return [];
  const changes = changesOf(summary);
  const c = membershipCounts(changes.map((x) => x.change));
  const lines = [
    `membership        ${c.replace} replaced, ${c.grow} grown, ${c.shrink} shrunk${c.refill > 0 ? `, ${c.refill} refilled` : ''}${c.gaveUp > 0 ? `; ${c.gaveUp} gave up` : ''}`,
  ];
  const at = (t: number): string => seconds(t - summary.workload.from);
  for (const { record, change } of changes) {
    const steps = change.steps.map((s) => `${s.step} ${s.node} ${at(s.at)}${s.ok ? '' : ' FAILED'}`).join(', ');
    lines.push(
      `  #${record.index} ${at(record.start)} ${describeChange(change)}: ${steps === '' ? 'no step' : steps}` +
        (change.outcome === 'gave-up' ? `; gave up: ${change.gaveUp ?? '?'}` : '') +
        (change.voters === null ? '' : `; voters ${change.voters.join(',')}`),
    );
  }
  return lines;
}

/** Installs per node, then completed and failed sends per leader; null when there is nothing to say. */
function snapshotText(summary: ChaosSummary): string | null {
  const setting = summary.config.snapshot ?? null;
  const activity = summary.snapshots;
  const installs = activity === undefined ? 0 : totalInstalls(activity);
  if (setting === null && installs === 0 && (activity?.sends.length ?? 0) === 0) return null;
  const parts: string[] = [
    setting === null ? 'node defaults' : `every ${setting.everyEntries} entries, keep ${setting.keepEntries}`,
  ];
  if (activity !== undefined) {
    const nodes = Object.keys(activity.perNode).sort();
    parts.push(
      `installs ${nodes.map((n) => `${n} ${activity.perNode[n]!.installed}`).join(', ')} (${installs} in all)`,
    );
    const senders = nodes.filter((n) => activity.perNode[n]!.sent + activity.perNode[n]!.failed > 0);
    if (senders.length > 0) {
      parts.push(
        `sent ${senders.map((n) => `${n} ${activity.perNode[n]!.sent}${activity.perNode[n]!.failed > 0 ? ` (+${activity.perNode[n]!.failed} failed)` : ''}`).join(', ')}`,
      );
    }
    const notNeeded = nodes.reduce((sum, n) => sum + activity.perNode[n]!.notNeeded, 0);
    if (notNeeded > 0) parts.push(`${notNeeded} received but not needed`);
  }
  return parts.join('; ');
}

function unavailabilityText(summary: ChaosSummary): string {
  const u = summary.unavailability;
  const during = faultsOverlapping(summary.faults, u.from, u.to).map((f) => f.label);
  return (
    `${(u.longestMs / 1000).toFixed(2)} s (from ${seconds(u.from - summary.workload.from)} to ${seconds(u.to - summary.workload.from)}` +
    `${during.length === 0 ? '' : `; during ${during.join(', ')}`})`
  );
}

export function faultsOverlapping(faults: readonly FaultRecord[], from: number, to: number): FaultRecord[] {
  return faults.filter((f) => f.start <= to && (f.end ?? Infinity) >= from);
}

/** A run-clock offset from the workload's start, for people: "t+12.3s". */
export function seconds(ms: number): string {
  return `t${ms < 0 ? '-' : '+'}${(Math.abs(ms) / 1000).toFixed(1)}s`;
}

function row(stats: KindStats): string {
  const ms = (v: number | null): string => (v === null ? '-' : v.toFixed(1));
  return `${pad(String(stats.ok), 8)}${pad(String(stats.fail), 8)}${pad(String(stats.unknown), 9)}${pad(ms(stats.p50), 9)}${pad(ms(stats.p99), 9)}`;
}

function pad(text: string, width: number): string {
  return text.padStart(width);
}
