// After the faults: heal everything, bring every node back, wait for a leader, and read every key
// linearizably (with retries). The reads join the history, so the checker sees the final state
// and a lost acknowledged write shows up as a violation even if nothing read the key afterwards.
// Then every node must serve one linearizable read: a node that cannot, although the faults are
// healed and a leader is up, is stuck (a liveness bug worth a warning, not a safety violation).
import type { ChaosCluster } from './chaos-cluster.js';
import type { RunClock } from './clock.js';
import type { KvClient } from './kv-client.js';
import type { NetworkFaults } from './network.js';
import type { HistoryRecorder } from './recorder.js';
import { sleep } from './clock.js';

export interface FinalReadsResult {
  readonly recovered: boolean;
  /** Why the cluster did not recover, when it did not. */
  readonly problem: string | null;
  readonly leader: string | null;
  /** The final value of every key read successfully (null = absent). */
  readonly values: Map<string, string | null>;
  /** Run-clock time the cluster had a leader again, and when the reads ended. */
  readonly leaderAt: number | null;
  readonly doneAt: number;
  /** Nodes that served no linearizable read within NODE_PROBE_MS after recovery, with their answers. */
  readonly stuckNodes: { readonly node: string; readonly answers: string }[];
}

/** Client numbers of the final reads: far above any worker's. */
export const FINAL_READ_CLIENT_BASE = 1_000_000;
const MAX_ATTEMPTS_PER_KEY = 50;
/** How long each node gets to serve one linearizable read once the cluster has recovered. */
export const NODE_PROBE_MS = 6000;

export async function recoverAndReadAll(options: {
  readonly cluster: ChaosCluster;
  readonly network: NetworkFaults;
  readonly kv: KvClient;
  readonly recorder: HistoryRecorder;
  readonly clock: RunClock;
  readonly keys: readonly string[];
  readonly timeoutMs: number;
}): Promise<FinalReadsResult> {
  const { cluster, network, kv, recorder, clock, keys } = options;
  const deadline = clock.now() + options.timeoutMs;
  const values = new Map<string, string | null>();
  const failed = (problem: string, leader: string | null = null, leaderAt: number | null = null): FinalReadsResult => ({
    recovered: false,
    problem,
    leader,
    values,
    leaderAt,
    doneAt: clock.now(),
    stuckNodes: [],
  });
  try {
    await cluster.reviveAll(Math.max(1000, deadline - clock.now()));
    await network.apply([]);
  } catch (error) {
    return failed(`could not heal the cluster: ${(error as Error).message}`);
  }
  let leader: string;
  try {
    leader = await cluster.processes.waitForLeader(Math.max(1000, deadline - clock.now()));
  } catch (error) {
    return failed(`no leader after healing: ${(error as Error).message}`);
  }
  const leaderAt = clock.now();
  const order = [leader, ...cluster.ids.filter((id) => id !== leader)];
  // Every final read gets a client number of its own: one that timed out may still be pending.
  let nextClient = FINAL_READ_CLIENT_BASE;
  for (const key of keys) {
    for (let attempt = 0; !values.has(key); attempt++) {
      if (attempt >= MAX_ATTEMPTS_PER_KEY || clock.now() > deadline) {
        return failed(`could not read ${key} after ${attempt} attempts`, leader, leaderAt);
      }
      const id = recorder.begin(true) as number;
      const node = order[attempt % order.length]!;
      const invoke = clock.now();
      const outcome = await kv.perform(node, 'get', key, null);
      const op = recorder.record(
        { id, client: nextClient++, node, kind: 'get', key, value: null, invoke },
        outcome,
        clock.now(),
        true,
      );
      if (op.status === 'ok') values.set(key, op.value);
      else await sleep(Math.min(500, 20 * 2 ** attempt));
    }
  }
  // One probe per node, concurrently: each uses its own node's connection, one request at a time.
  const probes = await Promise.all(
    cluster.ids.map(async (node) => {
      const probeDeadline = clock.now() + NODE_PROBE_MS;
      const answers: string[] = [];
      for (let attempt = 0; clock.now() < probeDeadline; attempt++) {
        const id = recorder.begin(true) as number;
        const invoke = clock.now();
        const outcome = await kv.perform(node, 'get', keys[0]!, null);
        recorder.record(
          { id, client: nextClient++, node, kind: 'get', key: keys[0]!, value: null, invoke },
          outcome,
          clock.now(),
          true,
        );
        if (outcome.status === 'ok') return null;
        answers.push(outcome.reason);
        await sleep(Math.min(500, 20 * 2 ** attempt));
      }
      return { node, answers: summarizeAnswers(answers) };
    }),
  );
  const stuckNodes = probes.filter((p): p is { node: string; answers: string } => p !== null);
  return { recovered: true, problem: null, leader, values, leaderAt, doneAt: clock.now(), stuckNodes };
}

/** "503 read_timeout ×4, ECONNREFUSED ×1" */
function summarizeAnswers(answers: readonly string[]): string {
  const counts = new Map<string, number>();
  for (const a of answers) counts.set(a, (counts.get(a) ?? 0) + 1);
  return [...counts].map(([a, n]) => `${a} ×${n}`).join(', ');
}
