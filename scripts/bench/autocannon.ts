// The fallback load generator when wrk is missing (the smoke test must not need it): autocannon,
// in this process, driving the same Workload through setupRequest. It is heavier than wrk (it
// competes for the same 2 cores), so the report always says which tool produced its figures.
import { createRequire } from 'node:module';
import { randomInt } from 'node:crypto';
import { parseTemplate, tableOf, type Piece, type VarTables, type Workload } from './workload.js';
import type { LoadResult } from './types.js';

/** The slice of autocannon's (untyped, CommonJS) API we use. */
interface AcRequest {
  method?: string;
  path?: string;
  body?: string;
  headers?: Record<string, string>;
  setupRequest?: (request: AcRequest) => AcRequest;
}
interface AcOptions {
  url: string;
  connections: number;
  duration: number;
  timeout: number;
  requests: AcRequest[];
}
interface AcHistogram {
  p50: number;
  p99: number;
  max: number;
}
interface AcResult {
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  latency: AcHistogram;
  requests: { total: number };
}
interface AcInstance extends PromiseLike<AcResult> {
  stop(): void;
}
type Autocannon = (options: AcOptions) => AcInstance;

const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

export interface AutocannonRun {
  readonly workload: Workload;
  readonly tables: VarTables;
  readonly connections: number;
  readonly durationS: number;
  readonly timeoutS: number;
}

function render(
  pieces: readonly Piece[],
  tables: VarTables,
  draw: { keys: number; values: number; prefixes: number },
): string {
  let out = '';
  for (const p of pieces) out += 'v' in p ? (tables[p.v][draw[tableOf(p.v)]] ?? '') : p.text;
  return out;
}

export async function runAutocannon(run: AutocannonRun): Promise<LoadResult> {
  const { tables } = run;
  const templates = run.workload.requests.map((r) => ({
    method: r.method,
    path: parseTemplate(r.path),
    body: r.body === undefined ? undefined : parseTemplate(r.body),
    headers: { ...r.headers },
  }));
  const total = run.workload.requests.reduce((sum, r) => sum + r.weight, 0);
  const cumulative: number[] = [];
  let acc = 0;
  for (const r of run.workload.requests) cumulative.push((acc += r.weight / total));

  const setupRequest = (request: AcRequest): AcRequest => {
    const draw = {
      keys: randomInt(tables.key.length),
      values: randomInt(tables.value.length),
      prefixes: randomInt(tables.prefix.length),
    };
    const r = Math.random();
    const i = Math.max(
      0,
      cumulative.findIndex((c) => r < c),
    );
    const t = templates[i] ?? templates[0];
    if (t === undefined) throw new Error('a workload needs at least one request');
    return {
      ...request,
      method: t.method,
      path: render(t.path, tables, draw),
      headers: t.headers,
      ...(t.body === undefined ? {} : { body: render(t.body, tables, draw) }),
    };
  };
  // autocannon stops on its 1 s sampling tick, so its duration is whole seconds too.
  const durationS = Math.max(1, Math.round(run.durationS));
  const instance = autocannon({
    url: run.workload.baseUrl,
    connections: run.connections,
    duration: durationS,
    timeout: run.timeoutS,
    requests: [{ setupRequest }],
  });
  // Bounded like wrk: a wedged run is stopped, and its partial result still comes back.
  const guard = setTimeout(() => instance.stop(), (durationS + run.timeoutS + 30) * 1000);
  try {
    const result = await instance;
    const seconds = result.duration;
    return {
      tool: 'autocannon',
      connections: run.connections,
      durationS: seconds,
      requests: result.requests.total,
      reqPerSec: seconds > 0 ? result.requests.total / seconds : 0,
      p50Ms: result.latency.p50,
      p99Ms: result.latency.p99,
      maxMs: result.latency.max,
      non2xx: result.non2xx,
      socketErrors: Math.max(0, result.errors - result.timeouts),
      timeouts: result.timeouts,
    };
  } finally {
    clearTimeout(guard);
  }
}
