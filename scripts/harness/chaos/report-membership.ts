// The report's membership marks (membership-nemesis.ts's changes, kept on their FaultRecords): over
// the throughput and latency charts a line where a voter was removed (✕ -n1) and where a new node was
// promoted (▲ +n4), a dot where it was added as a learner; on the node rows the same marks, and a bar
// while the new node caught up; a legend entry, a card and a table of every change and its steps.
// Drawn only when the run chose `membership` or some change happened.
import { esc } from './html-escape.js';
import { describeChange, membershipCounts, type MembershipChange, type MembershipStep } from './membership-change.js';
import type { ChartFrame } from './report-snapshots.js';
import type { ChaosSummary } from './result.js';
import { rel, sec, when } from './report-time.js';

export const MEMBERSHIP_COLOR = '#bf3989';
const MIN_LABEL_GAP = 26;

/** The membership changes of a run, in order, with their turn numbers. */
export function membershipChanges(s: ChaosSummary): { index: number; change: MembershipChange }[] {
  return s.faults.flatMap((f) => (f.membership === undefined ? [] : [{ index: f.index, change: f.membership }]));
}

export function hasMembership(s: ChaosSummary): boolean {
  return s.config.kinds.includes('membership') || membershipChanges(s).length > 0;
}

/** The steps drawn as marks: removals and promotions as lines, adds as dots. */
function marks(s: ChaosSummary): { step: MembershipStep; change: MembershipChange }[] {
  return membershipChanges(s).flatMap(({ change }) =>
    change.steps
      .filter((step) => step.ok && (step.step === 'remove' || step.step === 'add' || step.step === 'promote'))
      .map((step) => ({ step, change })),
  );
}

/** Marks over the throughput and latency charts. */
export function membershipChartMarks(s: ChaosSummary, f: ChartFrame): string {
  const parts: string[] = [];
  let lastLabel = -Infinity;
  for (const { step, change } of marks(s)) {
    const t = rel(s, step.at);
    if (t < 0 || t > f.seconds) continue;
    const x = f.x(t);
    const tip = esc(stepTip(s, step, change));
    if (step.step === 'add') {
      parts.push(`<circle cx="${x}" cy="${f.plotTop + 22}" r="3.5" class="mem-add"><title>${tip}</title></circle>`);
      continue;
    }
    parts.push(
      `<line x1="${x}" x2="${x}" y1="${f.plotTop}" y2="${f.plotBottom}" class="mem"><title>${tip}</title></line>`,
    );
    const label = step.step === 'remove' ? `✕ -${step.node}` : `▲ +${step.node}`;
    if (x - lastLabel >= MIN_LABEL_GAP) {
      parts.push(`<text x="${x + 4}" y="${f.plotTop + 36}" class="mlabel">${esc(label)}</text>`);
      lastLabel = x;
    }
  }
  return parts.join('');
}

/** Marks on one node's row: its removal (✕), its add as a learner (●), catching up (bar), its promotion (▲). */
export function membershipNodeMarks(s: ChaosSummary, node: string, f: ChartFrame, y: number, rowH: number): string {
  const parts: string[] = [];
  for (const { change } of membershipChanges(s)) {
    const mine = change.steps.filter((step) => step.node === node && step.ok);
    const added = mine.find((step) => step.step === 'add');
    const promoted = mine.find((step) => step.step === 'promote');
    if (added !== undefined) {
      const t0 = rel(s, added.at);
      const t1 = rel(s, (promoted ?? change.steps.at(-1) ?? added).at);
      if (t1 >= 0 && t0 <= f.seconds) {
        const x0 = f.x(t0);
        parts.push(
          `<rect x="${x0}" y="${y + rowH - 6}" width="${Math.max(2, f.x(t1) - x0)}" height="3" class="mem-catchup"><title>${esc(`${node}: a learner from ${sec(s, added.at)} s${promoted === undefined ? ', never promoted' : `, promoted at ${sec(s, promoted.at)} s`}`)}</title></rect>`,
        );
      }
    }
    for (const step of mine) {
      if (step.step !== 'remove' && step.step !== 'add' && step.step !== 'promote') continue;
      const t = rel(s, step.at);
      if (t < 0 || t > f.seconds) continue;
      const x = f.x(t);
      const glyph = step.step === 'remove' ? '✕' : step.step === 'add' ? '●' : '▲';
      parts.push(
        `<text x="${x}" y="${y + rowH / 2 + 4}" text-anchor="middle" class="mem-node">${glyph}<title>${esc(stepTip(s, step, change))}</title></text>`,
      );
    }
  }
  return parts.join('');
}

export function membershipLegend(s: ChaosSummary): string {
  if (!hasMembership(s)) return '';
  return `<span><i style="background:${MEMBERSHIP_COLOR};opacity:.35"></i>membership change</span><span><i class="mmark"></i>voter removed (✕ -node) / promoted (▲ +node)</span><span><i class="madd"></i>node added as a learner</span>`;
}

/** "replaced 2 · grew 1 · shrank 1": the card's value (refills and turns that gave up in its title). */
export function membershipCard(s: ChaosSummary): string {
  const counts = membershipCounts(membershipChanges(s).map((c) => c.change));
  return `replaced ${counts.replace + counts.refill} · grew ${counts.grow} · shrank ${counts.shrink}`;
}

/** Every change, its steps with their times and answers, and the voters it left. */
export function membershipSection(s: ChaosSummary): string {
  if (!hasMembership(s)) return '';
  const changes = membershipChanges(s);
  const counts = membershipCounts(changes.map((c) => c.change));
  const head = `<p>Membership changes made through the admin API, one at a time, taking turns with the faults: ${counts.replace} replacement(s), ${counts.grow} grow(s), ${counts.shrink} shrink(s)${counts.refill > 0 ? `, ${counts.refill} refill(s) of a place an earlier change left vacant` : ''}${counts.gaveUp > 0 ? `; <b class="bad">${counts.gaveUp} gave up</b>` : ''}.</p>`;
  if (changes.length === 0) return `<section><h2>Membership</h2>${head}<p>No membership change was made.</p></section>`;
  const rows = changes.map(({ index, change }) => {
    const steps = change.steps
      .map(
        (step) =>
          `${step.ok ? '' : '<b class="bad">'}${esc(step.step)} ${esc(step.node)} ${when(s, step.at)}${step.detail === undefined ? '' : ` <small>(${esc(step.detail)})</small>`}${step.ok ? '' : ' failed</b>'}`,
      )
      .join('<br>');
    const outcome =
      change.outcome === 'done'
        ? 'done'
        : `<b class="bad">${esc(change.outcome)}</b>${change.gaveUp === undefined ? '' : `: ${esc(change.gaveUp)}`}`;
    return `<tr><td>${index}</td><td>${esc(describeChange(change))}</td><td>${steps}</td><td>${outcome}</td><td>${esc(change.voters?.join(', ') ?? '?')}</td></tr>`;
  });
  return `<section><h2>Membership <small>replacements, grows and shrinks (the membership nemesis)</small></h2>${head}
<table><thead><tr><th>#</th><th>change</th><th>steps (s)</th><th>outcome</th><th>voters after</th></tr></thead><tbody>${rows.join('')}</tbody></table></section>`;
}

function stepTip(s: ChaosSummary, step: MembershipStep, change: MembershipChange): string {
  const what =
    step.step === 'remove'
      ? `${step.node} removed`
      : step.step === 'add'
        ? `${step.node} added as a learner`
        : `${step.node} promoted to voter`;
  return `${what} at ${sec(s, step.at)} s (${describeChange(change)})${step.detail === undefined ? '' : `; ${step.detail}`}`;
}

/** The marks' styles, for report-html.ts's stylesheet. */
export const MEMBERSHIP_CSS = `
.mem{stroke:${MEMBERSHIP_COLOR};stroke-width:1.5;stroke-dasharray:5 2;stroke-opacity:.8}
.mem-add{fill:#fff;stroke:${MEMBERSHIP_COLOR};stroke-width:2}
.mem-catchup{fill:${MEMBERSHIP_COLOR};fill-opacity:.6}
.mem-node{font-size:13px;font-weight:700;fill:${MEMBERSHIP_COLOR};stroke:#fff;stroke-width:3px;paint-order:stroke}
.mlabel{font-size:10px;font-weight:600;fill:${MEMBERSHIP_COLOR};stroke:#fff;stroke-width:3px;paint-order:stroke;stroke-linejoin:round}
.legend i.mmark{width:0;border-left:2px dashed ${MEMBERSHIP_COLOR};border-radius:0}
.legend i.madd{width:8px;height:8px;border-radius:50%;background:#fff;border:2px solid ${MEMBERSHIP_COLOR}}
`;
