// Retries of a chaos operation under its idempotency key (retries.ts), with a scripted sender, and
// the whole versioned workload against a fake cluster that loses answers after applying writes.
import { afterEach, describe, expect, it } from 'vitest';
import { checkLinearizability } from '../../scripts/harness/check/linearizability.js';
import { RunClock } from '../../scripts/harness/chaos/clock.js';
import { KvClient, type KvRequest } from '../../scripts/harness/chaos/kv-client.js';
import { classifyError, type Outcome } from '../../scripts/harness/chaos/outcome.js';
import { HistoryRecorder } from '../../scripts/harness/chaos/recorder.js';
import { MAX_ATTEMPTS, performWithRetries, type RetryContext } from '../../scripts/harness/chaos/retries.js';
import { versionedStats } from '../../scripts/harness/chaos/summary.js';
import { Workload, type WorkloadKind } from '../../scripts/harness/chaos/workload.js';
import { FakeKvCluster, type FakeMistake, type WriteFault } from './fake-kv.js';

const OK: Outcome = { status: 'ok', value: null, reason: '200', unexpected: false, succeeded: true, modIndex: 4 };
const REPLAYED: Outcome = { ...OK, replayed: true };
const TIMEOUT = classifyError('timeout');
const REFUSED = classifyError('ECONNREFUSED');
const NO_LEADER: Outcome = { status: 'fail', value: null, reason: '503 no_leader', unexpected: false };
const REUSED: Outcome = { status: 'unknown', value: null, reason: '422 idempotency_key_reused', unexpected: true };

/** A sender that answers from a script, and notes where each attempt went. */
function scripted(...answers: Outcome[]): { send: (node: string, r: KvRequest) => Promise<Outcome>; nodes: string[] } {
  const nodes: string[] = [];
  return {
    nodes,
    send: (node) => {
      nodes.push(node);
      const answer = answers.shift();
      if (answer === undefined) throw new Error('more attempts than scripted');
      return Promise.resolve(answer);
    },
  };
}

function context(signal = new AbortController().signal): RetryContext & { pauses: number[] } {
  const pauses: number[] = [];
  let t = 0;
  return {
    pauses,
    nodeIds: ['n1', 'n2', 'n3'],
    randomInt: (n) => (n > 1 ? 1 : 0),
    now: () => t,
    signal,
    pause: (ms) => {
      pauses.push(ms);
      t += ms;
      return Promise.resolve();
    },
  };
}

const cas: KvRequest = { kind: 'put', key: 'k', value: 'v', condition: { modIndex: 3 }, idempotencyKey: 'r0.w0.1' };

describe('retries under an idempotency key', () => {
  it('an unknown outcome is retried as is, on another node, until an answer settles it: one operation', async () => {
    const sender = scripted(TIMEOUT, REFUSED, NO_LEADER, REPLAYED);
    const ctx = context();
    const performed = await performWithRetries(sender, 'n1', cas, ctx);
    expect(performed).toEqual({ outcome: REPLAYED, node: 'n3', attempts: 4, unexpected: false });
    // Never the same node twice in a row; the pauses grow.
    expect(sender.nodes).toEqual(['n1', 'n3', 'n2', 'n3']);
    expect(ctx.pauses).toHaveLength(3);
    expect(ctx.pauses[2]!).toBeGreaterThan(ctx.pauses[0]!);
  });

  it('a refusal settles the operation as failed only while no earlier attempt may have been applied', async () => {
    expect((await performWithRetries(scripted(NO_LEADER), 'n1', cas, context())).outcome.status).toBe('fail');
    expect((await performWithRetries(scripted(REFUSED), 'n1', cas, context())).attempts).toBe(1);
    const stillUnknown = scripted(...Array.from({ length: MAX_ATTEMPTS }, (_, i) => (i === 0 ? TIMEOUT : NO_LEADER)));
    const performed = await performWithRetries(stillUnknown, 'n1', cas, context());
    expect(performed.attempts).toBe(MAX_ATTEMPTS);
    expect(performed.outcome).toMatchObject({ status: 'unknown', reason: '503 no_leader' });
  });

  it('gives up after MAX_ATTEMPTS, on a 422 (the server took the request for another), or when the workload stops', async () => {
    const timeouts = scripted(...Array.from({ length: MAX_ATTEMPTS }, () => TIMEOUT));
    expect(await performWithRetries(timeouts, 'n1', cas, context())).toMatchObject({
      outcome: { status: 'unknown' },
      attempts: MAX_ATTEMPTS,
    });
    expect(await performWithRetries(scripted(TIMEOUT, REUSED), 'n1', cas, context())).toMatchObject({
      outcome: { status: 'unknown', reason: '422 idempotency_key_reused' },
      attempts: 2,
      unexpected: true,
    });
    const stop = new AbortController();
    stop.abort();
    expect(await performWithRetries(scripted(TIMEOUT), 'n1', cas, context(stop.signal))).toMatchObject({
      outcome: { status: 'unknown' },
      attempts: 1,
    });
  });

  it('a read, or a write without an idempotency key, is never retried', async () => {
    const get = await performWithRetries(scripted(TIMEOUT), 'n1', { kind: 'get', key: 'k' }, context());
    expect(get).toMatchObject({ outcome: { status: 'unknown' }, attempts: 1 });
    const put = await performWithRetries(scripted(TIMEOUT), 'n1', { kind: 'put', key: 'k', value: 'v' }, context());
    expect(put).toMatchObject({ outcome: { status: 'unknown' }, attempts: 1 });
  });
});

const clusters: FakeKvCluster[] = [];
afterEach(async () => {
  for (const cluster of clusters.splice(0)) await cluster.close();
});

async function runWorkload(
  workload: WorkloadKind,
  faultOf: (n: number) => WriteFault,
  mistake?: FakeMistake,
): Promise<{ cluster: FakeKvCluster; recorder: HistoryRecorder }> {
  const cluster = await FakeKvCluster.start(3, { faultOf, ...(mistake === undefined ? {} : { mistake }) });
  clusters.push(cluster);
  const recorder = new HistoryRecorder(400, null);
  const run = new Workload(
    { seed: 5, clients: 4, keys: ['k0', 'k1'], nodeIds: ['n1', 'n2', 'n3'], workload, backoffMs: { min: 1, max: 5 } },
    () => new KvClient({ urls: cluster.urls, timeoutMs: 2000 }),
    recorder,
    new RunClock(),
  );
  run.start();
  await run.done;
  return { cluster, recorder };
}

/** Every 7th write is applied and its answer lost (the connection drops, or a 504); every 13th refused. */
const faults = (n: number): WriteFault =>
  n % 13 === 12 ? 'refuse' : n % 7 === 3 ? 'drop-after-apply' : n % 7 === 6 ? '504-after-apply' : 'none';

describe('the versioned workload against a cluster that loses answers', () => {
  it('records each request once, however often it was sent, and the history is linearizable', async () => {
    const { cluster, recorder } = await runWorkload('versioned', faults);
    const ops = recorder.ops;
    expect(ops).toHaveLength(400);
    expect(checkLinearizability(ops).result).toBe('ok');
    expect(recorder.unexpected).toBe(0);

    const writes = cluster.received.filter((r) => r.method !== 'GET');
    const ids = writes.map((r) => r.headers['idempotency-key']);
    // An Idempotency-Key on every write, one per operation, applied at most once.
    expect(ids.every((id) => typeof id === 'string' && /^r5\.w\d\.\d+$/.test(id))).toBe(true);
    expect(new Set(ids).size).toBe(ops.filter((op) => op.kind !== 'get').length);
    expect(Math.max(...cluster.appliedPerKey.values())).toBe(1);
    // Every attempt of one key was the same request.
    const firstOf = new Map<string, string>();
    for (const r of writes) {
      const sent = JSON.stringify([r.method, r.url, r.body, r.headers['if-match'], r.headers['if-none-match']]);
      const id = r.headers['idempotency-key'] as string;
      expect(firstOf.get(id) ?? sent).toBe(sent);
      firstOf.set(id, sent);
    }

    const stats = versionedStats(ops);
    expect(stats.casAnswered).toBeGreaterThan(0);
    expect(stats.casSucceeded).toBeGreaterThan(0);
    expect(stats.txnAnswered).toBeGreaterThan(0);
    expect(ops.some((op) => op.kind === 'cas' && op.viaTxn !== true && op.status === 'ok')).toBe(true);
    expect(stats.retriedOps).toBeGreaterThan(0);
    // The faults apply the write before losing its answer: a retry that gets an answer is a replay.
    expect(stats.replays).toBeGreaterThan(0);
    expect(stats.settledByRetry).toBe(stats.replays);
    for (const op of ops.filter((o) => o.replayed === true)) expect(op.attempts).toBeGreaterThan(1);
    // A conditional write's expectation is what its worker saw; the conditions sent say the same.
    const conditional = writes.filter(
      (r) => r.headers['if-match'] !== undefined || r.headers['if-none-match'] !== undefined,
    );
    expect(conditional.length).toBeGreaterThan(0);
  });

  it.each([
    ['forgets-idempotency', 'applies a retried write again'],
    ['ignores-conditions', 'lets every If-Match, If-None-Match and compare hold'],
  ] as const)('catches a store that %s (%s)', async (mistake, _what) => {
    // The first makes a retried conditional write fail against its own first application, whose
    // value then shows up in reads; the second lets a cas win against a value that had changed.
    const { recorder } = await runWorkload('versioned', faults, mistake);
    expect(checkLinearizability(recorder.ops).result).toBe('violation');
  });

  it('the plain workload sends no condition, no idempotency key and no transaction, and never retries', async () => {
    const { cluster, recorder } = await runWorkload('plain', (n) => (n % 7 === 3 ? 'drop-after-apply' : 'none'));
    expect(checkLinearizability(recorder.ops).result).toBe('ok');
    for (const r of cluster.received) {
      expect(r.method).not.toBe('POST');
      expect(r.headers['idempotency-key']).toBeUndefined();
      expect(r.headers['if-match']).toBeUndefined();
      expect(r.headers['if-none-match']).toBeUndefined();
    }
    expect(recorder.ops.some((op) => op.kind === 'cas' || op.attempts !== undefined)).toBe(false);
    expect(recorder.ops.some((op) => op.status === 'unknown')).toBe(true);
  });
});
