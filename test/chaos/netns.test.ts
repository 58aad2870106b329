// --network netns, without a cluster: namespaces are joined, a directed cut blocks exactly what it
// should, healing restores it, and teardown leaves nothing behind. Needs root, ip and iptables;
// skipped elsewhere (the fault-switch mode is the default and needs neither).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { NetnsNetwork, netnsUnavailable } from '../../scripts/harness/chaos/netns.js';

const unavailable = await netnsUnavailable();

const SERVER = `
const net = require('node:net');
for (const port of [7000, 7100]) net.createServer((s) => s.end('ok')).listen(port, process.argv[1]);
console.log('listening');
`;
const PROBE = `
const s = require('node:net').connect(Number(process.argv[2]), process.argv[1]);
s.on('data', () => process.exit(0));
s.on('error', () => process.exit(2));
setTimeout(() => process.exit(1), 700);
`;

/** Whether a TCP connection from `prefix`'s namespace to host:port gets an answer within 700 ms. */
function reaches(prefix: readonly string[], host: string, port: number): boolean {
  try {
    execFileSync(prefix[0]!, [...prefix.slice(1), process.execPath, '-e', PROBE, host, String(port)], {
      stdio: 'ignore',
      timeout: 5000,
    });
    return true;
  } catch {
    return false;
  }
}

function reachesFromRunner(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, host);
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(false);
    }, 700);
    socket.on('data', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
}

describe.skipIf(unavailable !== null)('the netns network', () => {
  it('cuts exactly the directed links it is told to, heals, and leaves nothing behind', async () => {
    const ids = ['n1', 'n2'];
    const net = await NetnsNetwork.setup(ids);
    const servers: ChildProcess[] = [];
    try {
      for (const id of ids) {
        const prefix = net.spawnPrefix(id);
        const server = spawn(prefix[0]!, [...prefix.slice(1), process.execPath, '-e', SERVER, net.hostOf(id)], {
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        servers.push(server);
        await new Promise<void>((resolve, reject) => {
          server.stdout?.once('data', () => resolve());
          server.once('exit', (code) => reject(new Error(`server in ${id}'s namespace exited with ${code}`)));
        });
      }
      net.setPorts(new Map(ids.map((id) => [id, { client: 7000, peer: 7100 }])));
      const [n1, n2] = [net.spawnPrefix('n1'), net.spawnPrefix('n2')];
      expect(reaches(n1, net.hostOf('n2'), 7100)).toBe(true);

      await net.apply([{ from: 'n1', to: 'n2' }]);
      expect(reaches(n1, net.hostOf('n2'), 7100)).toBe(false); // n1's messages to n2's peer port
      expect(reaches(n1, net.hostOf('n2'), 7000)).toBe(false); // and its forwarded client requests
      expect(reaches(n2, net.hostOf('n1'), 7100)).toBe(true); // the other direction works
      expect(await reachesFromRunner(net.hostOf('n2'), 7000)).toBe(true); // clients are never cut

      await net.apply([]);
      expect(reaches(n1, net.hostOf('n2'), 7100)).toBe(true);
    } finally {
      for (const server of servers) server.kill('SIGKILL');
      expect(await net.teardown()).toEqual([]);
    }
    expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).not.toContain(net.spawnPrefix('n1')[3]!);
  }, 30_000);
});
