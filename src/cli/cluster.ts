// `npm start`: the local cluster of cluster.config.json, one process per node, logs prefixed with
// the node id. Waits for a leader, prints curl commands to try, stops every node on Ctrl-C/SIGTERM.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { parseCommandLine } from '../command-line.js';
import { ConfigError, loadClusterConfig, type ClusterConfig } from '../config/cluster-config.js';
import { NODE_HEAP_FLAGS, nodeArgsFromEnv } from '../node-flags.js';
import { loadPinoPretty } from '../pretty.js';

const COLORS = ['\x1b[36m', '\x1b[35m', '\x1b[33m', '\x1b[32m', '\x1b[34m', '\x1b[31m'];
const RESET = '\x1b[0m';
const tty = process.stdout.isTTY === true;
// Pretty lines only in a terminal and where pino-pretty is installed; the nodes' JSON lines as they are otherwise.
const pretty =
  (tty ? loadPinoPretty() : null)?.prettyFactory({
    colorize: true,
    ignore: 'pid,hostname,node',
    translateTime: 'HH:MM:ss.l',
  }) ?? null;

function say(text: string): void {
  process.stdout.write(`${tty ? '\x1b[1m' : ''}${text}${tty ? RESET : ''}\n`);
}

const USAGE = `usage: npm start [-- --config cluster.config.json] [--fault-injection]
  --config FILE       the cluster file: one process per node in it (default cluster.config.json)
  --fault-injection   the nodes accept PUT /raft/faults (the chaos runner's fault switch; never in production)`;

/** A command line or cluster file npm start cannot use: the reason on stderr, exit code 2. */
function refuse(message: string): never {
  console.error(`raftkv: ${message}`);
  process.exit(2);
}

const values = parseCommandLine(
  {
    config: { type: 'string', default: 'cluster.config.json' },
    'fault-injection': { type: 'boolean', default: false },
  },
  USAGE,
  refuse,
);

let config: ClusterConfig;
try {
  config = loadClusterConfig(values.config);
} catch (error) {
  if (error instanceof ConfigError) refuse(error.message);
  throw error;
}

const mainScript = fileURLToPath(new URL('../main.js', import.meta.url));
const nodeFlags = nodeArgsFromEnv();
const children = new Map<string, ChildProcess>();
let stopping = false;

for (const [i, node] of config.nodes.entries()) {
  const color = tty ? (COLORS[i % COLORS.length] ?? '') : '';
  const prefix = `${color}[${node.id}]${tty ? RESET : ''} `;
  const args = [
    mainScript,
    '--id',
    node.id,
    '--config',
    values.config,
    ...(values['fault-injection'] ? ['--fault-injection'] : []),
  ];
  const child = spawn(process.execPath, [...NODE_HEAP_FLAGS, ...nodeFlags, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: process.env,
  });
  children.set(node.id, child);
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', (line) => {
      const text = pretty !== null && line.startsWith('{') ? pretty(line).trimEnd() : line;
      process.stdout.write(`${prefix}${text}\n`);
    });
  }
  child.on('exit', (code, signal) => {
    children.delete(node.id);
    if (!stopping) {
      say(
        `${node.id} exited (${signal ?? `code ${code}`}); the others keep running. Restart it with: npm run node -- --id ${node.id} --config ${values.config}`,
      );
    }
    if (stopping && children.size === 0) process.exit(0);
  });
}

function stopAll(): void {
  if (stopping) {
    for (const child of children.values()) child.kill('SIGKILL');
    return;
  }
  stopping = true;
  say('stopping the cluster (Ctrl-C again to kill at once)');
  if (children.size === 0) process.exit(0);
  for (const child of children.values()) child.kill('SIGTERM');
  setTimeout(() => {
    for (const child of children.values()) child.kill('SIGKILL');
    process.exit(1);
  }, 15_000).unref();
}
process.on('SIGINT', stopAll);
process.on('SIGTERM', stopAll);

/** Polls /status until the nodes agree on a leader, then prints what to try. */
async function announceWhenLeaderElected(): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!stopping && Date.now() < deadline) {
    const statuses = await Promise.all(
      config.nodes.map(async (n) => {
        try {
          const res = await fetch(`${n.clientUrl}/status`, { signal: AbortSignal.timeout(1000) });
          return (await res.json()) as { role: string; leader: string | null; term: number };
        } catch {
          return null;
        }
      }),
    );
    const leader = statuses.find((s): s is NonNullable<typeof s> => s?.role === 'leader');
    if (leader !== undefined && statuses.every((s) => s === null || s.leader === leader.leader)) {
      const leaderNode = config.nodes.find((n) => n.id === leader.leader);
      const [a, b, c] = [config.nodes[0], config.nodes[1] ?? config.nodes[0], config.nodes[2] ?? config.nodes[0]];
      say(
        `\nraftkv cluster "${config.clusterId}" is up: leader ${leader.leader} (term ${leader.term}), ${config.nodes.length} nodes.`,
      );
      say(`Try (any node will do; followers forward writes to the leader):
  curl -X PUT ${a?.clientUrl}/kv/greeting -d 'hello'
  curl ${b?.clientUrl}/kv/greeting
  curl '${c?.clientUrl}/kv/greeting?consistency=stale'
  curl '${a?.clientUrl}/kv?prefix=gr'
  curl -X DELETE ${b?.clientUrl}/kv/greeting
  curl ${leaderNode?.clientUrl ?? a?.clientUrl}/status
Press Ctrl-C to stop all nodes.\n`);
      return;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  if (!stopping) say('no leader after 30 s: check the node logs above (are the ports free? is a majority up?)');
}
void announceWhenLeaderElected();
