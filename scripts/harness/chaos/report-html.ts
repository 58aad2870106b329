// The HTML report of a chaos run: one self-contained file (inline CSS and SVG, no scripts, no
// network), readable offline and in any browser. Times are seconds since the workload started.
import { formatOp, formatValue } from '../check/history.js';
import { faultsOverlapping } from './format-summary.js';
import { esc } from './html-escape.js';
import {
  hasSnapshots,
  SNAPSHOT_CSS,
  snapshotChartMarks,
  snapshotLegend,
  snapshotNodeMarks,
  snapshotSection,
} from './report-snapshots.js';
import {
  hasMembership,
  MEMBERSHIP_COLOR,
  MEMBERSHIP_CSS,
  membershipCard,
  membershipChartMarks,
  membershipLegend,
  membershipNodeMarks,
  membershipSection,
} from './report-membership.js';
import { totalInstalls } from './snapshots.js';
import type { FaultRecord } from './nemesis.js';
import type { ChaosOp } from './recorder.js';
import type { ChaosSummary, ViolationDetail } from './result.js';
import type { KindStats, TimelineBucket } from './summary.js';

const WIDTH = 1300;
const MARGIN = { left: 64, right: 16, top: 44, bottom: 34 };
const FAMILY_COLORS: Readonly<Record<string, string>> = {
  kill: '#e5534b',
  pause: '#9a6cf0',
  partition: '#2f81f7',
  membership: MEMBERSHIP_COLOR,
};

export function renderReport(summary: ChaosSummary): string {
  const c = summary.config;
  const title = `raftkv chaos run — seed ${summary.seed}`;
  const snapshot = c.snapshot ?? null;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>${CSS}</style></head>
<body>
<header>
  <h1>${esc(title)} <span class="verdict ${summary.verdict}">${summary.verdict.toUpperCase()}</span></h1>
  <p class="sub">${c.nodes} nodes · ${c.clients} clients · ${c.durationMs / 1000} s · ${c.keys} keys · nemesis <b>${esc(c.kinds.join(', ') || 'none')}</b> ·
  network ${esc(c.network)}${c.workload === undefined ? '' : ` · workload ${esc(c.workload)}`} · faults ${c.faultMs.min / 1000}–${c.faultMs.max / 1000} s, gaps ${c.gapMs.min / 1000}–${c.gapMs.max / 1000} s ·
  ${snapshot === null ? '' : `snapshots every ${snapshot.everyEntries} entries, keep ${snapshot.keepEntries} · `}started ${esc(summary.startedAt)}${c.unsafeMode === null ? '' : ` · <b class="bad">UNSAFE node mode ${esc(c.unsafeMode)}</b>`}</p>
  <p class="reasons">${summary.reasons.map(esc).join('<br>')}</p>
</header>
${cards(summary)}
<section><h2>Throughput <small>operations per second, by outcome</small></h2>${throughputChart(summary)}</section>
<section><h2>Latency <small>p50 and p99 of successful operations per second, log scale</small></h2>${latencyChart(summary)}</section>
<section><h2>Nodes <small>share of the operations sent to each node that succeeded, per second; the node's own faults drawn over it${hasSnapshots(summary) ? ', its snapshot installs (▼) and the transfers it sent (bar)' : ''}${hasMembership(summary) ? ', its removal (✕), its add as a learner (●), catching up (bar) and its promotion (▲)' : ''}</small></h2>${nodeChart(summary)}</section>
${legend(summary)}
${warnings(summary)}
${violations(summary)}
${lostWrites(summary)}
${crashes(summary)}
${problems(summary)}
<div class="cols">
<section><h2>Faults</h2>${faultTable(summary)}</section>
<section><h2>Operations</h2>${opTable(summary)}${reasonTable(summary)}</section>
</div>
<div class="cols">
<section><h2>Leaders</h2>${leaderTable(summary)}</section>
<section><h2>Final values</h2>${finalTable(summary)}</section>
</div>
${snapshotSection(summary)}
${membershipSection(summary)}
<footer>Files in the run directory: <code>history.jsonl</code> (every operation), <code>summary.json</code> (this report's data),
<code>nodes/*.log</code> (node logs). Times are seconds since the workload started.
Replay the fault schedule with <code>npm run chaos -- --seed ${summary.seed} --nemesis ${esc(c.kinds.join(',') || 'none')} --nodes ${c.nodes}${snapshot === null ? '' : ` --snapshot-every ${snapshot.everyEntries} --snapshot-keep ${snapshot.keepEntries}`}${c.workload === 'plain' ? ' --workload plain' : ''}</code>.</footer>
</body></html>
`;
}

// ---------------------------------------------------------------------------------------------

function cards(s: ChaosSummary): string {
  const all = s.ops.all;
  const lin = s.linearizability.result;
  const card = (label: string, value: string, cls = ''): string =>
    `<div class="card ${cls}"><div class="v">${value}</div><div class="l">${esc(label)}</div></div>`;
  return `<div class="cards">
${card('ok', fmtInt(all.ok), 'ok')}
${card('failed (definitely not applied)', fmtInt(all.fail), 'warn')}
${card('unknown outcome (timed out, cut off)', fmtInt(all.unknown))}
${card('ops/s', s.opsPerSecond.toFixed(0))}
${card('latency p50 / p99', `${ms(all.p50)} / ${ms(all.p99)}`)}
${card('faults injected', String(s.faults.length))}
${card('leader changes', String(s.leaderChanges))}
${hasSnapshots(s) ? card('snapshots installed', String(s.snapshots === undefined ? 0 : totalInstalls(s.snapshots))) : ''}
${hasMembership(s) ? card('membership changes', membershipCard(s)) : ''}
${card('longest unavailability', `${(s.unavailability.longestMs / 1000).toFixed(2)} s`)}
${card('linearizability', lin, lin === 'ok' ? 'ok' : lin === 'violation' ? 'bad' : 'warn')}
${card('acked writes lost', `${s.durability.lost.length} / ${fmtInt(s.durability.acknowledgedWrites)}`, s.durability.lost.length === 0 ? 'ok' : 'bad')}
${card('node crashes', String(s.crashes.length), s.crashes.length === 0 ? 'ok' : 'bad')}
</div>`;
}

interface Frame {
  readonly seconds: number;
  readonly height: number;
  readonly x: (sec: number) => number;
  readonly plotTop: number;
  readonly plotBottom: number;
}

function frame(s: ChaosSummary, height: number): Frame {
  const seconds = Math.max(1, s.timeline.length, (s.workload.to - s.workload.from) / 1000);
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  return {
    seconds,
    height,
    x: (sec) => MARGIN.left + (Math.min(Math.max(sec, 0), seconds) / seconds) * plotWidth,
    plotTop: MARGIN.top,
    plotBottom: height - MARGIN.bottom,
  };
}

/** Fault windows, the longest unavailability, leader changes and snapshot transfers: drawn under and over both charts. */
function overlays(s: ChaosSummary, f: Frame): { under: string; over: string } {
  const rel = (t: number): number => (t - s.workload.from) / 1000;
  const under: string[] = [];
  const over: string[] = [];
  const u = s.unavailability;
  if (u.longestMs > 0) {
    const x0 = f.x(rel(u.from));
    const x1 = f.x(rel(u.to));
    under.push(
      `<rect x="${x0}" y="${f.plotTop}" width="${Math.max(1, x1 - x0)}" height="${f.plotBottom - f.plotTop}" fill="url(#hatch)"><title>longest unavailability: ${(u.longestMs / 1000).toFixed(2)} s</title></rect>`,
    );
  }
  s.faults.forEach((fault, i) => {
    const x0 = f.x(rel(fault.start));
    const x1 = f.x(rel(fault.end ?? s.workload.to));
    const color = FAMILY_COLORS[fault.kind.split('-')[0]!] ?? '#888';
    const tip = `#${fault.index} ${fault.label}: ${((fault.start - s.workload.from) / 1000).toFixed(1)}–${(((fault.end ?? s.workload.to) - s.workload.from) / 1000).toFixed(1)} s`;
    under.push(
      `<rect x="${x0}" y="${f.plotTop}" width="${Math.max(1, x1 - x0)}" height="${f.plotBottom - f.plotTop}" fill="${color}" fill-opacity="0.13"><title>${esc(tip)}</title></rect>`,
    );
    under.push(
      `<line x1="${x0}" x2="${x0}" y1="${f.plotTop}" y2="${f.plotBottom}" stroke="${color}" stroke-opacity="0.6"/>`,
    );
    const y = f.plotTop - 6 - (i % 2) * 16;
    // About 6.5 px per character at 11 px: a label that would run off the right edge ends at it.
    const overflows = x0 + 2 + fault.label.length * 6.5 > WIDTH - MARGIN.right;
    const anchor = overflows ? `x="${WIDTH - MARGIN.right}" text-anchor="end"` : `x="${x0 + 2}"`;
    over.push(`<text ${anchor} y="${y}" class="flabel" fill="${color}">${esc(fault.label)}</text>`);
  });
  let row = 0;
  for (const l of s.leaderships) {
    const t = rel(l.at);
    if (t < 0 || t > f.seconds) continue;
    const x = f.x(t);
    over.push(
      `<line x1="${x}" x2="${x}" y1="${f.plotTop}" y2="${f.plotBottom}" class="leader"><title>${esc(`${l.leader} became leader in term ${l.term} at ${t.toFixed(2)} s`)}</title></line>`,
    );
    over.push(
      `<text x="${x + 3}" y="${f.plotBottom - 5 - (row % 2) * 13}" class="llabel">${esc(l.leader)}·t${l.term}</text>`,
    );
    row++;
  }
  over.push(snapshotChartMarks(s, f));
  over.push(membershipChartMarks(s, f));
  return { under: under.join(''), over: over.join('') };
}

function xAxis(f: Frame): string {
  const step = f.seconds <= 30 ? 2 : f.seconds <= 90 ? 5 : f.seconds <= 300 ? 30 : 60;
  const ticks: string[] = [];
  for (let t = 0; t <= f.seconds + 1e-9; t += step) {
    const x = f.x(t);
    ticks.push(
      `<line x1="${x}" x2="${x}" y1="${f.plotBottom}" y2="${f.plotBottom + 4}" class="axis"/><text x="${x}" y="${f.plotBottom + 16}" class="tick" text-anchor="middle">${t}s</text>`,
    );
  }
  return `<line x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${f.plotBottom}" y2="${f.plotBottom}" class="axis"/>${ticks.join('')}`;
}

function svg(f: Frame, body: string, label: string): string {
  return `<svg viewBox="0 0 ${WIDTH} ${f.height}" role="img" aria-label="${esc(label)}" xmlns="http://www.w3.org/2000/svg">
<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#fff3bf" fill-opacity="0.55"/><line x1="0" y1="0" x2="0" y2="6" stroke="#e3b341" stroke-width="2" stroke-opacity="0.55"/></pattern></defs>
${body}</svg>`;
}

function throughputChart(s: ChaosSummary): string {
  const f = frame(s, 300);
  const step = niceStep(Math.max(1, ...s.timeline.map((b) => b.ok + b.fail + b.unknown)) / 4);
  const max = step * Math.ceil(Math.max(1, ...s.timeline.map((b) => b.ok + b.fail + b.unknown)) / step);
  const y = (v: number): number => f.plotBottom - (v / max) * (f.plotBottom - f.plotTop);
  const { under, over } = overlays(s, f);
  const bars: string[] = [];
  const barWidth = Math.max(1, f.x(1) - f.x(0) - 1);
  for (const b of s.timeline) {
    const x = f.x(b.second) + 0.5;
    let base = 0;
    const tip = `${b.second}–${b.second + 1} s: ok ${b.ok}, fail ${b.fail}, unknown ${b.unknown}`;
    for (const [count, cls] of [
      [b.ok, 'b-ok'],
      [b.fail, 'b-fail'],
      [b.unknown, 'b-unk'],
    ] as const) {
      if (count === 0) continue;
      bars.push(
        `<rect x="${x}" y="${y(base + count)}" width="${barWidth}" height="${y(base) - y(base + count)}" class="${cls}"><title>${tip}</title></rect>`,
      );
      base += count;
    }
  }
  const grid = Array.from({ length: Math.round(max / step) }, (_, i) => {
    const v = step * (i + 1);
    return `<line x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${y(v)}" y2="${y(v)}" class="grid"/><text x="${MARGIN.left - 6}" y="${y(v) + 4}" class="tick" text-anchor="end">${fmtInt(v)}</text>`;
  });
  return svg(
    f,
    `${under}${grid.join('')}${bars.join('')}${over}${xAxis(f)}<text x="14" y="${(f.plotTop + f.plotBottom) / 2}" class="ylab" transform="rotate(-90 14 ${(f.plotTop + f.plotBottom) / 2})">ops/s</text>`,
    'throughput per second',
  );
}

function latencyChart(s: ChaosSummary): string {
  const f = frame(s, 280);
  const values = s.timeline.flatMap((b) => [b.p50, b.p99]).filter((v): v is number => v !== null);
  const lo = 0.1;
  const hi = Math.max(10, ...values) * 1.2;
  const y = (v: number): number => {
    const clamped = Math.min(Math.max(v, lo), hi);
    return (
      f.plotBottom -
      ((Math.log10(clamped) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * (f.plotBottom - f.plotTop)
    );
  };
  const { under, over } = overlays(s, f);
  const line = (pick: (b: TimelineBucket) => number | null, cls: string, name: string): string => {
    const segments: string[][] = [[]];
    const dots: string[] = [];
    for (const b of s.timeline) {
      const v = pick(b);
      if (v === null) {
        if (segments.at(-1)!.length > 0) segments.push([]);
        continue;
      }
      const x = f.x(b.second + 0.5);
      segments.at(-1)!.push(`${x.toFixed(1)},${y(v).toFixed(1)}`);
      dots.push(
        `<circle cx="${x.toFixed(1)}" cy="${y(v).toFixed(1)}" r="2" class="${cls}"><title>${b.second}–${b.second + 1} s: ${name} ${v.toFixed(1)} ms</title></circle>`,
      );
    }
    return (
      segments
        .filter((seg) => seg.length > 1)
        .map((seg) => `<polyline points="${seg.join(' ')}" class="${cls}"/>`)
        .join('') + dots.join('')
    );
  };
  const grid: string[] = [];
  for (const v of [0.1, 1, 10, 100, 1000, 10000]) {
    if (v > hi) break;
    grid.push(
      `<line x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${y(v)}" y2="${y(v)}" class="grid"/><text x="${MARGIN.left - 6}" y="${y(v) + 4}" class="tick" text-anchor="end">${v >= 1000 ? `${v / 1000}s` : `${v}ms`}</text>`,
    );
  }
  return svg(
    f,
    `${under}${grid.join('')}${line((b) => b.p99, 'l-p99', 'p99')}${line((b) => b.p50, 'l-p50', 'p50')}${over}${xAxis(f)}<text x="14" y="${(f.plotTop + f.plotBottom) / 2}" class="ylab" transform="rotate(-90 14 ${(f.plotTop + f.plotBottom) / 2})">latency</text>`,
    'latency per second',
  );
}

function nodeChart(s: ChaosSummary): string {
  // n2 before n10: nodes that joined later get higher numbers.
  const nodes = Object.keys(s.nodeTimeline).sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  const rowH = 26;
  const top = 10;
  const height = top + nodes.length * rowH + MARGIN.bottom;
  const base = frame(s, height);
  const f: Frame = { ...base, plotTop: top };
  const rel = (t: number): number => (t - s.workload.from) / 1000;
  const cellW = Math.max(1, f.x(1) - f.x(0));
  const parts: string[] = [];
  nodes.forEach((node, i) => {
    const y = f.plotTop + i * rowH;
    parts.push(
      `<text x="${MARGIN.left - 8}" y="${y + rowH / 2 + 4}" class="tick" text-anchor="end">${esc(node)}</text>`,
    );
    (s.nodeTimeline[node] ?? []).forEach((cell, second) => {
      const total = cell.ok + cell.notOk;
      const color = total === 0 ? '#eaeef2' : shade(cell.ok / total);
      parts.push(
        `<rect x="${f.x(second)}" y="${y + 3}" width="${cellW - 0.5}" height="${rowH - 6}" fill="${color}"><title>${esc(`${node}, ${second}–${second + 1} s: ${cell.ok} ok, ${cell.notOk} not ok`)}</title></rect>`,
      );
    });
    for (const fault of s.faults) {
      // A membership change is drawn by its own marks below (removed, added, promoted).
      if (!fault.nodes.includes(node) || fault.membership !== undefined) continue;
      const family = fault.kind.split('-')[0]!;
      const x0 = f.x(rel(fault.start));
      const x1 = f.x(rel(fault.end ?? s.workload.to));
      const label = family === 'kill' ? 'killed' : family === 'pause' ? 'paused' : 'cut';
      parts.push(
        `<rect x="${x0}" y="${y + 1}" width="${Math.max(2, x1 - x0)}" height="${rowH - 2}" fill="none" stroke="${FAMILY_COLORS[family] ?? '#888'}" stroke-width="2" rx="3"><title>${esc(fault.label)}</title></rect>`,
      );
      if (x1 - x0 > 34)
        parts.push(
          `<text x="${x0 + 4}" y="${y + rowH / 2 + 4}" class="nlabel" fill="${FAMILY_COLORS[family] ?? '#888'}">${label}</text>`,
        );
    }
    parts.push(snapshotNodeMarks(s, node, f, y, rowH));
    parts.push(membershipNodeMarks(s, node, f, y, rowH));
  });
  return svg(f, `${parts.join('')}${xAxis(f)}`, 'per-node availability');
}

/** Red (nothing succeeded) through yellow to green (everything did). */
function shade(okShare: number): string {
  const stops: [number, [number, number, number]][] = [
    [0, [207, 34, 46]],
    [0.5, [212, 167, 44]],
    [1, [45, 164, 78]],
  ];
  for (let i = 1; i < stops.length; i++) {
    const [p1, c1] = stops[i]!;
    const [p0, c0] = stops[i - 1]!;
    if (okShare <= p1) {
      const t = (okShare - p0) / (p1 - p0);
      const c = c0.map((v, k) => Math.round(v + (c1[k]! - v) * t));
      return `rgb(${c[0]},${c[1]},${c[2]})`;
    }
  }
  return 'rgb(45,164,78)';
}

function warnings(s: ChaosSummary): string {
  const items: string[] = [];
  for (const stuck of s.recovery.stuckNodes) {
    items.push(
      `${esc(stuck.node)} served no linearizable read in the 6 s after recovery, although every fault was healed and a leader was up (${esc(stuck.answers)}): a liveness problem.`,
    );
  }
  if (s.ops.unexpected > 0)
    items.push(`${s.ops.unexpected} answers the runner never expects (see "Why operations did not succeed").`);
  if (s.workload.capReached) items.push('The history cap was reached: the clients stopped early.');
  if (items.length === 0) return '';
  return `<section class="warnbox"><h2>Warnings</h2><ul>${items.map((i) => `<li>${i}</li>`).join('')}</ul></section>`;
}

function legend(s: ChaosSummary): string {
  const swatch = (color: string, label: string, opacity = 1): string =>
    `<span><i style="background:${color};opacity:${opacity}"></i>${esc(label)}</span>`;
  return `<p class="legend">${swatch('#2da44e', 'ok')}${swatch('#d4a72c', 'failed')}${swatch('#cf222e', 'unknown')}
${swatch('#0969da', 'p50')}${swatch('#bc4c00', 'p99')}
${swatch(FAMILY_COLORS['kill']!, 'kill fault', 0.35)}${swatch(FAMILY_COLORS['pause']!, 'pause fault', 0.35)}${swatch(FAMILY_COLORS['partition']!, 'partition fault', 0.35)}
<span><i class="hatch"></i>longest unavailability</span><span><i class="lmark"></i>new leader (node·term)</span>${snapshotLegend(s)}${membershipLegend(s)}</p>`;
}

function violations(s: ChaosSummary): string {
  if (s.linearizability.violations.length === 0) return '';
  return `<section class="alert"><h2>Linearizability violations</h2>${s.linearizability.violations.map((v) => violation(s, v)).join('')}</section>`;
}

function violation(s: ChaosSummary, v: ViolationDetail): string {
  const failed = v.culprits.find((op) => op.id === v.failedOp);
  return `<h3>key <code>${esc(v.key)}</code></h3>
<p class="msg">${esc(v.message)}</p>
${failed === undefined ? '' : `<p>Operation that could not be linearized: <b>${esc(formatOp(failed))}</b>, sent to ${esc(failed.node)}.</p>`}
${opsGantt(s, v.culprits, v.failedOp)}
${opsTable(s, v.culprits, v.failedOp)}`;
}

/** The culprits' intervals on their own time axis: the failed one in red, unknown ones open-ended. */
function opsGantt(s: ChaosSummary, ops: readonly ChaosOp[], failedOp: number): string {
  if (ops.length === 0) return '';
  const shown = ops.slice(0, 40);
  const t0 = Math.min(...shown.map((op) => op.invoke));
  const t1 = Math.max(...shown.map((op) => op.end));
  const span = Math.max(1, t1 - t0);
  const left = 250;
  const width = WIDTH - left - 20;
  const rowH = 18;
  const x = (t: number): number => left + ((t - t0) / span) * width;
  const rows = shown.map((op, i) => {
    const yy = 20 + i * rowH;
    const cls =
      op.id === failedOp ? 'g-failed' : op.status === 'unknown' ? 'g-unk' : op.kind === 'get' ? 'g-get' : 'g-write';
    const x1 = op.status === 'unknown' ? left + width : x(op.end);
    const label = `#${op.id} ${op.kind} ${opValue(op)}`;
    return `<text x="4" y="${yy + 12}" class="glabel">${esc(label)}</text><rect x="${x(op.invoke)}" y="${yy + 2}" width="${Math.max(2, x1 - x(op.invoke))}" height="${rowH - 6}" class="${cls}"><title>${esc(formatOp(op))} via ${esc(op.node)}</title></rect>`;
  });
  const from = ((t0 - s.workload.from) / 1000).toFixed(3);
  const to = ((t1 - s.workload.from) / 1000).toFixed(3);
  return `<svg viewBox="0 0 ${WIDTH} ${30 + shown.length * rowH}" xmlns="http://www.w3.org/2000/svg" role="img" aria-label="culprit operations">${rows.join('')}
<text x="${left}" y="12" class="tick">${from} s</text><text x="${left + width}" y="12" class="tick" text-anchor="end">${to} s</text></svg>`;
}

function opsTable(s: ChaosSummary, ops: readonly ChaosOp[], highlight: number | null): string {
  const rel = (t: number | null): string => (t === null ? '∞' : ((t - s.workload.from) / 1000).toFixed(3));
  const rows = ops.map(
    (op) =>
      `<tr${op.id === highlight ? ' class="hl"' : ''}><td>${op.id}</td><td>${op.client}</td><td>${esc(op.node)}</td><td>${op.kind}</td><td>${esc(op.key)}</td><td>${esc(opValue(op))}</td><td>${rel(op.invoke)}</td><td>${rel(op.complete)}</td><td>${op.status}</td><td>${esc(op.reason)}</td></tr>`,
  );
  return `<table class="ops"><thead><tr><th>op</th><th>client</th><th>node</th><th>kind</th><th>key</th><th>value</th><th>invoke s</th><th>complete s</th><th>status</th><th>answer</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

function lostWrites(s: ChaosSummary): string {
  if (s.durability.lost.length === 0) return '';
  return `<section class="alert"><h2>Acknowledged writes lost</h2>
<p>Each was answered 200, yet the key's final value is different and no other write of the key could have taken effect after it.</p>
${opsTable(s, s.durability.lost.slice(0, 50), null)}</section>`;
}

function crashes(s: ChaosSummary): string {
  if (s.crashes.length === 0) return '';
  return `<section class="alert"><h2>Nodes that exited on their own</h2>${s.crashes
    .map(
      (c) =>
        `<h3>${esc(c.node)} at ${((c.at - s.workload.from) / 1000).toFixed(1)} s (code ${c.code ?? '-'}, signal ${c.signal ?? '-'})</h3><pre>${esc(c.logTail.join('\n'))}</pre>`,
    )
    .join('')}</section>`;
}

function problems(s: ChaosSummary): string {
  if (s.problems.length === 0) return '';
  return `<section class="warnbox"><h2>Problems</h2><pre>${esc(s.problems.join('\n\n'))}</pre></section>`;
}

function faultTable(s: ChaosSummary): string {
  if (s.faults.length === 0) return '<p>No faults were injected.</p>';
  const rows = s.faults.map((f: FaultRecord) => {
    const start = (f.start - s.workload.from) / 1000;
    const end = f.end === null ? null : (f.end - s.workload.from) / 1000;
    const color = FAMILY_COLORS[f.kind.split('-')[0]!] ?? '#888';
    const gaveUp = f.membership?.outcome === 'gave-up' ? `gave up: ${f.membership.gaveUp ?? '?'}` : undefined;
    const notes = [f.note, f.error, gaveUp].filter((x): x is string => x !== undefined).join('; ');
    return `<tr><td>${f.index}</td><td><i class="dot" style="background:${color}"></i>${esc(f.label)}</td><td>${start.toFixed(1)}</td><td>${end === null ? '-' : end.toFixed(1)}</td><td>${end === null ? '-' : (end - start).toFixed(1)}</td><td>${esc(notes)}</td></tr>`;
  });
  return `<table><thead><tr><th>#</th><th>fault</th><th>start s</th><th>healed s</th><th>lasted s</th><th>note</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

/** What an operation wrote or read; for a cas, what it expected, wrote, and how it ended. */
function opValue(op: ChaosOp): string {
  if (op.kind === 'delete') return '';
  if (op.kind !== 'cas') return formatValue(op.value);
  const what = `${formatValue(op.expected ?? null)} → ${formatValue(op.value)}`;
  if (op.status !== 'ok') return what;
  if (op.succeeded === true) return `${what} ok`;
  return `${what} failed${op.observed === undefined ? '' : `, saw ${formatValue(op.observed)}`}`;
}

function opTable(s: ChaosSummary): string {
  const kinds = (['get', 'put', 'delete', 'cas', 'all'] as const).filter((k) => {
    // Summaries from before cas operations have no row for them; a plain run has an empty one.
    const st = s.ops[k] as KindStats | undefined;
    return st !== undefined && (k !== 'cas' || st.ok + st.fail + st.unknown > 0);
  });
  const v = s.versioned;
  const versioned =
    v === undefined || s.config.workload !== 'versioned'
      ? ''
      : `<p>Conditional writes and transactions: ${fmtInt(v.casAnswered)} answered, ${fmtInt(v.casSucceeded)} took effect, ` +
        `${fmtInt(v.txnAnswered)} of them transactions. Retried with their Idempotency-Key: ${fmtInt(v.retriedOps)} operations ` +
        `(${fmtInt(v.retries)} retries), ${fmtInt(v.settledByRetry)} answered in the end, ${fmtInt(v.replays)} by a replay of the first answer.</p>`;
  const rows = kinds.map((k) => {
    const st = s.ops[k];
    return `<tr${k === 'all' ? ' class="total"' : ''}><td>${k}</td><td>${fmtInt(st.ok)}</td><td>${fmtInt(st.fail)}</td><td>${fmtInt(st.unknown)}</td><td>${ms(st.p50)}</td><td>${ms(st.p99)}</td></tr>`;
  });
  return `<table><thead><tr><th>kind</th><th>ok</th><th>failed</th><th>unknown</th><th>p50</th><th>p99</th></tr></thead><tbody>${rows.join('')}</tbody></table>${versioned}`;
}

function reasonTable(s: ChaosSummary): string {
  if (s.ops.reasons.length === 0) return '';
  const rows = s.ops.reasons.slice(0, 12).map(([reason, n]) => `<tr><td>${esc(reason)}</td><td>${fmtInt(n)}</td></tr>`);
  return `<h3>Why operations did not succeed</h3><table><thead><tr><th>operation and answer</th><th>count</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

function leaderTable(s: ChaosSummary): string {
  if (s.leaderships.length === 0) return '<p>No leader was seen.</p>';
  const rows = s.leaderships.map((l) => {
    const t = (l.at - s.workload.from) / 1000;
    const during = faultsOverlapping(s.faults, l.at - 1500, l.at).map((f) => f.label);
    return `<tr><td>${t.toFixed(2)}</td><td>${esc(l.leader)}</td><td>${l.term}</td><td>${esc(during.join(', '))}</td></tr>`;
  });
  return `<p>${s.leaderChanges} leader changes (every new term with a leader after the first election), from the node logs.</p>
<table><thead><tr><th>at s</th><th>leader</th><th>term</th><th>fault around it</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

function finalTable(s: ChaosSummary): string {
  const r = s.recovery;
  const entries = Object.entries(r.finalValues);
  const head = r.recovered
    ? `<p>Recovered with leader ${esc(r.leader ?? '-')}; every key read linearizably:</p>`
    : `<p class="bad">Did not recover: ${esc(r.problem ?? 'the run did not get that far')}</p>`;
  if (entries.length === 0) return head;
  return `${head}<table><thead><tr><th>key</th><th>final value</th></tr></thead><tbody>${entries.map(([k, v]) => `<tr><td>${esc(k)}</td><td>${esc(formatValue(v))}</td></tr>`).join('')}</tbody></table>`;
}

// ---------------------------------------------------------------------------------------------

/** The smallest of 1, 2, 2.5 and 5 times a power of ten that is at least `v` (and at least 1). */
function niceStep(v: number): number {
  const magnitude = 10 ** Math.floor(Math.log10(Math.max(1, v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * magnitude >= v) return Math.max(1, m * magnitude);
  return 10 * magnitude;
}

function ms(v: number | null): string {
  return v === null ? '–' : v < 10 ? `${v.toFixed(1)} ms` : `${Math.round(v)} ms`;
}

function fmtInt(v: number): string {
  return Math.round(v).toLocaleString('en-US');
}

const CSS = `
:root{--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--bg:#ffffff;--panel:#f6f8fa}
*{box-sizing:border-box}
body{margin:0 auto;max-width:1360px;padding:20px 28px 40px;font:14px/1.45 -apple-system,BlinkMacSystemFont,"Segoe UI",Helvetica,Arial,sans-serif;color:var(--fg);background:var(--bg)}
h1{font-size:24px;margin:0 0 4px;display:flex;align-items:center;gap:12px}
h2{font-size:17px;margin:22px 0 8px}
h2 small{font-weight:normal;color:var(--muted);font-size:13px;margin-left:6px}
h3{font-size:15px;margin:14px 0 6px}
.sub{color:var(--muted);margin:0 0 6px}
.reasons{margin:0;color:var(--muted)}
.verdict{font-size:14px;padding:3px 10px;border-radius:12px;color:#fff;letter-spacing:.04em}
.verdict.pass{background:#1a7f37}.verdict.violation{background:#cf222e}.verdict.inconclusive{background:#9a6700}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(176px,1fr));gap:10px;margin:16px 0 4px}
.card{background:var(--panel);border:1px solid var(--line);border-radius:8px;padding:10px 12px}
.card .v{font-size:19px;font-weight:600;font-variant-numeric:tabular-nums;white-space:nowrap}
.card .l{color:var(--muted);font-size:12px}
.card.ok .v{color:#1a7f37}.card.bad .v{color:#cf222e}.card.warn .v{color:#9a6700}
svg{width:100%;height:auto;display:block;background:#fff;border:1px solid var(--line);border-radius:8px}
.grid{stroke:#eaeef2}.axis{stroke:#8c959f}
.tick{font-size:11px;fill:#59636e}.ylab{font-size:12px;fill:#59636e;text-anchor:middle}
.flabel{font-size:11px;font-weight:600;stroke:#fff;stroke-width:3px;paint-order:stroke;stroke-linejoin:round}
.nlabel{font-size:11px;font-weight:600;stroke:#fff;stroke-width:3px;paint-order:stroke;stroke-linejoin:round}
.llabel{font-size:10px;fill:#24292f;stroke:#fff;stroke-width:3px;paint-order:stroke;stroke-linejoin:round}
.leader{stroke:#24292f;stroke-dasharray:3 3;stroke-opacity:.55}
.b-ok{fill:#2da44e}.b-fail{fill:#d4a72c}.b-unk{fill:#cf222e}
.l-p50{fill:none;stroke:#0969da;stroke-width:1.6}.l-p99{fill:none;stroke:#bc4c00;stroke-width:1.6}
circle.l-p50{fill:#0969da;stroke:none}circle.l-p99{fill:#bc4c00;stroke:none}
.legend{display:flex;flex-wrap:wrap;gap:16px;color:var(--muted);font-size:12px;margin:8px 0 0}
.legend i{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:5px;vertical-align:-2px}
.legend i.hatch{background:repeating-linear-gradient(45deg,#fff3bf,#fff3bf 3px,#e3b341 3px,#e3b341 5px)}
.legend i.lmark{width:0;border-left:2px dashed #24292f;border-radius:0}
.cols{display:grid;grid-template-columns:1fr 1fr;gap:28px}
table{border-collapse:collapse;width:100%;font-size:13px;font-variant-numeric:tabular-nums}
th,td{border-bottom:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}
th{background:var(--panel);font-weight:600}
tr.total td{font-weight:600}
tr.hl td{background:#ffebe9}
.dot{display:inline-block;width:9px;height:9px;border-radius:50%;margin-right:6px}
.alert{border:1px solid #ff8182;background:#fff8f8;border-radius:8px;padding:4px 16px 14px;margin-top:18px}
.warnbox{border:1px solid #d4a72c;background:#fff8c5;border-radius:8px;padding:4px 16px 14px;margin-top:18px}
.msg{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12.5px;white-space:pre-wrap}
.bad{color:#cf222e}
pre{background:var(--panel);border:1px solid var(--line);border-radius:6px;padding:10px;overflow:auto;font-size:12px;max-height:420px}
code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12.5px}
.glabel{font-size:11px;font-family:ui-monospace,Menlo,monospace;fill:#24292f}
.g-get{fill:#0969da;fill-opacity:.7}.g-write{fill:#2da44e;fill-opacity:.75}.g-unk{fill:#8c959f;fill-opacity:.5}.g-failed{fill:#cf222e}
footer{margin-top:28px;color:var(--muted);font-size:12px}
${SNAPSHOT_CSS}${MEMBERSHIP_CSS}`;
