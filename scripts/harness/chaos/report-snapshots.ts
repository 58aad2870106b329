// The report's snapshot marks (InstallSnapshot transfers, from snapshots.ts): installs as teal
// lines with a ▼ and the installing node over the throughput and latency charts, transfers as teal
// bars along the top of those charts, both again on the node rows; a legend entry and a table.
// Drawn only when the run set --snapshot-every or some transfer happened.
import { esc } from './html-escape.js';
import type { ChaosSummary } from './result.js';
import { rel, sec, when } from './report-time.js';
import type { SnapshotInstall, SnapshotSend } from './snapshots.js';

/** What the marks need of a chart: report-html.ts's Frame. */
export interface ChartFrame {
  readonly seconds: number;
  readonly x: (sec: number) => number;
  readonly plotTop: number;
  readonly plotBottom: number;
}

const INSTALL_COLOR = '#0f7b6c';
const SEND_COLOR = '#39a99a';
const FAILED_COLOR = '#d4a72c';
/** Labels closer than this (px) to the previous one in their row are left out (the line and tooltip stay). */
const MIN_LABEL_GAP = 26;

export function hasSnapshots(s: ChaosSummary): boolean {
  return (
    (s.config.snapshot ?? null) !== null ||
    (s.snapshots?.sends.length ?? 0) > 0 ||
    (s.snapshots?.installs.length ?? 0) > 0
  );
}

/** Marks over the throughput and latency charts. */
export function snapshotChartMarks(s: ChaosSummary, f: ChartFrame): string {
  const activity = s.snapshots;
  if (activity === undefined) return '';
  const parts: string[] = [];
  for (const send of activity.sends) {
    const span = sendSpan(s, f, send);
    if (span !== null)
      parts.push(
        `<rect x="${span.x0}" y="${f.plotTop}" width="${span.width}" height="4" class="${sendClass(send)}"><title>${esc(sendTip(s, send))}</title></rect>`,
      );
  }
  const lastLabel = [-Infinity, -Infinity];
  let row = 0;
  for (const install of activity.installs) {
    const t = rel(s, install.at);
    if (t < 0 || t > f.seconds) continue;
    const x = f.x(t);
    const tip = esc(installTip(s, install));
    parts.push(
      `<line x1="${x}" x2="${x}" y1="${f.plotTop}" y2="${f.plotBottom}" class="snap"><title>${tip}</title></line>`,
    );
    parts.push(`<path d="M${x - 4},${f.plotTop + 5} h8 l-4,7 z" class="snap-mark"><title>${tip}</title></path>`);
    if (x - lastLabel[row % 2]! >= MIN_LABEL_GAP) {
      parts.push(
        `<text x="${x + 5}" y="${f.plotTop + 13 + (row % 2) * 12}" class="slabel">${esc(install.node)}</text>`,
      );
      lastLabel[row % 2] = x;
      row++;
    }
  }
  return parts.join('');
}

/** Marks on one node's row of the node chart: the snapshots it installed (▼) and the transfers it sent (bar at the bottom). */
export function snapshotNodeMarks(s: ChaosSummary, node: string, f: ChartFrame, y: number, rowH: number): string {
  const activity = s.snapshots;
  if (activity === undefined) return '';
  const parts: string[] = [];
  for (const send of activity.sends) {
    if (send.from !== node) continue;
    const span = sendSpan(s, f, send);
    if (span !== null)
      parts.push(
        `<rect x="${span.x0}" y="${y + rowH - 6}" width="${span.width}" height="3" class="${sendClass(send)}"><title>${esc(sendTip(s, send))}</title></rect>`,
      );
  }
  for (const install of activity.installs) {
    if (install.node !== node) continue;
    const t = rel(s, install.at);
    if (t < 0 || t > f.seconds) continue;
    const x = f.x(t);
    parts.push(
      `<path d="M${x - 5},${y + 4} h10 l-5,9 z" class="snap-mark snap-node"><title>${esc(installTip(s, install))}</title></path>`,
    );
  }
  return parts.join('');
}

export function snapshotLegend(s: ChaosSummary): string {
  if (!hasSnapshots(s)) return '';
  return `<span><i class="smark"></i>snapshot installed (▼ node)</span><span><i style="background:${SEND_COLOR}"></i>snapshot transfer (leader to follower)</span><span><i style="background:${FAILED_COLOR}"></i>failed transfer</span>`;
}

/** Counts per node, and every transfer with its times. */
export function snapshotSection(s: ChaosSummary): string {
  if (!hasSnapshots(s)) return '';
  const setting = s.config.snapshot ?? null;
  const head = `<p>${setting === null ? "Compaction at the nodes' defaults" : `The nodes compacted their logs every ${setting.everyEntries} applied entries, keeping ${setting.keepEntries}`}; transfers and installs from the node logs${s.snapshots?.truncated === true ? ' (the lists stop at the first 2000; the counts are complete)' : ''}.</p>`;
  const activity = s.snapshots;
  if (activity === undefined) return `<section><h2>Snapshots</h2>${head}<p>Not recorded in this summary.</p></section>`;
  const nodes = Object.keys(activity.perNode).sort();
  const counts = nodes.map((n) => {
    const c = activity.perNode[n]!;
    return `<tr><td>${esc(n)}</td><td>${c.installed}</td><td>${c.notNeeded}</td><td>${c.sent}</td><td>${c.failed}</td></tr>`;
  });
  const events = [
    ...activity.installs.map((i) => ({
      at: i.at,
      row: `<tr><td>${when(s, i.at)}</td><td>${esc(i.from ?? '?')} → ${esc(i.node)}</td><td>installed</td><td>${i.index}</td><td>${kib(i.bytes)}</td><td>${i.receiveStart === null ? '' : `transfer began ${sec(s, i.receiveStart)} s`}</td></tr>`,
    })),
    ...activity.sends.map((x) => ({
      at: x.start,
      row: `<tr><td>${when(s, x.start)}</td><td>${esc(x.from)} → ${esc(x.to)}</td><td>${x.outcome === 'sent' ? 'sent' : x.outcome === 'failed' ? '<b class="bad">failed</b>' : 'no end logged'}</td><td>${x.index}</td><td>${kib(x.bytes)}</td><td>${x.end === null ? '' : `ended ${sec(s, x.end)} s`}${x.error === undefined ? '' : `: ${esc(x.error)}`}</td></tr>`,
    })),
  ].sort((a, b) => a.at - b.at);
  return `<section><h2>Snapshots <small>InstallSnapshot: followers that needed compacted entries</small></h2>${head}
<div class="cols"><div><table><thead><tr><th>node</th><th>installed</th><th>received, not needed</th><th>sent</th><th>failed sends</th></tr></thead><tbody>${counts.join('')}</tbody></table></div>
<div>${
    events.length === 0
      ? '<p>No snapshot was sent.</p>'
      : `<table><thead><tr><th>at s</th><th>leader → follower</th><th>what</th><th>index</th><th>size</th><th></th></tr></thead><tbody>${events
          .slice(0, 200)
          .map((e) => e.row)
          .join(
            '',
          )}</tbody></table>${events.length > 200 ? `<p>... and ${events.length - 200} more in summary.json.</p>` : ''}`
  }</div></div></section>`;
}

function kib(bytes: number | null): string {
  return bytes === null ? '' : bytes < 1024 ? `${bytes} B` : `${(bytes / 1024).toFixed(1)} KiB`;
}

/** The transfer's bar, clipped to the chart; an unfinished one (no end logged) is a 2 px tick at its start. */
function sendSpan(s: ChaosSummary, f: ChartFrame, send: SnapshotSend): { x0: number; width: number } | null {
  const t0 = rel(s, send.start);
  const t1 = send.end === null ? t0 : rel(s, send.end);
  if (t1 < 0 || t0 > f.seconds) return null;
  const x0 = f.x(t0);
  return { x0, width: Math.max(2, f.x(t1) - x0) };
}

function sendClass(send: SnapshotSend): string {
  return send.outcome === 'failed' ? 'snap-fail' : 'snap-send';
}

function sendTip(s: ChaosSummary, send: SnapshotSend): string {
  const end =
    send.end === null
      ? 'no end logged (superseded, or the leader stopped)'
      : `${send.outcome} at ${sec(s, send.end)} s`;
  return `${send.from} → ${send.to}: snapshot at index ${send.index}, began ${sec(s, send.start)} s, ${end}${send.bytes === null ? '' : `, ${kib(send.bytes)}`}${send.error === undefined ? '' : ` (${send.error})`}`;
}

function installTip(s: ChaosSummary, install: SnapshotInstall): string {
  return `${install.node} installed a snapshot${install.from === null ? '' : ` from ${install.from}`} at ${sec(s, install.at)} s: index ${install.index}, term ${install.term}${install.bytes === null ? '' : `, ${kib(install.bytes)}`}${install.receiveStart === null ? '' : `, transfer began ${sec(s, install.receiveStart)} s`}`;
}

/** The marks' styles, for report-html.ts's stylesheet. */
export const SNAPSHOT_CSS = `
.snap{stroke:${INSTALL_COLOR};stroke-width:1.5;stroke-opacity:.7}
.snap-mark{fill:${INSTALL_COLOR}}
.snap-send{fill:${SEND_COLOR};fill-opacity:.85}.snap-fail{fill:${FAILED_COLOR}}
.slabel{font-size:10px;font-weight:600;fill:${INSTALL_COLOR};stroke:#fff;stroke-width:3px;paint-order:stroke;stroke-linejoin:round}
.legend i.smark{width:0;height:0;background:none;border-left:6px solid transparent;border-right:6px solid transparent;border-top:10px solid ${INSTALL_COLOR};border-radius:0}
`;
