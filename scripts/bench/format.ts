// The report as Markdown: printed at the end of a run and pasted into BENCHMARKS.md as is.
import { CASES } from './cases.js';
import { etcdBest, medianCpu, medianP99, ratio, raftkvCpu, raftkvRun, roundsOf, type CpuOfRun } from './case-runs.js';
import { cpuPerRequest, type CpuPerRequest } from './deltas.js';
import type { BenchReport } from './report.js';
import { totalErrors, type LoadResult, type NodeMemory, type ReadPathResult, type VariantRun } from './types.js';

const n0 = (n: number): string => Math.round(n).toLocaleString('en-US');
const ms = (n: number): string => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));
const x = (r: number | null): string => (r === null ? '–' : `${r.toFixed(2)}x`);

function errors(load: LoadResult): string {
  const total = totalErrors(load);
  if (total === 0) return '0';
  const parts = [
    load.non2xx > 0 ? `${load.non2xx} non-2xx` : '',
    load.socketErrors > 0 ? `${load.socketErrors} socket` : '',
    load.timeouts > 0 ? `${load.timeouts} timeout` : '',
  ].filter((p) => p !== '');
  return `${total} (${parts.join(', ')})`;
}

function table(head: string[], rows: string[][]): string {
  return [
    `| ${head.join(' | ')} |`,
    `|${head.map((h) => (/^(req|p\d|err|leader|term|load|conns|scans|scan p|writes|write p|ratio|vs|peak|raftkv|etcd|cpu)/i.test(h) ? '---:' : '---')).join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}

/** CPU µs per request summed over the nodes, then the leader's / the busiest follower's: "412 (237 / 140)". */
function cpuCell(r: VariantRun): string {
  return cpuText(cpuPerRequest(r.deltas, r.load.requests));
}

function cpuText(cpu: CpuPerRequest | null): string {
  if (cpu === null) return '–';
  const part = (v: number | null): string => (v === null ? '–' : n0(v));
  return `${n0(cpu.total)} (${part(cpu.leader)} / ${part(cpu.follower)})`;
}

/** A median's cell, with every round's figure after it when there were several: "7,707 (7,102 / 7,707 / 8,020)". */
function withRounds(median: string, all: readonly string[]): string {
  return all.length > 1 ? `${median} (${all.join(' / ')})` : median;
}

/** Each round's figure, or `failed` (a failed round is shown, never silently left out of the list). */
function roundFigures(rounds: readonly VariantRun[], figure: (r: VariantRun) => string): string[] {
  return rounds.map((r) => (r.failed === undefined ? figure(r) : 'failed'));
}

/** A side's median p99 over its rounds, with every round's after it. */
function p99OfRounds(rounds: readonly VariantRun[]): string {
  const median = medianP99(rounds);
  return median === null
    ? '–'
    : withRounds(
        ms(median),
        roundFigures(rounds, (r) => ms(r.load.p99Ms)),
      );
}

function cpuOfRounds(median: CpuOfRun | null, rounds: readonly VariantRun[]): string {
  if (median === null) return '–';
  return withRounds(
    cpuText(median.cpu),
    roundFigures(rounds, (r) => {
      const cpu = cpuPerRequest(r.deltas, r.load.requests);
      return cpu === null ? '–' : n0(cpu.total);
    }),
  );
}

function runRow(r: VariantRun, connections: number, best: VariantRun | null, vs: string): string[] {
  const api = r === best ? `${r.variant} (best)` : r.variant;
  const system = r.round === undefined ? r.system : `${r.system} #${r.round}`;
  const load = (r.loadAvg1 ?? 0).toFixed(1);
  if (r.failed !== undefined)
    return [
      String(connections),
      system,
      api,
      r.load.tool,
      'failed',
      '',
      '',
      r.failed.slice(0, 80).replace(/\|/g, '/'),
      '',
      '',
      load,
      vs,
    ];
  return [
    String(connections),
    system,
    api,
    r.load.tool,
    n0(r.load.reqPerSec),
    ms(r.load.p50Ms),
    ms(r.load.p99Ms),
    errors(r.load),
    cpuCell(r),
    String(r.deltas.leaderChanges),
    load,
    vs,
  ];
}

export function caseTables(report: BenchReport): string {
  const out: string[] = [];
  for (const name of [...new Set(report.cases.map((c) => c.name))]) {
    const cases = report.cases.filter((c) => c.name === name);
    out.push(`##### ${name}: ${CASES[name].summary}`, '');
    const requests = new Map<string, string>();
    for (const c of cases)
      for (const r of c.runs)
        if (!requests.has(r.variant)) requests.set(r.variant, r.describe.replace(/ \([^)]*\)$/, ''));
    for (const [variant, describe] of requests) out.push(`- ${variant}: \`${describe}\``);
    out.push('');
    const rows: string[][] = [];
    for (const c of cases) {
      const best = etcdBest(c);
      const ours = raftkvRun(c);
      for (const r of c.runs) rows.push(runRow(r, c.connections, best, r === ours ? x(ratio(c)) : ''));
    }
    out.push(
      table(
        [
          'conns',
          'system',
          'API',
          'tool',
          'req/s',
          'p50 ms',
          'p99 ms',
          'errors',
          'CPU µs/req (leader / follower)',
          'leader chg',
          'load avg',
          'raftkv/etcd',
        ],
        rows,
      ),
      '',
    );
  }
  return out.join('\n');
}

/** One line per case and connection count: raftkv beside etcd's best path. */
export function sideBySide(report: BenchReport): string {
  const rows = report.cases.map((c) => {
    const ours = raftkvRun(c);
    const theirs = etcdBest(c);
    const oursOk = ours !== null && ours.failed === undefined;
    // With rounds (--repeat): each side's median run, every round's figure after it.
    const oursRounds = oursOk ? roundsOf(c.runs, ours) : [];
    const theirRounds = theirs === null ? [] : roundsOf(c.runs, theirs);
    const reqs = (runs: readonly VariantRun[]): string[] => roundFigures(runs, (r) => n0(r.load.reqPerSec));
    return [
      c.name,
      String(c.connections),
      oursOk ? withRounds(n0(ours.load.reqPerSec), reqs(oursRounds)) : ours === null ? '–' : 'failed',
      theirs === null
        ? '–'
        : `${withRounds(n0(theirs.load.reqPerSec), reqs(theirRounds))} (${theirs.variant.replace('etcd-', '')})`,
      x(ratio(c)),
      oursOk ? p99OfRounds(oursRounds) : '–',
      theirs === null ? '–' : p99OfRounds(theirRounds),
      oursOk ? String(totalErrors(ours.load)) : '–',
      theirs === null ? '–' : String(totalErrors(theirs.load)),
      oursOk ? cpuOfRounds(raftkvCpu(c), oursRounds) : '–',
      theirs === null ? '–' : cpuOfRounds(medianCpu(theirRounds), theirRounds),
      `${oursOk ? String(ours.deltas.leaderChanges) : '–'} / ${theirs === null ? '–' : String(theirs.deltas.leaderChanges)}`,
    ];
  });
  return table(
    [
      'case',
      'conns',
      'raftkv req/s',
      'etcd best req/s',
      'ratio',
      'raftkv p99 ms',
      'etcd p99 ms',
      'raftkv errors',
      'etcd errors',
      'raftkv CPU µs/req',
      'etcd CPU µs/req',
      'leader chg raftkv / etcd',
    ],
    rows,
  );
}

function memoryTable(after: readonly NodeMemory[], end: readonly NodeMemory[]): string {
  const rows = end.map((m) => {
    const a = after.find((b) => b.system === m.system && b.node === m.node);
    const fmt = (v: number | null | undefined): string => (v === null || v === undefined ? '–' : v.toFixed(0));
    return [m.system, m.node, fmt(a?.peakRssMB), fmt(m.peakRssMB)];
  });
  return table(['system', 'node', 'peak RSS MB after the PUT cases', 'peak RSS MB at the end'], rows);
}

function scanUnderWriteTable(report: BenchReport): string {
  const rows: string[][] = [];
  for (const s of report.scanUnderWrite) {
    if (s.failed !== undefined) {
      rows.push([s.mode, 'failed', s.failed.slice(0, 80), '', '', '', '', '', '', '']);
      continue;
    }
    for (const [phase, p] of [
      ['A (writes alone)', s.phaseA],
      [`B (+${s.scanConnections} scans of ${s.scanLimit})`, s.phaseB],
    ] as const) {
      rows.push([
        s.mode,
        phase,
        n0(p.writes.reqPerSec),
        ms(p.writes.p50Ms),
        ms(p.writes.p99Ms),
        p.scans === null ? '–' : p.scans.reqPerSec.toFixed(1),
        p.scans === null ? '–' : ms(p.scans.p99Ms),
        `${totalErrors(p.writes)}${p.scans === null ? '' : ` / ${totalErrors(p.scans)}`}`,
        String(p.deltas.leaderChanges),
        String(p.deltas.termChanges),
      ]);
    }
  }
  const ratios = report.scanUnderWrite
    .filter((s) => s.failed === undefined)
    .map(
      (s) =>
        `${s.mode}: write p99 B/A = ${x(s.writeP99Ratio)}, ${s.leaderChanges} leader change(s), term +${s.phaseA.deltas.termChanges + s.phaseB.deltas.termChanges}`,
    );
  return `${table(['read pool', 'phase', 'writes/s', 'write p50 ms', 'write p99 ms', 'scans/s', 'scan p99 ms', 'errors (writes / scans)', 'leader chg', 'term chg'], rows)}\n\n${ratios.join('; ')}`;
}

function readPathTable(rp: ReadPathResult): string {
  const cell = (r: VariantRun): string =>
    r.failed === undefined ? `${n0(r.load.reqPerSec)} (p99 ${ms(r.load.p99Ms)} ms)` : 'failed';
  const rows = rp.pairs.map((p, i) => [
    String(i + 1),
    i % 2 === 0 ? 'linearizable first' : 'log first',
    cell(p.linearizable),
    cell(p.log),
    p.linearizable.failed === undefined && p.log.failed === undefined && p.log.load.reqPerSec > 0
      ? x(p.linearizable.load.reqPerSec / p.log.load.reqPerSec)
      : '–',
    String(p.linearizable.deltas.leaderChanges + p.log.deltas.leaderChanges),
  ]);
  const table_ = table(
    ['pair', 'order', 'linearizable GET req/s', 'GET through the log req/s', 'ratio', 'leader chg'],
    rows,
  );
  return `${table_}\n\nRead path at ${rp.connections} connections: mean linearizable GET / mean GET through the log = ${rp.ratio === null ? '–' : x(rp.ratio)}.`;
}

export function formatReport(report: BenchReport): string {
  const m = report.machine;
  const out: string[] = [
    `### Run of ${report.startedAt}`,
    '',
    `\`${report.command}\``,
    '',
    `${m.cpus} x ${m.cpuModel}, ${m.totalMemMiB} MiB, Node ${m.node}; load average before ${m.loadAvgBefore.join(' ')}, after ${m.loadAvgAfter.join(' ')}; ` +
      `${report.waitedForLoadS ? `waited ${report.waitedForLoadS} s for it to drop below ${report.options.maxLoad}; ` : ''}tool ${report.tool}; ${report.systems.raftkv ?? ''}${report.systems.etcd === null ? '' : ` vs ${report.systems.etcd}`}; ` +
      `${report.options.durationS} s measured after ${report.options.warmupS} s warm-up per run, ${report.options.keys} keys of ${report.options.valueBytes} bytes.`,
    '',
  ];
  if (report.cases.length > 0) {
    out.push('#### Side by side', '', sideBySide(report), '');
    if (report.readPath != null) out.push('#### Read path (issue 4)', '', readPathTable(report.readPath), '');
    else if (report.readPathRatio !== null)
      out.push(`Read path: linearizable GET / GET through the log = ${x(report.readPathRatio)}.`, '');
    const b = report.batching.raftkv;
    if (b !== null) {
      const etcd = Object.entries(report.batching.etcd).map(
        ([v, e]) => `${v} ${e.fsyncsPerWrite === null ? '–' : e.fsyncsPerWrite.toFixed(3)}`,
      );
      out.push(
        `Fsyncs per acknowledged write over the PUT runs (summed over the 3 nodes; 3.0 = no batching): raftkv ${b.fsyncsPerWrite === null ? '–' : b.fsyncsPerWrite.toFixed(3)} (${n0(b.fsyncs)} fsyncs / ${n0(b.writes)} writes)` +
          `${etcd.length > 0 ? `; etcd WAL fsyncs per 2xx write: ${etcd.join(', ')}` : ''}.` +
          (b.peerRequestsPerWrite == null
            ? ''
            : ` Peer requests per acknowledged write (sent by all nodes): ${b.peerRequestsPerWrite.toFixed(3)}.`),
        '',
      );
    }
    out.push('#### Peak memory', '', memoryTable(report.memory.afterWrites, report.memory.atEnd), '');
  }
  if (report.scanUnderWrite.length > 0)
    out.push('#### Scan under write (issue 4)', '', scanUnderWriteTable(report), '');
  if (report.targets.length > 0)
    out.push(
      '#### Targets',
      '',
      table(
        ['target', 'measured', 'status'],
        report.targets.map((t) => [t.target, t.measured, t.status]),
      ),
      '',
    );
  if (report.cases.length > 0) out.push('#### Every run', '', caseTables(report));
  if (report.notes.length > 0) out.push('#### Notes', '', ...report.notes.map((n) => `- ${n}`), '');
  return out.join('\n');
}
