// The benchmark's command line: `npm run bench -- [options]`, and the tiny --smoke preset the test
// suite runs so the benchmark cannot rot.
import { parseArgs } from 'node:util';
import { SCAN_UNDER_WRITE } from './cases.js';
import { CASE_NAMES, type CaseName, type ToolName } from './types.js';

export interface BenchOptions {
  readonly durationS: number;
  readonly warmupS: number;
  readonly connections: readonly number[];
  readonly cases: readonly CaseName[];
  readonly scanUnderWrite: boolean;
  readonly vsEtcd: boolean;
  /** null: wrk when available, else autocannon. */
  readonly tool: ToolName | null;
  /** The JSON result's path (null: scripts/bench/results/<timestamp>.json). */
  readonly out: string | null;
  readonly smoke: boolean;
  readonly keys: number;
  readonly valueBytes: number;
  /** wrk threads (capped by the connection count); 1 keeps the generator on one of the 2 cores. */
  readonly threads: number;
  /** A request unanswered after this long counts as a timeout error. */
  readonly timeoutS: number;
  /** May install wrk / etcd-server with apt-get (root only). */
  readonly allowInstall: boolean;
  /** Scan-under-write: seconds per phase, write and scan connections, keys per scan. */
  readonly suw: {
    readonly phaseS: number;
    readonly writeConnections: number;
    readonly scanConnections: number;
    readonly scanLimit: number;
    readonly inline: boolean;
  };
  /**
   * Extra pairs of get-leader and get-log runs at the highest connection count, interleaved
   * (leader, log, log, leader, ...), for the read-path ratio; 0: the ratio comes from the two cases.
   */
  readonly readPathPairs: number;
  /** Wait up to this many seconds for the 1-minute load average to drop below maxLoad (0: don't wait). */
  readonly waitForLoadS: number;
  readonly maxLoad: number;
  /** Settings merged into raftkv's cluster.config.json `raft` section (e.g. snapshotEveryEntries). */
  readonly raft: Readonly<Record<string, number>>;
  /**
   * Rounds of every case and connection count (the systems' order alternating from round to
   * round); the report and the targets take each side's median run (case-runs.ts).
   */
  readonly repeat: number;
}

/** `--report FILE`: print an earlier run's JSON as Markdown (targets re-evaluated), run nothing. */
export interface ReportOnly {
  readonly report: string;
}

/** The most rounds `--repeat` takes: a full run of nine rounds is already about two hours. */
export const MAX_REPEAT = 9;

export const USAGE = `usage: npm run bench -- [options]
  --duration S          seconds measured per case and connection count (default 10)
  --warmup S            seconds of the same load first, not measured (default 3)
  --connections LIST    connection counts (default 1,16,64)
  --only LIST           cases to run (default: all): ${[...CASE_NAMES, SCAN_UNDER_WRITE].join(', ')}
  --vs etcd             interleave every case with a three-member etcd cluster
  --tool wrk|autocannon load generator (default: wrk if available or installable, else autocannon)
  --out FILE            the JSON result (default scripts/bench/results/<timestamp>.json)
  --keys N              keys preloaded (default 10000; a multiple of 100)
  --threads N           wrk threads (default 1)
  --timeout S           per-request timeout of the load generator (default 5)
  --no-install          never apt-get install wrk or etcd-server
  --repeat N            rounds of every case and connection count, the systems' order alternating;
                        the tables and targets take each side's median (default 1; at most ${MAX_REPEAT})
  --read-path-pairs N   interleaved pairs of get-leader and get-log runs for the read-path ratio
                        (default 3; 0: the ratio of the two cases' runs)
  --wait-for-load S     wait up to S seconds for the 1-min load average to fall below --max-load (default 0)
  --max-load X          (default: the number of CPUs)
  --raft K=V,...        raftkv settings for cluster.config.json's raft section, e.g.
                        --raft snapshotEveryEntries=100000000 (compaction off)
  --smoke               a tiny run for the test suite: raftkv only, one short case per kind
  --report FILE         print the Markdown of an earlier run's JSON (targets re-evaluated); runs nothing`;

function list(text: string, what: string): string[] {
  const items = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (items.length === 0) throw new Error(`${what}: an empty list`);
  return items;
}

function raftSettings(text: string | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  if (text === undefined) return out;
  for (const item of list(text, '--raft')) {
    const [key, value] = item.split('=');
    const n = Number(value);
    if (key === undefined || key === '' || value === undefined || !Number.isFinite(n))
      throw new Error(`--raft: "${item}" is not KEY=NUMBER`);
    out[key] = n;
  }
  return out;
}

function positive(text: string | undefined, fallback: number, what: string, integer = true): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0 || (integer && !Number.isInteger(n)))
    throw new Error(`${what} must be a ${integer ? 'whole ' : ''}non-negative number, not "${text}"`);
  return n;
}

export function parseBenchArgs(argv: readonly string[], cpus: number): BenchOptions | ReportOnly | 'help' {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      duration: { type: 'string' },
      warmup: { type: 'string' },
      connections: { type: 'string' },
      only: { type: 'string' },
      vs: { type: 'string' },
      tool: { type: 'string' },
      out: { type: 'string' },
      keys: { type: 'string' },
      threads: { type: 'string' },
      timeout: { type: 'string' },
      'no-install': { type: 'boolean', default: false },
      'wait-for-load': { type: 'string' },
      'read-path-pairs': { type: 'string' },
      repeat: { type: 'string' },
      'max-load': { type: 'string' },
      raft: { type: 'string' },
      smoke: { type: 'boolean', default: false },
      report: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) return 'help';
  if (values.report !== undefined) return { report: values.report };
  if (values.vs !== undefined && values.vs !== 'etcd')
    throw new Error(`--vs: only "etcd" is supported, not "${values.vs}"`);
  if (values.tool !== undefined && values.tool !== 'wrk' && values.tool !== 'autocannon')
    throw new Error(`--tool must be wrk or autocannon, not "${values.tool}"`);
  const smoke = values.smoke;
  const only = values.only === undefined ? null : list(values.only, '--only');
  const known: readonly string[] = [...CASE_NAMES, SCAN_UNDER_WRITE];
  for (const name of only ?? [])
    if (!known.includes(name)) throw new Error(`--only: unknown case "${name}" (cases: ${known.join(', ')})`);
  const connections = (
    values.connections === undefined ? (smoke ? ['4'] : ['1', '16', '64']) : list(values.connections, '--connections')
  ).map((c) => {
    const n = Number(c);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--connections: "${c}" is not a positive whole number`);
    return n;
  });
  const keys = positive(values.keys, smoke ? 200 : 10_000, '--keys');
  return {
    durationS: positive(values.duration, smoke ? 1 : 10, '--duration', false),
    warmupS: positive(values.warmup, smoke ? 0 : 3, '--warmup', false),
    connections,
    cases: CASE_NAMES.filter((c) => only === null || only.includes(c)),
    scanUnderWrite: only === null || only.includes(SCAN_UNDER_WRITE),
    vsEtcd: values.vs === 'etcd' && !smoke,
    tool: (values.tool as ToolName | undefined) ?? null,
    out: values.out ?? null,
    smoke,
    keys,
    valueBytes: 100,
    threads: Math.max(1, positive(values.threads, 1, '--threads')),
    timeoutS: Math.max(1, positive(values.timeout, 5, '--timeout')),
    // The smoke test must never need root, the network or apt.
    allowInstall: !values['no-install'] && !smoke,
    suw: smoke
      ? { phaseS: 1, writeConnections: 4, scanConnections: 4, scanLimit: keys, inline: false }
      : { phaseS: 10, writeConnections: 16, scanConnections: 64, scanLimit: Math.min(keys, 10_000), inline: true },
    readPathPairs: positive(values['read-path-pairs'], smoke ? 1 : 3, '--read-path-pairs'),
    waitForLoadS: positive(values['wait-for-load'], 0, '--wait-for-load', false),
    maxLoad: positive(values['max-load'], cpus, '--max-load', false),
    raft: raftSettings(values.raft),
    repeat: rounds(values.repeat),
  };
}

function rounds(text: string | undefined): number {
  const n = positive(text, 1, '--repeat');
  if (n < 1 || n > MAX_REPEAT) throw new Error(`--repeat must be 1 to ${MAX_REPEAT}, not "${text}"`);
  return n;
}
