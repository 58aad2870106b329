// --network netns (root only): every node in a network namespace of its own, joined by a bridge in
// the runner's namespace, so links are cut for real with iptables instead of by the nodes'
// fault switch.
//
//   runner (bridge rkv<tag>br, 10.X.Y.1/24)
//     ├─ veth ─ namespace rkv-<tag>-n1: eth0 10.X.Y.11   node n1 listens here
//     ├─ veth ─ namespace rkv-<tag>-n2: eth0 10.X.Y.12
//     └─ ...
//
// A directed cut {from, to} is a DROP rule in `to`'s namespace for packets from `from` to its peer
// and client ports: connections `from` opens to `to` hang (no refusal, no reset), as across a real
// partition, while replies on connections `to` opened itself still arrive (one-way loss). Both
// directions cut = a partition, which, unlike the fault switch, also cuts a follower forwarding a
// write to the leader. The runner (the bridge's address) is never cut: clients reach every node.
// Everything is created with a random tag and removed by teardown(), also after a failure.
import { execFile } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import type { DirectedCut, NetworkFaults } from './network.js';

const run = promisify(execFile);
const COMMAND_TIMEOUT_MS = 10_000;

async function sh(command: string, ...args: string[]): Promise<string> {
  try {
    const { stdout } = await run(command, args, { timeout: COMMAND_TIMEOUT_MS });
    return stdout;
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim();
    throw new Error(`${command} ${args.join(' ')} failed: ${stderr || (error as Error).message}`, { cause: error });
  }
}

/** Why netns mode cannot run here, or null. */
export async function netnsUnavailable(): Promise<string | null> {
  if (process.getuid?.() !== 0)
    return '--network netns needs root (network namespaces, veth pairs, iptables); run as root or use the default --network fault-switch';
  for (const tool of ['ip', 'iptables']) {
    try {
      await run(tool, ['-V'], { timeout: COMMAND_TIMEOUT_MS });
    } catch {
      return `--network netns needs \`${tool}\` (apt-get install -y iproute2 iptables)`;
    }
  }
  return null;
}

export class NetnsNetwork implements NetworkFaults {
  readonly name = 'netns' as const;
  private ports = new Map<string, { client: number; peer: number }>();
  private readonly created: { namespaces: string[]; bridge: string | null; forwardRule: boolean } = {
    namespaces: [],
    bridge: null,
    forwardRule: false,
  };

  private constructor(
    private readonly tag: string,
    private readonly subnet: string,
    private readonly ids: readonly string[],
  ) {}

  /** Creates the bridge and one namespace per node; on failure, removes what it created and throws. */
  static async setup(ids: readonly string[]): Promise<NetnsNetwork> {
    const network = new NetnsNetwork(randomBytes(2).toString('hex'), await freeSubnet(), ids);
    try {
      await network.build();
    } catch (error) {
      await network.teardown();
      throw error;
    }
    return network;
  }

  hostOf(id: string): string {
    return `${this.subnet}.${11 + this.ids.indexOf(id)}`;
  }

  spawnPrefix(id: string): string[] {
    // `ip netns exec` execs the command (no fork), so the PID the runner holds is the node's.
    return ['ip', 'netns', 'exec', this.namespace(id)];
  }

  /** The ports each node listens on (known once the cluster is configured). */
  setPorts(ports: ReadonlyMap<string, { client: number; peer: number }>): void {
    this.ports = new Map(ports);
  }

  async apply(cuts: readonly DirectedCut[]): Promise<void> {
    await Promise.all(this.ids.map((id) => sh('ip', 'netns', 'exec', this.namespace(id), 'iptables', '-F', 'INPUT')));
    for (const cut of cuts) {
      const ports = this.ports.get(cut.to);
      if (ports === undefined) throw new Error(`no ports known for ${cut.to}`);
      await sh(
        'ip',
        'netns',
        'exec',
        this.namespace(cut.to),
        'iptables',
        '-A',
        'INPUT',
        '-s',
        this.hostOf(cut.from),
        '-p',
        'tcp',
        '-m',
        'multiport',
        '--dports',
        `${ports.peer},${ports.client}`,
        '-j',
        'DROP',
      );
    }
  }

  /** Removes everything setup() created; never throws (it reports what it could not remove). */
  async teardown(): Promise<string[]> {
    const problems: string[] = [];
    const attempt = async (what: () => Promise<unknown>): Promise<void> => {
      try {
        await what();
      } catch (error) {
        problems.push((error as Error).message);
      }
    };
    // Deleting a namespace deletes its end of the veth pair, and with it the other end.
    for (const ns of this.created.namespaces.splice(0)) await attempt(() => sh('ip', 'netns', 'del', ns));
    const bridge = this.created.bridge;
    if (this.created.forwardRule && bridge !== null)
      await attempt(() => sh('iptables', '-D', 'FORWARD', '-i', bridge, '-o', bridge, '-j', 'ACCEPT'));
    this.created.forwardRule = false;
    if (bridge !== null) await attempt(() => sh('ip', 'link', 'del', bridge));
    this.created.bridge = null;
    return problems;
  }

  private namespace(id: string): string {
    return `rkv-${this.tag}-${id}`;
  }

  private async build(): Promise<void> {
    const bridge = `rkv${this.tag}br`;
    await sh('ip', 'link', 'add', bridge, 'type', 'bridge');
    this.created.bridge = bridge;
    await sh('ip', 'addr', 'add', `${this.subnet}.1/24`, 'dev', bridge);
    await sh('ip', 'link', 'set', bridge, 'up');
    // With br_netfilter loaded, bridged packets cross the host's FORWARD chain, whose policy may
    // be DROP (Docker sets it so): let this bridge's own traffic through.
    const nf = '/proc/sys/net/bridge/bridge-nf-call-iptables';
    if (existsSync(nf) && readFileSync(nf, 'utf8').trim() === '1') {
      await sh('iptables', '-I', 'FORWARD', '-i', bridge, '-o', bridge, '-j', 'ACCEPT');
      this.created.forwardRule = true;
    }
    for (const id of this.ids) {
      const ns = this.namespace(id);
      const veth = `rkv${this.tag}${id}`;
      await sh('ip', 'netns', 'add', ns);
      this.created.namespaces.push(ns);
      await sh('ip', 'link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
      await sh('ip', 'link', 'set', veth, 'master', bridge, 'up');
      await sh('ip', '-n', ns, 'addr', 'add', `${this.hostOf(id)}/24`, 'dev', 'eth0');
      await sh('ip', '-n', ns, 'link', 'set', 'eth0', 'up');
      await sh('ip', '-n', ns, 'link', 'set', 'lo', 'up');
    }
  }
}

/** A 10.x.y.0/24 no interface of this host uses (three first octets, e.g. "10.213.7"). */
async function freeSubnet(): Promise<string> {
  const used = await sh('ip', '-4', '-o', 'addr', 'show');
  for (let attempt = 0; attempt < 50; attempt++) {
    const subnet = `10.${200 + randomInt(50)}.${randomInt(256)}`;
    if (!used.includes(` ${subnet}.`)) return subnet;
  }
  throw new Error('found no free 10.x.y.0/24 subnet for the namespaces');
}
