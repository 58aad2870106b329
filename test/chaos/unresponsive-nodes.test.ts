// The chaos clients' list of nodes that did not answer (unresponsive-nodes.ts): the rules on a
// fake clock, the retries' choice of node, and a workload against a fake cluster with a node that
// never answers (a paused process), which the clients must stop waiting on.
import { afterEach, describe, expect, it } from 'vitest';
import { checkLinearizability } from '../../scripts/harness/check/linearizability.js';
import { RunClock } from '../../scripts/harness/chaos/clock.js';
import { KvClient, type KvRequest } from '../../scripts/harness/chaos/kv-client.js';
import { classifyError, type Outcome } from '../../scripts/harness/chaos/outcome.js';
import { HistoryRecorder } from '../../scripts/harness/chaos/recorder.js';
import { performWithRetries } from '../../scripts/harness/chaos/retries.js';
import { UnresponsiveNodes } from '../../scripts/harness/chaos/unresponsive-nodes.js';
import { Workload } from '../../scripts/harness/chaos/workload.js';
import { FakeKvCluster } from './fake-kv.js';

const TIMEOUT = classifyError('timeout');
const REFUSED = classifyError('ECONNREFUSED');
const NO_LEADER: Outcome = { status: 'fail', value: null, reason: '503 no_leader', unexpected: false };
const OK: Outcome = { status: 'ok', value: null, reason: '200', unexpected: false };
const IDS = ['n1', 'n2', 'n3'];

/** A clock the test moves, and a tracker on it that skips a node for 1,000 ms. */
function tracker(): { nodes: UnresponsiveNodes; advance: (ms: number) => void } {
  let t = 0;
  return { nodes: new UnresponsiveNodes(() => t, 1000), advance: (ms) => (t += ms) };
}

/** The nodes `choose` returns over every draw (no side effect while no quiet period is over). */
function chosen(nodes: UnresponsiveNodes, ids: readonly string[]): string[] {
  const all = ids.map((_, draw) => nodes.choose(ids, (n) => Math.min(draw, n - 1)));
  return [...new Set(all)];
}

describe('UnresponsiveNodes', () => {
  it('skips a node that timed out or refused, for the quiet period only, and any answer clears it', () => {
    const { nodes, advance } = tracker();
    nodes.observe('n1', TIMEOUT);
    nodes.observe('n2', REFUSED);
    expect(IDS.map((id) => nodes.isSkipped(id))).toEqual([true, true, false]);
    expect(chosen(nodes, IDS)).toEqual(['n3']);
    // A 503 is an answer: the node is there.
    nodes.observe('n2', NO_LEADER);
    expect(nodes.isSkipped('n2')).toBe(false);
    advance(999);
    expect(nodes.isSkipped('n1')).toBe(true);
    advance(1);
    expect(nodes.isSkipped('n1')).toBe(false);
  });

  it('after the quiet period one chooser probes the node; the others skip it until the probe ends', () => {
    const { nodes, advance } = tracker();
    nodes.observe('n1', TIMEOUT);
    advance(1000);
    expect(nodes.choose(IDS, () => 0)).toBe('n1');
    // The probe is in flight: every other choice avoids n1.
    for (let draw = 0; draw < 2; draw++) expect(nodes.choose(IDS, () => draw)).not.toBe('n1');
    expect(nodes.isSkipped('n1')).toBe(true);
    // The probe timed out again: quiet for another period.
    nodes.observe('n1', TIMEOUT);
    advance(500);
    expect(nodes.isSkipped('n1')).toBe(true);
    advance(500);
    expect(nodes.choose(IDS, () => 0)).toBe('n1');
    nodes.observe('n1', OK);
    expect(nodes.isSkipped('n1')).toBe(false);
    expect(nodes.choose(IDS, () => 0)).toBe('n1');
  });

  it('when every node is skipped it still chooses, among all of them', () => {
    const { nodes } = tracker();
    for (const id of IDS) nodes.observe(id, TIMEOUT);
    expect(IDS.map((_, draw) => nodes.choose(IDS, () => draw))).toEqual(IDS);
    expect(() => nodes.choose([], () => 0)).toThrow(RangeError);
  });

  it('a retry goes to a node that is not skipped, and every attempt is reported', async () => {
    const { nodes } = tracker();
    nodes.observe('n3', TIMEOUT);
    const sent: string[] = [];
    const answers = [TIMEOUT, OK];
    const request: KvRequest = { kind: 'put', key: 'k', value: 'v', idempotencyKey: 'r0.w0.1' };
    const performed = await performWithRetries(
      { send: (node) => (sent.push(node), Promise.resolve(answers.shift()!)) },
      'n1',
      request,
      {
        nodeIds: IDS,
        // Without the tracker this draw picks n3, the last of the other two.
        randomInt: (n) => n - 1,
        now: () => 0,
        signal: new AbortController().signal,
        pause: () => Promise.resolve(),
        unresponsive: nodes,
      },
    );
    expect(sent).toEqual(['n1', 'n2']);
    expect(performed.outcome).toEqual(OK);
    expect(nodes.isSkipped('n1')).toBe(true);
    expect(nodes.isSkipped('n2')).toBe(false);
  });
});

describe('a sender that throws', () => {
  it('leaves no node marked as being probed', async () => {
    const { nodes, advance } = tracker();
    nodes.observe('n1', TIMEOUT);
    advance(1000);
    const request: KvRequest = { kind: 'get', key: 'k' };
    const failing = { send: () => Promise.reject(new Error('no client for node n1')) };
    const context = { nodeIds: IDS, randomInt: () => 0, now: () => 0, signal: new AbortController().signal };
    const node = nodes.choose(IDS, () => 0);
    expect([node, nodes.isSkipped('n1')]).toEqual(['n1', true]);
    await expect(performWithRetries(failing, node, request, { ...context, unresponsive: nodes })).rejects.toThrow(
      /no client/,
    );
    expect(nodes.isSkipped('n1')).toBe(false);
  });
});

const clusters: FakeKvCluster[] = [];
afterEach(async () => {
  for (const cluster of clusters.splice(0)) await cluster.close();
});

/** A KvClient that counts the attempts sent to each node. */
class CountingKvClient extends KvClient {
  constructor(
    urls: ReadonlyMap<string, string>,
    private readonly counts: Map<string, number>,
  ) {
    super({ urls, timeoutMs: 2000 });
  }

  override send(node: string, request: KvRequest): Promise<Outcome> {
    this.counts.set(node, (this.counts.get(node) ?? 0) + 1);
    return super.send(node, request);
  }
}

describe('a workload with a node that never answers', () => {
  it('stops sending to it once it timed out: at most one attempt per worker, and the history is linearizable', async () => {
    const cluster = await FakeKvCluster.start(3, { silent: new Set(['n1']) });
    clusters.push(cluster);
    const clients = 4;
    const counts = new Map<string, number>();
    const recorder = new HistoryRecorder(300, null);
    const clock = new RunClock();
    // A quiet period far longer than the test: once n1 timed out, no worker chooses it again. The
    // bound below can only break if n2 and n3 also time out, which takes this process stalling for
    // the whole 2 s client deadline (the fake answers in microseconds).
    const unresponsive = new UnresponsiveNodes(() => clock.now(), 600_000);
    const run = new Workload(
      { seed: 11, clients, keys: ['k0', 'k1'], nodeIds: IDS, backoffMs: { min: 1, max: 5 }, unresponsive },
      () => new CountingKvClient(cluster.urls, counts),
      recorder,
      clock,
    );
    run.start();
    await run.done;
    expect(recorder.ops).toHaveLength(300);
    // Each worker can have sent one request to n1 before the first of them timed out; none after.
    expect(counts.get('n1') ?? 0).toBeGreaterThanOrEqual(1);
    expect(counts.get('n1')!).toBeLessThanOrEqual(clients);
    expect(recorder.ops.filter((op) => op.status === 'ok').length).toBeGreaterThan(250);
    expect(checkLinearizability(recorder.ops).result).toBe('ok');
  });
});
