// The numbers of a chaos run, computed from its history: pure functions, unit-tested.
import { isWrite, type OpKind, type OpStatus } from '../check/history.js';
import type { ChaosOp } from './recorder.js';

export interface KindStats {
  ok: number;
  fail: number;
  unknown: number;
  /** Latency percentiles of the successful operations, ms (null when there are none). */
  p50: number | null;
  p99: number | null;
}

export type OpStats = Record<OpKind | 'all', KindStats>;

export interface TimelineBucket {
  /** Start of the one-second bucket, in seconds since the workload started. */
  readonly second: number;
  readonly ok: number;
  readonly fail: number;
  readonly unknown: number;
  readonly p50: number | null;
  readonly p99: number | null;
}

export interface Unavailability {
  readonly longestMs: number;
  /** The window with no successful operation (run clock, ms). */
  readonly from: number;
  readonly to: number;
}

/** The nearest-rank percentile of ascending `sorted` values; null for an empty list. */
export function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

function latencyOf(op: ChaosOp): number {
  return op.end - op.invoke;
}

function statsOf(ops: readonly ChaosOp[]): KindStats {
  const counts: Record<OpStatus, number> = { ok: 0, fail: 0, unknown: 0 };
  const latencies: number[] = [];
  for (const op of ops) {
    counts[op.status]++;
    if (op.status === 'ok') latencies.push(latencyOf(op));
  }
  latencies.sort((a, b) => a - b);
  return { ...counts, p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
}

export function opStats(ops: readonly ChaosOp[]): OpStats {
  return {
    get: statsOf(ops.filter((op) => op.kind === 'get')),
    put: statsOf(ops.filter((op) => op.kind === 'put')),
    delete: statsOf(ops.filter((op) => op.kind === 'delete')),
    cas: statsOf(ops.filter((op) => op.kind === 'cas')),
    all: statsOf(ops),
  };
}

/** What the versioned workload did: conditional writes and transactions, retries and replays. */
export interface VersionedStats {
  /** Conditional writes and transactions answered (a 200 or a 412), and how many of them took effect. */
  readonly casAnswered: number;
  readonly casSucceeded: number;
  /** Of the answered ones, how many were transactions (POST /txn). */
  readonly txnAnswered: number;
  /** Operations sent more than once, and the attempts after the first. */
  readonly retriedOps: number;
  readonly retries: number;
  /** Operations whose answer was a replay of the first answer (an earlier attempt had been applied). */
  readonly replays: number;
  /** Retried operations that got an answer in the end. */
  readonly settledByRetry: number;
}

export function versionedStats(ops: readonly ChaosOp[]): VersionedStats {
  const cas = ops.filter((op) => op.kind === 'cas' && op.status === 'ok');
  const retried = ops.filter((op) => (op.attempts ?? 1) > 1);
  return {
    casAnswered: cas.length,
    casSucceeded: cas.filter((op) => op.succeeded === true).length,
    txnAnswered: cas.filter((op) => op.viaTxn === true).length,
    retriedOps: retried.length,
    retries: retried.reduce((sum, op) => sum + (op.attempts ?? 1) - 1, 0),
    replays: ops.filter((op) => op.replayed === true).length,
    settledByRetry: retried.filter((op) => op.status === 'ok').length,
  };
}

/**
 * The longest stretch of [from, to] in which no operation succeeded (measured between the
 * completions of successful operations, and the window's ends).
 */
export function longestUnavailability(ops: readonly ChaosOp[], from: number, to: number): Unavailability {
  const completions = ops
    .filter((op) => op.status === 'ok' && op.end >= from && op.end <= to)
    .map((op) => op.end)
    .sort((a, b) => a - b);
  let best: Unavailability = { longestMs: 0, from, to: from };
  let previous = from;
  for (const t of [...completions, to]) {
    if (t - previous > best.longestMs) best = { longestMs: t - previous, from: previous, to: t };
    previous = t;
  }
  return best;
}

/**
 * Per-second counts (by when each operation ended) and latency percentiles of the successful ones,
 * over [fromMs, toMs]: bucket i covers fromMs + [i, i+1) seconds.
 */
export function timeline(ops: readonly ChaosOp[], fromMs: number, toMs: number): TimelineBucket[] {
  const seconds = Math.max(1, Math.ceil((toMs - fromMs) / 1000));
  const buckets = Array.from({ length: seconds }, () => ({ ok: 0, fail: 0, unknown: 0, latencies: [] as number[] }));
  for (const op of ops) {
    const bucket = buckets[Math.min(seconds - 1, Math.max(0, Math.floor((op.end - fromMs) / 1000)))]!;
    bucket[op.status]++;
    if (op.status === 'ok') bucket.latencies.push(latencyOf(op));
  }
  return buckets.map((b, second) => {
    b.latencies.sort((x, y) => x - y);
    return {
      second,
      ok: b.ok,
      fail: b.fail,
      unknown: b.unknown,
      p50: percentile(b.latencies, 50),
      p99: percentile(b.latencies, 99),
    };
  });
}

/**
 * Acknowledged writes the final state contradicts: a write answered ok (a put, a delete, a cas that
 * succeeded) whose value (null for a delete) is not the key's final value, although no other write
 * of that key (ok or of unknown outcome; a cas that failed wrote nothing) could have taken effect
 * after it, i.e. every other write completed before it was invoked. Keys without a final read are
 * skipped. The linearizability check covers this too; this names the lost writes plainly.
 */
export function lostAckedWrites(ops: readonly ChaosOp[], finalValues: ReadonlyMap<string, string | null>): ChaosOp[] {
  const writesByKey = new Map<string, ChaosOp[]>();
  for (const op of ops) {
    if (!isWrite(op) || op.status === 'fail') continue;
    const list = writesByKey.get(op.key);
    if (list === undefined) writesByKey.set(op.key, [op]);
    else list.push(op);
  }
  const lost: ChaosOp[] = [];
  for (const [key, writes] of writesByKey) {
    if (!finalValues.has(key)) continue;
    const final = finalValues.get(key) ?? null;
    for (const w of writes) {
      if (w.status !== 'ok' || w.value === final) continue;
      const overwritable = writes.some(
        (other) => other !== w && !(other.complete !== null && other.complete < w.invoke),
      );
      if (!overwritable) lost.push(w);
    }
  }
  return lost.sort((a, b) => a.invoke - b.invoke);
}

/** Counts per value of `key(item)`, most frequent first. */
export function countBy<T>(items: readonly T[], key: (item: T) => string): [string, number][] {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1);
  return [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
}

/** Per node and second: how many operations sent to it succeeded, and how many did not. */
export interface NodeSecond {
  readonly ok: number;
  readonly notOk: number;
}

export function nodeTimeline(
  ops: readonly ChaosOp[],
  nodes: readonly string[],
  fromMs: number,
  toMs: number,
): Record<string, NodeSecond[]> {
  const seconds = Math.max(1, Math.ceil((toMs - fromMs) / 1000));
  const result: Record<string, { ok: number; notOk: number }[]> = {};
  for (const node of nodes) result[node] = Array.from({ length: seconds }, () => ({ ok: 0, notOk: 0 }));
  for (const op of ops) {
    const row = result[op.node];
    if (row === undefined) continue;
    const cell = row[Math.min(seconds - 1, Math.max(0, Math.floor((op.end - fromMs) / 1000)))]!;
    if (op.status === 'ok') cell.ok++;
    else cell.notOk++;
  }
  return result;
}
