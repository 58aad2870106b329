// A workload as data, independent of the load generator: a weighted mix of request templates whose
// `<var>` markers are filled per request with a random key, value or scan prefix. The wrk driver
// compiles it to Lua, the autocannon driver interprets it in JS: both draw from the same tables.
import { base64, KeySpace } from './keys.js';

/** Per-request random variables a template may use. One draw per request feeds every marker. */
export const VARS = ['key', 'keyB64', 'value', 'valueB64', 'prefix', 'prefixB64', 'prefixEndB64'] as const;
export type Var = (typeof VARS)[number];

export interface RequestTemplate {
  readonly method: 'GET' | 'PUT' | 'POST';
  /** Path and query, e.g. "/kv/<key>?consistency=stale". */
  readonly path: string;
  readonly body?: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** Relative share of the mix (weights need not sum to 1). */
  readonly weight: number;
}

export interface Workload {
  /** Where every request goes, e.g. http://127.0.0.1:40123 (one node). */
  readonly baseUrl: string;
  readonly requests: readonly RequestTemplate[];
}

/** The tables the markers draw from, built once per run from the key space. */
export interface VarTables {
  readonly key: readonly string[];
  readonly keyB64: readonly string[];
  readonly value: readonly string[];
  readonly valueB64: readonly string[];
  readonly prefix: readonly string[];
  readonly prefixB64: readonly string[];
  readonly prefixEndB64: readonly string[];
}

/** Which table indexes a variable: keys, values and prefixes are drawn independently. */
export function tableOf(v: Var): 'keys' | 'values' | 'prefixes' {
  if (v === 'key' || v === 'keyB64') return 'keys';
  if (v === 'value' || v === 'valueB64') return 'values';
  return 'prefixes';
}

export function buildTables(keys: KeySpace, values: readonly string[]): VarTables {
  const keyList = keys.keys();
  const prefixes = keys.prefixes();
  return {
    key: keyList,
    keyB64: keyList.map(base64),
    value: values,
    valueB64: values.map(base64),
    prefix: prefixes,
    prefixB64: prefixes.map(base64),
    prefixEndB64: prefixes.map((p) => base64(KeySpace.prefixEnd(p))),
  };
}

export type Piece = { readonly text: string } | { readonly v: Var };

/** Splits "a<key>b" into literal and variable pieces; an unknown marker is an error, not text. */
export function parseTemplate(template: string): Piece[] {
  const pieces: Piece[] = [];
  const re = /<(\w+)>/g;
  let last = 0;
  for (let m = re.exec(template); m !== null; m = re.exec(template)) {
    const name = m[1] ?? '';
    if (!(VARS as readonly string[]).includes(name))
      throw new Error(`unknown template variable <${name}> in ${template}`);
    if (m.index > last) pieces.push({ text: template.slice(last, m.index) });
    pieces.push({ v: name as Var });
    last = m.index + m[0].length;
  }
  if (last < template.length) pieces.push({ text: template.slice(last) });
  return pieces;
}

/** The variables a workload uses, so drivers only ship the tables they need. */
export function usedVars(workload: Workload): Set<Var> {
  const used = new Set<Var>();
  for (const r of workload.requests) {
    for (const piece of [...parseTemplate(r.path), ...parseTemplate(r.body ?? '')]) if ('v' in piece) used.add(piece.v);
  }
  return used;
}

/** "GET /kv/<key>" and friends, for reports. */
export function describeWorkload(workload: Workload): string {
  const total = workload.requests.reduce((sum, r) => sum + r.weight, 0);
  return workload.requests
    .map((r) => {
      const share = workload.requests.length > 1 ? `${Math.round((100 * r.weight) / total)}% ` : '';
      return `${share}${r.method} ${r.path}${r.body === undefined ? '' : ` ${r.body}`}`;
    })
    .join(' + ');
}
