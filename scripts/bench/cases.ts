// The benchmark's cases and, for each system, the requests that drive them. etcd gets every
// comparable API path (v2 keys and the v3 JSON gateway); the report calls the faster one
// "etcd best". Keys, values and scan prefixes come from the same tables for both systems.
import { ETCD_V2_FORM, JSON_HEADERS } from './etcd-system.js';
import type { CaseName, SystemName } from './types.js';
import type { RequestTemplate } from './workload.js';

/** Runs apart from the interleaved cases: raftkv only, fresh clusters of its own. */
export const SCAN_UNDER_WRITE = 'scan-under-write';

export interface CaseSpec {
  readonly name: CaseName;
  readonly summary: string;
  /** Cases with writes: their fsync and acknowledgement deltas feed the batching factor. */
  readonly writes: boolean;
  /** get-log is measured only at the highest connection count (the read-path ratio needs 64). */
  readonly onlyMaxConnections: boolean;
}

export const CASES: Readonly<Record<CaseName, CaseSpec>> = {
  put: {
    name: 'put',
    summary: 'PUT of a random key (of the preloaded ones), 100-byte value, on the leader',
    writes: true,
    onlyMaxConnections: false,
  },
  'get-leader': {
    name: 'get-leader',
    summary: 'linearizable GET of a random key on the leader',
    writes: false,
    onlyMaxConnections: false,
  },
  'get-follower': {
    name: 'get-follower',
    summary: 'linearizable GET of a random key on a follower',
    writes: false,
    onlyMaxConnections: false,
  },
  'get-stale': {
    name: 'get-stale',
    summary: 'stale (local, serializable) GET of a random key on a follower',
    writes: false,
    onlyMaxConnections: false,
  },
  mixed: {
    name: 'mixed',
    summary: '90% linearizable GET / 10% PUT of random keys on the leader',
    writes: true,
    onlyMaxConnections: false,
  },
  scan: {
    name: 'scan',
    summary: 'linearizable prefix scan returning 100 keys on the leader',
    writes: false,
    onlyMaxConnections: false,
  },
  'get-log': {
    name: 'get-log',
    summary:
      'GET through the Raft log (?consistency=log) on the leader, raftkv only: the baseline of the read-path ratio',
    writes: false,
    onlyMaxConnections: true,
  },
};

export interface Variant {
  /** "raftkv", "etcd-v2", "etcd-v3". */
  readonly variant: string;
  readonly target: 'leader' | 'follower';
  readonly requests: readonly RequestTemplate[];
}

const RAW = { 'Content-Type': 'application/octet-stream' } as const;

const raftkv = {
  put: { method: 'PUT', path: '/kv/<key>', body: '<value>', headers: RAW, weight: 1 },
  get: { method: 'GET', path: '/kv/<key>', weight: 1 },
  stale: { method: 'GET', path: '/kv/<key>?consistency=stale', weight: 1 },
  log: { method: 'GET', path: '/kv/<key>?consistency=log', weight: 1 },
  scan: { method: 'GET', path: '/kv?prefix=<prefix>&limit=100', weight: 1 },
} as const satisfies Record<string, RequestTemplate>;

const v2 = {
  put: { method: 'PUT', path: '/v2/keys/<key>', body: 'value=<value>', headers: ETCD_V2_FORM, weight: 1 },
  // quorum=true: in etcd 3.4 a v2 quorum read goes through Raft like a write.
  get: { method: 'GET', path: '/v2/keys/<key>?quorum=true', weight: 1 },
  stale: { method: 'GET', path: '/v2/keys/<key>', weight: 1 },
} as const satisfies Record<string, RequestTemplate>;

const v3 = {
  put: {
    method: 'POST',
    path: '/v3/kv/put',
    body: '{"key":"<keyB64>","value":"<valueB64>"}',
    headers: JSON_HEADERS,
    weight: 1,
  },
  // A v3 range is linearizable by default (ReadIndex), like raftkv's GET.
  get: { method: 'POST', path: '/v3/kv/range', body: '{"key":"<keyB64>"}', headers: JSON_HEADERS, weight: 1 },
  stale: {
    method: 'POST',
    path: '/v3/kv/range',
    body: '{"key":"<keyB64>","serializable":true}',
    headers: JSON_HEADERS,
    weight: 1,
  },
  scan: {
    method: 'POST',
    path: '/v3/kv/range',
    body: '{"key":"<prefixB64>","range_end":"<prefixEndB64>","limit":100}',
    headers: JSON_HEADERS,
    weight: 1,
  },
} as const satisfies Record<string, RequestTemplate>;

function mix(get: RequestTemplate, put: RequestTemplate): RequestTemplate[] {
  return [
    { ...get, weight: 9 },
    { ...put, weight: 1 },
  ];
}

export function variantsFor(system: SystemName, name: CaseName): Variant[] {
  if (system === 'raftkv') {
    switch (name) {
      case 'put':
        return [{ variant: 'raftkv', target: 'leader', requests: [raftkv.put] }];
      case 'get-leader':
        return [{ variant: 'raftkv', target: 'leader', requests: [raftkv.get] }];
      case 'get-follower':
        return [{ variant: 'raftkv', target: 'follower', requests: [raftkv.get] }];
      case 'get-stale':
        return [{ variant: 'raftkv', target: 'follower', requests: [raftkv.stale] }];
      case 'mixed':
        return [{ variant: 'raftkv', target: 'leader', requests: mix(raftkv.get, raftkv.put) }];
      case 'scan':
        return [{ variant: 'raftkv', target: 'leader', requests: [raftkv.scan] }];
      case 'get-log':
        return [{ variant: 'raftkv', target: 'leader', requests: [raftkv.log] }];
    }
  }
  switch (name) {
    case 'put':
      return [
        { variant: 'etcd-v2', target: 'leader', requests: [v2.put] },
        { variant: 'etcd-v3', target: 'leader', requests: [v3.put] },
      ];
    case 'get-leader':
      return [
        { variant: 'etcd-v2', target: 'leader', requests: [v2.get] },
        { variant: 'etcd-v3', target: 'leader', requests: [v3.get] },
      ];
    case 'get-follower':
      return [
        { variant: 'etcd-v2', target: 'follower', requests: [v2.get] },
        { variant: 'etcd-v3', target: 'follower', requests: [v3.get] },
      ];
    case 'get-stale':
      return [
        { variant: 'etcd-v2', target: 'follower', requests: [v2.stale] },
        { variant: 'etcd-v3', target: 'follower', requests: [v3.stale] },
      ];
    case 'mixed':
      return [
        { variant: 'etcd-v2', target: 'leader', requests: mix(v2.get, v2.put) },
        { variant: 'etcd-v3', target: 'leader', requests: mix(v3.get, v3.put) },
      ];
    // v2 has no prefix scan over flat keys (only recursive GETs of a directory): v3 only.
    case 'scan':
      return [{ variant: 'etcd-v3', target: 'leader', requests: [v3.scan] }];
    // raftkv's own baseline; etcd's read through the log is its v2 quorum GET, in get-leader.
    case 'get-log':
      return [];
  }
}
