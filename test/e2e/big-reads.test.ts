// Big reads stay off the nodes' event loops (issue 10). With values of 1 MiB, a scan of 100 keys
// was a 100 MB answer built on the main thread: 2-3 s per request, an election each time. Now a
// query past a small byte budget runs in the read pool, and no answer passes limits.maxResponseBytes
// (16 MiB): a scan page stops early with `next`, a multi-get beyond it is refused with a 413.
//
// For 10 s, scans and multi-gets over 60 values of 1 MiB go to every node in turn; every request
// must be answered (2xx, or a 4xx with a JSON error), no node may change term, and each node's
// event-loop lag p99 must stay under 50 ms (and its worst block under 0.5 s).
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readLoopLag, startLoopLagWindow, type LoopLag } from '../../scripts/harness/cluster/loop-lag.js';
import { ProcessCluster, waitFor } from '../../scripts/harness/cluster/process-cluster.js';

const VALUES = 60;
const VALUE_BYTES = 1024 * 1024;
const LOOP_MS = 10_000;
const keyOf = (i: number): string => `big/${String(i).padStart(2, '0')}`;
const KEYS = Array.from({ length: VALUES }, (_, i) => keyOf(i));

let cluster: ProcessCluster;

beforeAll(async () => {
  // The shipped timing (cluster.config.json: 50 ms ticks, 10 per election timeout): the claim is
  // that big reads never cost an election with it. The harness's default of 20 ms ticks puts the
  // timeout at 200 ms: CI's 2-core machine once went that long without a heartbeat arriving while
  // this data set was being written (an election, and a write of it answered 503).
  cluster = await ProcessCluster.create({ tickMs: 50 });
  cluster.startAll();
  await cluster.waitForLeader();
});
afterAll(async () => {
  await cluster?.destroy();
});

async function terms(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const n of cluster.nodes) {
    const status = await cluster.status(n.id);
    if (status === null) throw new Error(`${n.id} did not answer /status`);
    out[n.id] = status.term;
  }
  return out;
}

/** What went wrong in the loop: checked after the terms and the lag, which matter most. */
const problems: string[] = [];
function check(ok: boolean, what: string): void {
  if (!ok && problems.length < 20) problems.push(what);
}

/** A request's status and body; a 4xx must be a JSON error that says what is wrong. */
async function call(url: string, init: RequestInit = {}): Promise<{ status: number; body: Buffer }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(20_000), ...init });
  const body = Buffer.from(await res.arrayBuffer());
  if (res.status >= 400) {
    check(res.status < 500, `${url} answered ${res.status}: ${body.toString('utf8', 0, 300)}`);
    let error: { error?: unknown; message?: unknown } = {};
    try {
      error = JSON.parse(body.toString('utf8')) as typeof error;
    } catch {
      // reported below
    }
    check(
      typeof error.error === 'string' && typeof error.message === 'string',
      `${url} answered ${res.status} without a JSON error`,
    );
  }
  return { status: res.status, body };
}

/**
 * Writes one value of the data set through the current leader. Loading the data is not what this
 * test checks, so a write cut off by a leader change (503, or 504 outcome unknown) is retried like
 * a client would: under the same Idempotency-Key, so it is applied once, at most 5 times.
 */
async function putSetupValue(key: string, value: Buffer): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const leader = await cluster.waitForLeader();
    const res = await fetch(`${cluster.node(leader).clientUrl}/kv/${key}`, {
      method: 'PUT',
      body: value,
      headers: { 'idempotency-key': `big-reads-setup-${key}` },
      signal: AbortSignal.timeout(20_000),
    });
    const text = await res.text();
    if (res.status === 200) return;
    if (attempt >= 5 || (res.status !== 503 && res.status !== 504)) expect(res.status, text).toBe(200);
  }
}

describe('big reads on real processes', () => {
  it('scans and multi-gets of 60 values of 1 MiB answer within the cap, without elections or a blocked loop', async () => {
    // Random bytes are not UTF-8: they come back in base64, 4/3 of their size.
    for (let i = 0; i < VALUES; i += 4) {
      await Promise.all(KEYS.slice(i, i + 4).map((key) => putSetupValue(key, randomBytes(VALUE_BYTES))));
    }
    const leader = await cluster.waitForLeader();
    const commit = (await cluster.status(leader))?.commit ?? Infinity;
    await waitFor(
      'every node to apply the writes',
      async () => {
        const statuses = await Promise.all(cluster.nodes.map((n) => cluster.status(n.id)));
        return statuses.every((s) => s !== null && s.applied >= commit) ? true : undefined;
      },
      30_000,
    );

    const before = await terms();
    for (const n of cluster.nodes) await startLoopLagWindow(n.clientUrl);
    const deadline = Date.now() + LOOP_MS;
    // At least every kind on every node once (nine rounds), however slow the machine: a full scan
    // moves 80 MB of JSON, and a loaded CI machine once finished only eight rounds in LOOP_MS
    // (mgetOk 2). The hard stop bounds the test; a machine that cannot do nine rounds by then fails.
    const hardStop = deadline + 30_000;
    let requests = 0;
    let round = 0;
    const counts = { scanPages: 0, fullScans: 0, mgetOk: 0, mgetRefused: 0 };
    while ((Date.now() < deadline || round < 3 * cluster.nodes.length) && Date.now() < hardStop) {
      // Every node in turn, and each kind of request on every node (the leader included).
      const node = cluster.nodes[round % cluster.nodes.length]!;
      const kind = Math.floor(round / cluster.nodes.length) % 3;
      round++;
      if (kind === 0) {
        // A whole scan, page by page: each page within the cap, together every key once.
        const seen: string[] = [];
        let start: string | null = '';
        for (let guard = 0; start !== null && guard < 2 * VALUES; guard++) {
          const query = `prefix=big/&limit=100${start === '' ? '' : `&start=${encodeURIComponent(start)}`}`;
          const res = await call(`${node.clientUrl}/kv?${query}`);
          requests++;
          if (res.status !== 200) break;
          check(res.body.byteLength <= 16 * 1024 * 1024, `a scan page of ${res.body.byteLength} bytes`);
          const page = JSON.parse(res.body.toString('utf8')) as {
            items: { key: string; valueBase64: string }[];
            next: string | null;
          };
          check(page.items.length > 0, 'an empty scan page before the end');
          for (const item of page.items) {
            check(
              Buffer.from(item.valueBase64, 'base64').byteLength === VALUE_BYTES,
              `${item.key} came back with the wrong size`,
            );
            seen.push(item.key);
          }
          counts.scanPages++;
          start = page.next;
        }
        check(
          JSON.stringify(seen) === JSON.stringify(KEYS),
          `a scan saw ${seen.length} keys, not each of the ${VALUES} once`,
        );
        counts.fullScans++;
      } else if (kind === 1) {
        // Every key at once: 80 MB of JSON, refused with how to fix it.
        const res = await call(`${node.clientUrl}/mget`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ keys: KEYS }),
        });
        requests++;
        const error =
          res.status === 413
            ? (JSON.parse(res.body.toString('utf8')) as { error: string; message: string })
            : undefined;
        check(
          error?.error === 'answer_too_large' && error.message.includes('fewer keys'),
          `mget of every key answered ${res.status} (${res.body.byteLength} bytes), not 413 answer_too_large`,
        );
        counts.mgetRefused++;
      } else {
        // Ten keys: ~14 MB of JSON, within the cap.
        const first = (round * 7) % (VALUES - 10);
        const keys = KEYS.slice(first, first + 10);
        const res = await call(`${node.clientUrl}/mget`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ keys }),
        });
        requests++;
        check(res.status === 200, `mget of ten keys answered ${res.status}`);
        if (res.status === 200) {
          const items = (JSON.parse(res.body.toString('utf8')) as { items: { key: string }[] }).items;
          check(JSON.stringify(items.map((i) => i.key)) === JSON.stringify(keys), 'mget answered other keys');
        }
        counts.mgetOk++;
      }
    }
    const lags: Record<string, LoopLag> = {};
    for (const n of cluster.nodes) lags[n.id] = await readLoopLag(n.clientUrl);
    const after = await terms();
    const report = JSON.stringify({ requests, counts, lags, before, after });
    console.log(`big reads: ${report}`);
    expect(after, `no election while reading: ${report}`).toEqual(before);
    for (const [id, lag] of Object.entries(lags)) {
      expect(lag.p99, `${id}'s event-loop lag p99: ${report}`).toBeLessThan(0.05);
      // A rare long block hardly moves the p99 (one sample in a thousand): the worst one must be
      // short too. 0.5 s leaves room for a loaded test machine (~0.1 s seen); formatting 60 MiB
      // inline blocked for 1.5 s.
      expect(lag.max, `${id}'s longest event-loop block: ${report}`).toBeLessThan(0.5);
    }
    expect(problems, report).toEqual([]);
    expect(counts.fullScans, report).toBeGreaterThanOrEqual(3);
    expect(counts.mgetOk, report).toBeGreaterThanOrEqual(3);
  });
});
