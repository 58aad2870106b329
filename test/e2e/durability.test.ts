// A write answered 200 survives kill -9 of every node at any moment: each round, clients write
// while every node is killed at a random instant; after a restart, every acknowledged write is read
// back (linearizably) from the cluster.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ProcessCluster } from '../../scripts/harness/cluster/process-cluster.js';

const ROUNDS = 4;
const WRITERS = 16;

let cluster: ProcessCluster;
beforeAll(async () => {
  cluster = await ProcessCluster.create();
  cluster.startAll();
  await cluster.waitForLeader();
});
afterAll(async () => {
  await cluster?.destroy();
});

it(`writes answered 200 survive kill -9 of every node at a random moment (${ROUNDS} rounds)`, async () => {
  const acknowledged = new Map<string, string>();
  let attempts = 0;
  for (let round = 0; round < ROUNDS; round++) {
    await cluster.waitForLeader();
    let stop = false;
    const writer = async (w: number): Promise<void> => {
      for (let i = 0; !stop; i++) {
        const key = `r${round}-w${w}-${i}`;
        const value = `value-of-${key}`;
        const node = cluster.nodes[(w + i) % cluster.nodes.length]!;
        attempts++;
        try {
          const res = await fetch(`${node.clientUrl}/kv/${key}`, {
            method: 'PUT',
            body: value,
            signal: AbortSignal.timeout(5000),
          });
          if (res.status === 200) acknowledged.set(key, value);
          else await res.arrayBuffer();
        } catch {
          // Refused or cut off by the kill: the outcome is unknown, so nothing is claimed.
        }
      }
    };
    const writers = Array.from({ length: WRITERS }, (_, w) => writer(w));
    // Kill while writes are in flight, at a moment that differs every round.
    await new Promise((r) => setTimeout(r, 300 + Math.floor(Math.random() * 700)));
    await cluster.killAll('SIGKILL');
    stop = true;
    await Promise.all(writers);
    cluster.startAll();
  }
  await cluster.waitForLeader();
  expect(acknowledged.size).toBeGreaterThan(ROUNDS * 10); // the test did write under load
  const leader = await cluster.waitForLeader();
  const missing: string[] = [];
  for (const [key, value] of acknowledged) {
    const res = await cluster.get(leader, key);
    const body = await res.text();
    if (res.status !== 200 || body !== value) missing.push(`${key}: ${res.status} ${body.slice(0, 80)}`);
  }
  console.log(
    `durability: ${acknowledged.size} of ${attempts} writes acknowledged across ${ROUNDS} kill -9 rounds; ${missing.length} missing`,
  );
  expect(missing).toEqual([]);
});
