// End-to-end stability under real load (issue 10): a follower far behind catches up without an
// election, a broken invariant stops the node, and a leader hands over before it stops.
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeMessages } from '../../src/transport/codec.js';
import { ProcessCluster, waitFor, type NodeStatus } from '../../scripts/harness/cluster/process-cluster.js';

const clusters: ProcessCluster[] = [];
afterEach(async () => {
  for (const c of clusters.splice(0)) await c.destroy();
});

async function cluster(options: Parameters<typeof ProcessCluster.create>[0] = {}): Promise<ProcessCluster> {
  const c = await ProcessCluster.create(options);
  clusters.push(c);
  return c;
}

async function statuses(c: ProcessCluster, ids = c.runningIds()): Promise<NodeStatus[]> {
  return (await Promise.all(ids.map((id) => c.status(id)))).filter((s): s is NodeStatus => s !== null);
}

/**
 * Writers that keep PUTting (`concurrency` at a time) to whichever running node they pick, until
 * stopped: each success is timestamped, failures are retried elsewhere at once.
 */
function writeLoad(c: ProcessCluster, concurrency: number, value: string, prefix: string) {
  let stopped = false;
  const successes: number[] = [];
  let failures = 0;
  let next = 0;
  const loop = async (): Promise<void> => {
    while (!stopped) {
      const ids = c.runningIds();
      const id = ids[Math.floor(Math.random() * ids.length)];
      if (id === undefined) {
        await new Promise((r) => setTimeout(r, 10));
        continue;
      }
      try {
        const res = await c.put(id, `${prefix}${next++}`, value, { signal: AbortSignal.timeout(2000) });
        await res.arrayBuffer();
        if (res.status === 200) successes.push(Date.now());
        else failures++;
      } catch {
        failures++;
      }
    }
  };
  const loops = Array.from({ length: concurrency }, loop);
  return {
    successes,
    get failures() {
      return failures;
    },
    async stop(): Promise<void> {
      stopped = true;
      await Promise.all(loops);
    },
  };
}

/**
 * How often a node's log (appended across restarts) says it started a handover, saw one time out,
 * and stopped cleanly.
 */
function handovers(logFile: string): { started: number; timedOut: number; stopped: number } {
  const log = readFileSync(logFile, 'utf8');
  const count = (text: string): number => log.split(text).length - 1;
  return {
    started: count('handing leadership over before stopping'),
    timedOut: count('leadership was not handed over in time'),
    stopped: count('"msg":"stopped"'),
  };
}

function longestGap(times: readonly number[]): number {
  const sorted = times.slice().sort((a, b) => a - b);
  let gap = 0;
  for (let i = 1; i < sorted.length; i++) gap = Math.max(gap, sorted[i]! - sorted[i - 1]!);
  return gap;
}

describe('catch-up by flow control', () => {
  it('a follower whose backlog is many times the in-flight cap catches up with no term change while writes go on', async () => {
    // A small window and cache, so the backlog (~32 MB: four times what the transport holds for a
    // peer) is ~250 windows and almost all of it must be read from LevelDB off the loop.
    // The shipped timing (50 ms ticks; the harness's default is 20): the election storm
    // was seen with it, and a 200 ms election timeout is within reach of a loaded CI machine's stalls.
    const c = await cluster({
      tickMs: 50,
      raft: { maxInflightBytes: 128 * 1024, maxMsgBytes: 32 * 1024, logCacheBytes: 256 * 1024 },
    });
    c.startAll();
    const leader = await c.waitForLeader();
    const follower = c.nodes.map((n) => n.id).find((id) => id !== leader)!;
    await c.kill(follower, 'SIGKILL');
    const value = 'x'.repeat(8000);
    const backlog = writeLoad(c, 32, value, 'backlog/');
    await waitFor(
      'a backlog of 4,000 entries',
      async () => (((await c.status(leader))?.commit ?? 0) >= 4000 ? true : undefined),
      90_000,
      200,
    );
    await backlog.stop();
    const before = await statuses(c);
    const term = before[0]!.term;
    expect(before.every((s) => s.term === term)).toBe(true);

    // Restart it while writes keep coming, and wait until it has everything the leader had.
    const during = writeLoad(c, 8, value, 'during/');
    c.start(follower);
    const target = (await c.status(leader))!.commit;
    await waitFor(
      `${follower} to catch up to ${target}`,
      async () => (((await c.status(follower))?.applied ?? 0) >= target ? true : undefined),
      60_000,
      100,
    );
    const writesDuringCatchUp = during.successes.length;
    await during.stop();

    const after = await statuses(c);
    expect(after).toHaveLength(3);
    for (const s of after) expect(s.term, `term of ${s.id}`).toBe(term);
    expect(writesDuringCatchUp).toBeGreaterThan(0);
  });
});

describe('broken invariants stop the node', () => {
  it('an invariant that fails inside the peer handler makes the node exit with code 1, saying why', async () => {
    const c = await cluster();
    c.startAll();
    const leader = await c.waitForLeader();
    const follower = c.nodes.map((n) => n.id).find((id) => id !== leader)!;
    const { term } = (await c.status(follower))!;
    // A heartbeat of the current leader that tells the follower to commit far beyond its log: a
    // leader never does (it caps the commit at the follower's match), so the core's assertion
    // fires while the peer handler runs.
    const body = encodeMessages([{ type: 'heartbeat', from: leader, to: follower, term, commit: 1_000_000, round: 0 }]);
    await fetch(`${c.node(follower).peerUrl}/raft/messages`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${c.token}`,
        'x-raftkv-cluster': c.clusterId,
        'x-raftkv-from': leader,
        'content-type': 'application/msgpack',
      },
      body: Buffer.from(body),
    }).catch(() => undefined);
    const exit = await waitFor(`${follower} to exit`, () => c.node(follower).exit ?? undefined, 15_000);
    expect(exit.code).toBe(1);
    const log = readFileSync(c.node(follower).logFile, 'utf8');
    expect(log).toMatch(/RaftInvariantError/);
    expect(log).toMatch(/commit 1000000 is beyond the last index/);
  });
});

describe('graceful leader stop', () => {
  it('on SIGTERM a leader hands leadership to a follower before it exits', async () => {
    const c = await cluster();
    c.startAll();
    const leader = await c.waitForLeader();
    expect((await c.put(leader, 'k', 'v')).status).toBe(200);
    const { term } = (await c.status(leader))!;
    await c.kill(leader, 'SIGTERM');
    expect(c.node(leader).exit?.code).toBe(0);
    // The moment it is gone, the others already follow a new leader of the next term: nobody had
    // to wait out an election timeout.
    const survivors = await statuses(c);
    expect(survivors).toHaveLength(2);
    const newLeader = survivors.find((s) => s.role === 'leader');
    expect(newLeader?.term).toBe(term + 1);
    for (const s of survivors) expect(s.leader).toBe(newLeader?.id);
    const log = readFileSync(c.node(leader).logFile, 'utf8');
    expect(log).toContain('handing leadership over before stopping');
    expect(log).toContain(`"to":"${newLeader?.id}"`);
  });

  it('a rolling restart of all three nodes under steady writes hands leadership over at each leader stop, with no long gap between successful writes', async () => {
    // Elections after 1-2 s (50 ticks of 20 ms), not the harness's 200-400 ms: a leader gives its
    // handover one election timeout, which must not run out on a loaded machine (the handover is
    // asserted below), and a leader that stopped without handing over would leave a gap of about a
    // second, which the gap bound then catches too.
    const c = await cluster({ electionTicks: 50 });
    c.startAll();
    await c.waitForLeader();
    const load = writeLoad(c, 8, 'v', 'rolling/');
    await waitFor('writes flowing', () => (load.successes.length > 50 ? true : undefined), 10_000);
    let leaderStops = 0;
    for (const node of c.nodes) {
      const wasLeader = (await c.status(node.id))?.role === 'leader';
      const handoversBefore = handovers(node.logFile);
      await c.kill(node.id, 'SIGTERM');
      expect(node.exit?.code, `${node.id} exit code`).toBe(0);
      // The process's exit can come before its last lines reach the log file: wait for the last one.
      const after = await waitFor(
        `${node.id}'s log to say it stopped`,
        () => {
          const now = handovers(node.logFile);
          return now.stopped > handoversBefore.stopped ? now : undefined;
        },
        5_000,
      );
      // What keeps the gap short is the handover, so it is asserted itself rather than through
      // timing: a leader that stopped without one (or whose transfer timed out) fails here, however
      // fast the election after it happened to be.
      expect(after.timedOut, `${node.id} timed out handing leadership over`).toBe(0);
      if (wasLeader) {
        leaderStops++;
        expect(after.started, `${node.id} handed leadership over before stopping`).toBe(handoversBefore.started + 1);
      }
      c.start(node.id);
      await c.waitForLeader(15_000);
      // Caught up before the next one goes: the cluster keeps a quorum of current nodes.
      const leaderCommit = async (): Promise<number> => Math.max(...(await statuses(c)).map((s) => s.commit));
      const target = await leaderCommit();
      await waitFor(
        `${node.id} to catch up`,
        async () => (((await c.status(node.id))?.applied ?? 0) >= target ? true : undefined),
        15_000,
      );
    }
    await new Promise((r) => setTimeout(r, 200));
    await load.stop();
    // Leadership only moves when a leader stops, and every node stops once: the first leader does.
    expect(leaderStops).toBeGreaterThan(0);
    const gap = longestGap(load.successes);
    expect(load.successes.length).toBeGreaterThan(100);
    // A handover is four message hops between processes (the transfer, the vote and its answer, the
    // new leader's first commit): 70-140 ms here alone, up to 400 ms with the two cores busy, and
    // 598 ms once under the whole suite's load. The bound leaves room for that; a node that stalls
    // the writers for longer (a stuck close, a catch-up that holds the loop, an election timeout)
    // still fails it.
    expect(
      gap,
      `longest gap between successful writes (${load.successes.length} writes, ${load.failures} failed)`,
    ).toBeLessThan(1000);
  });
});
