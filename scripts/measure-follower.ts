// What a follower costs per append request and per entry, measured on one real node process (the
// built dist/main.js) that follows a synthetic leader in this process: no load generator and no
// real leader compete with it for the cores, so its CPU per request is its own. Not part of the
// test suite; run with
//   npm run build && npx tsx scripts/measure-follower.ts [seconds] [entriesPerAppend ...]
// (default 10 s at 1, 4 and 32 entries per append). One append is in flight at a time (the
// next leaves when the follower acknowledged the last: it is on its disk), each carrying the commit
// of everything acknowledged so far, as a leader of a three-node cluster whose other follower is
// down would send it. Each entry is a PUT of a 100-byte value to one of 10,000 keys.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { EntryType, type Entry, type Message } from '../src/raft/types.js';
import { encodeCommand } from '../src/storage/command.js';
import { PeerTransport } from '../src/transport/peer-transport.js';
import { nodeArgsFromEnv } from '../src/node-flags.js';
import { processCpuTimes } from './bench/host.js';
import { freePorts } from './harness/cluster/process-cluster.js';

const seconds = Number(process.argv[2] ?? 10);
const sizes = process.argv.length > 3 ? process.argv.slice(3).map(Number) : [1, 4, 32];
const WARM_UP_MS = 3000;
const TOKEN = 'measure-follower-token-0123456789';

/** User and system CPU seconds of the node so far. */
function cpuSeconds(pid: number): { user: number; system: number } {
  const times = processCpuTimes(pid);
  if (times === null) throw new Error(`cannot read /proc/${pid}/stat: did the node exit?`);
  return times;
}

async function measure(entriesPerAppend: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'raftkv-measure-follower-'));
  try {
    await measureIn(dir, entriesPerAppend);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Stops the node: SIGTERM, then SIGKILL if it has not exited within 5 s. */
async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

async function measureIn(dir: string, entriesPerAppend: number): Promise<void> {
  const ports = await freePorts(6);
  const url = (i: number): string => `http://127.0.0.1:${ports[i]}`;
  const config = {
    clusterId: 'measure',
    nodes: ['n1', 'n2', 'n3'].map((id, i) => ({
      id,
      clientUrl: url(i),
      peerUrl: url(i + 3),
      dataDir: join(dir, id),
    })),
    raft: { tickMs: 50, electionTicks: 10, heartbeatTicks: 1 },
  };
  const configFile = join(dir, 'cluster.json');
  writeFileSync(configFile, JSON.stringify(config));
  let acked = 0;
  let waiting: (() => void) | undefined;
  const transport = new PeerTransport({
    selfId: 'n1',
    peers: new Map([['n2', url(4)]]),
    clusterId: 'measure',
    token: TOKEN,
    logger: pino({ level: 'warn' }),
    onUnreachable: () => undefined,
    onReplies: (_peer, messages) => {
      for (const m of messages) if (m.type === 'appResp' && !m.reject) acked = Math.max(acked, m.index);
      waiting?.();
    },
  });
  const value = new Uint8Array(100).fill(0x61);
  const entry = (index: number): Entry => ({
    index,
    term: 1,
    type: EntryType.Normal,
    data: encodeCommand({
      op: 'put',
      key: new TextEncoder().encode(`key${(index % 10_000).toString().padStart(6, '0')}`),
      value,
    }),
  });
  const append = (): Message => ({
    type: 'app',
    from: 'n1',
    to: 'n2',
    term: 1,
    index: acked,
    logTerm: acked === 0 ? 0 : 1,
    commit: acked,
    entries: Array.from({ length: entriesPerAppend }, (_, i) => entry(acked + 1 + i)),
  });
  // RAFTKV_NODE_ARGS as the bench and `npm start` take it (say --cpu-prof --cpu-prof-dir=...).
  const nodeArgs = nodeArgsFromEnv();
  const child = spawn(process.execPath, [...nodeArgs, 'dist/main.js', '--id', 'n2', '--config', configFile], {
    env: { ...process.env, RAFTKV_PEER_TOKEN: TOKEN, RAFTKV_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  try {
    const pid = child.pid;
    if (pid === undefined) throw new Error('the node did not start');
    // Until the node listens, appends fail and are resent by the loop below; the warm-up starts
    // with the first acknowledged append, the measurement after it.
    const deadline = Date.now() + 30_000;
    let warmUpFrom: number | undefined;
    let measuredFrom: { at: number; acked: number; cpu: { user: number; system: number } } | undefined;
    let requests = 0;
    while (measuredFrom === undefined || performance.now() - measuredFrom.at < seconds * 1000) {
      if (warmUpFrom === undefined && Date.now() > deadline) throw new Error('the node never acknowledged an append');
      if (warmUpFrom === undefined && acked > 0) warmUpFrom = performance.now();
      if (measuredFrom === undefined && warmUpFrom !== undefined && performance.now() - warmUpFrom >= WARM_UP_MS) {
        measuredFrom = { at: performance.now(), acked, cpu: cpuSeconds(pid) };
        requests = 0;
      }
      const before = acked;
      const answered = new Promise<void>((resolve) => (waiting = resolve));
      transport.send([append()]);
      // An answer, or a retry after 100 ms (the node is still starting, or the answer was a reject).
      await Promise.race([answered, new Promise((resolve) => setTimeout(resolve, 100))]);
      if (acked > before) requests++;
    }
    const cpu = cpuSeconds(pid);
    const elapsed = (performance.now() - measuredFrom.at) / 1000;
    const entries = acked - measuredFrom.acked;
    const user = cpu.user - measuredFrom.cpu.user;
    const system = cpu.system - measuredFrom.cpu.system;
    const us = (s: number, n: number): string => ((s * 1e6) / Math.max(1, n)).toFixed(0);
    console.log(
      `${entriesPerAppend} entries per append: ${requests} appends (${(requests / elapsed).toFixed(0)}/s), ` +
        `${entries} entries in ${elapsed.toFixed(1)} s; follower CPU ${(user + system).toFixed(2)} s ` +
        `(user ${user.toFixed(2)}, system ${system.toFixed(2)}): ${us(user + system, requests)} us per append ` +
        `(user ${us(user, requests)}), ${us(user + system, entries)} us per entry`,
    );
  } finally {
    await stop(child);
    await transport.close();
  }
}

for (const size of sizes) await measure(size);
process.exit(0);
