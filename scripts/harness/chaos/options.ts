// The options of a chaos run, and their command line (`npm run chaos -- --help`).
import { parseArgs } from 'node:util';
import { FAULT_KINDS, NEMESIS_GROUPS, NEMESIS_KINDS, parseNemesisList, type NemesisKind } from './nemesis-kinds.js';
import type { Range } from './schedule.js';
import type { WorkloadKind } from './workload.js';

export type NetworkMode = 'fault-switch' | 'netns';

export interface ChaosOptions {
  readonly nodes: number;
  readonly clients: number;
  readonly durationMs: number;
  readonly seed: number;
  readonly kinds: readonly NemesisKind[];
  readonly network: NetworkMode;
  /** Size of the keyspace: keys k0..k{n-1}. */
  readonly keys: number;
  /** Client request deadline, ms. */
  readonly requestTimeoutMs: number;
  readonly faultMs: Range;
  readonly gapMs: Range;
  /** Run directory; null: chaos-runs/<timestamp>-<seed>/ under the current directory. */
  readonly outDir: string | null;
  /** RAFTKV_UNSAFE_TEST_MODE for every node (deliberately broken builds, to test the runner). */
  readonly unsafeMode: string | null;
  /** At most this many operations are recorded; clients stop when it is reached. */
  readonly maxOps: number;
  /** Checker search budget per key. */
  readonly checkerSteps: number;
  /**
   * versioned: conditional writes, one-key transactions, an Idempotency-Key on every write and
   * retries of unknown outcomes (workload.ts); plain: gets, puts and deletes in the proportions of `mix`.
   */
  readonly workload: WorkloadKind;
  /** The plain workload's mix: probabilities of get and put (the rest are deletes). */
  readonly mix: { readonly get: number; readonly put: number };
  /**
   * Log compaction of the nodes (cluster.config.json `raft.snapshotEveryEntries` and
   * `snapshotKeepEntries`); null: the nodes' defaults (10000 / 5000), with which a follower must fall
   * 5000 entries behind before it needs a snapshot (more than a fault of a few seconds costs it).
   * Tiny values make followers that were killed, paused or cut off come back through InstallSnapshot.
   */
  readonly snapshot: SnapshotOptions | null;
}

export interface SnapshotOptions {
  readonly everyEntries: number;
  readonly keepEntries: number;
}

export const DEFAULTS: ChaosOptions = {
  nodes: 3,
  clients: 8,
  durationMs: 60_000,
  seed: 0,
  kinds: FAULT_KINDS,
  network: 'fault-switch',
  keys: 10,
  requestTimeoutMs: 2000,
  faultMs: { min: 2000, max: 6000 },
  gapMs: { min: 2000, max: 5000 },
  outDir: null,
  unsafeMode: null,
  maxOps: 1_000_000,
  checkerSteps: 5_000_000,
  workload: 'versioned',
  mix: { get: 0.5, put: 0.4 },
  snapshot: null,
};

export const USAGE = `usage: npm run chaos -- [options]

Starts a fresh cluster, runs concurrent clients against it while a nemesis kills, pauses and
partitions nodes (and, with membership, replaces them), then checks every answer for
linearizability and durability.

  --nodes N            cluster size, 3 or 5 (default 3)
  --clients N          concurrent clients (default 8)
  --duration S         seconds of workload (default 60)
  --seed N             seed of the fault schedule and of the clients' choices (default: random; always printed)
  --nemesis LIST       comma-separated fault kinds and groups (default all: every kind but membership)
                         kinds:  ${NEMESIS_KINDS.join(', ')}
                         groups: ${Object.entries(NEMESIS_GROUPS)
                           .filter(([name]) => name !== 'all' && name !== 'none')
                           .map(([name, kinds]) => `${name} = ${kinds.join(',')}`)
                           .join('; ')}; all; none
                       membership: replace a voter by a new node (remove, stop, add, --join, promote),
                       or grow by one voter and later shrink back; e.g. --nemesis all,membership
  --fault-seconds A-B  how long each fault lasts, uniformly random (default 2-6)
  --gap-seconds A-B    quiet time before each fault (default 2-5)
  --network MODE       fault-switch (default: the nodes' PUT /raft/faults switch) or
                       netns (root only: a network namespace per node, iptables cuts)
  --keys N             keyspace size (default 10)
  --workload W         versioned (default): gets, puts, deletes, conditional writes (If-Match /
                       If-None-Match: *) and one-key transactions on what each client read last,
                       an Idempotency-Key on every write, and retries of unknown outcomes with the
                       same key (one operation in the history); plain: gets 50%, puts 40%,
                       deletes 10%, no conditions or idempotency keys (runs from before replay as they did)
  --timeout MS         client request deadline (default 2000)
  --unsafe MODE        start the nodes with RAFTKV_UNSAFE_TEST_MODE=MODE (local-reads, early-ack):
                       a deliberately broken build the run must catch
  --max-ops N          stop the clients after N operations (default 1000000)
  --checker-steps N    linearizability search budget per key (default 5000000)
  --snapshot-every N   the nodes compact their log every N applied entries (raft.snapshotEveryEntries;
                       default: the nodes' 10000): small values, e.g. 50, make followers that were
                       killed, paused or cut off come back through InstallSnapshot
  --snapshot-keep M    entries kept before each snapshot point (raft.snapshotKeepEntries; with
                       --snapshot-every only; default N/5 rounded down), e.g. --snapshot-every 50 --snapshot-keep 10
  --out DIR            run directory (default chaos-runs/<timestamp>-<seed>/)
  --report DIR         only re-render DIR/report.html from DIR/summary.json and print its summary
  --help

Exit code: 0 pass, 1 violation (linearizability, a lost acknowledged write, a node crash),
2 inconclusive (checker budget exhausted, cluster never recovered, setup failure, interrupted).`;

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Parses the command line; null means --help. Throws UsageError with a message for people. */
export function parseChaosArgs(argv: readonly string[], randomSeed: () => number): ChaosOptions | null {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        nodes: { type: 'string' },
        clients: { type: 'string' },
        duration: { type: 'string' },
        seed: { type: 'string' },
        nemesis: { type: 'string' },
        'fault-seconds': { type: 'string' },
        'gap-seconds': { type: 'string' },
        network: { type: 'string' },
        keys: { type: 'string' },
        workload: { type: 'string' },
        timeout: { type: 'string' },
        unsafe: { type: 'string' },
        'max-ops': { type: 'string' },
        'checker-steps': { type: 'string' },
        'snapshot-every': { type: 'string' },
        'snapshot-keep': { type: 'string' },
        out: { type: 'string' },
        help: { type: 'boolean', default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (values.help) return null;
  const nodes = integer(values.nodes, 'nodes', DEFAULTS.nodes, 3, 5);
  if (nodes !== 3 && nodes !== 5) throw new UsageError('--nodes must be 3 or 5');
  const network = values.network ?? DEFAULTS.network;
  if (network !== 'fault-switch' && network !== 'netns')
    throw new UsageError('--network must be fault-switch or netns');
  let kinds: NemesisKind[];
  try {
    kinds = values.nemesis === undefined ? [...DEFAULTS.kinds] : parseNemesisList(values.nemesis);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  // A joiner would need a network namespace of its own, set up mid-run, and the admin API refuses
  // the runner's requests from the bridge (they are not loopback): not supported yet.
  if (network === 'netns' && kinds.includes('membership'))
    throw new UsageError('--nemesis membership works with --network fault-switch only, not netns');
  return {
    nodes,
    clients: integer(values.clients, 'clients', DEFAULTS.clients, 1, 256),
    durationMs: integer(values.duration, 'duration', DEFAULTS.durationMs / 1000, 1, 24 * 3600) * 1000,
    seed: values.seed === undefined ? randomSeed() : integer(values.seed, 'seed', 0, 0, 2 ** 32 - 1),
    kinds,
    network,
    keys: integer(values.keys, 'keys', DEFAULTS.keys, 1, 10_000),
    requestTimeoutMs: integer(values.timeout, 'timeout', DEFAULTS.requestTimeoutMs, 100, 600_000),
    faultMs: secondsRange(values['fault-seconds'], 'fault-seconds', DEFAULTS.faultMs),
    gapMs: secondsRange(values['gap-seconds'], 'gap-seconds', DEFAULTS.gapMs),
    outDir: values.out ?? null,
    unsafeMode: values.unsafe ?? null,
    maxOps: integer(values['max-ops'], 'max-ops', DEFAULTS.maxOps, 1, 100_000_000),
    checkerSteps: integer(values['checker-steps'], 'checker-steps', DEFAULTS.checkerSteps, 1, 10_000_000_000),
    workload: workloadKind(values.workload),
    mix: DEFAULTS.mix,
    snapshot: snapshotOptions(values['snapshot-every'], values['snapshot-keep']),
  };
}

function workloadKind(text: string | undefined): WorkloadKind {
  if (text === undefined) return DEFAULTS.workload;
  if (text === 'versioned' || text === 'plain') return text;
  throw new UsageError(`--workload must be versioned or plain, not ${JSON.stringify(text)}`);
}

/** The bounds are the config's (src/config/): a value the nodes would refuse is refused here. */
function snapshotOptions(every: string | undefined, keep: string | undefined): SnapshotOptions | null {
  if (every === undefined) {
    if (keep !== undefined)
      throw new UsageError('--snapshot-keep needs --snapshot-every (e.g. --snapshot-every 50 --snapshot-keep 10)');
    return DEFAULTS.snapshot;
  }
  const everyEntries = integer(every, 'snapshot-every', 0, 1, 100_000_000);
  return { everyEntries, keepEntries: integer(keep, 'snapshot-keep', Math.floor(everyEntries / 5), 0, 100_000_000) };
}

function integer(text: string | undefined, name: string, fallback: number, min: number, max: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < min || value > max)
    throw new UsageError(`--${name} must be an integer from ${min} to ${max}, not ${JSON.stringify(text)}`);
  return value;
}

/** "2-6" or "3" (seconds, decimals allowed) to a range in ms. */
export function secondsRange(text: string | undefined, name: string, fallback: Range): Range {
  if (text === undefined) return fallback;
  const match = /^(\d+(?:\.\d+)?)(?:-(\d+(?:\.\d+)?))?$/.exec(text.trim());
  if (match === null) throw new UsageError(`--${name} must look like 2-6 (seconds), not ${JSON.stringify(text)}`);
  const min = Math.round(Number(match[1]) * 1000);
  const max = Math.round(Number(match[2] ?? match[1]) * 1000);
  if (min > max) throw new UsageError(`--${name}: ${text} is an empty range`);
  if (max > 3_600_000) throw new UsageError(`--${name}: at most an hour`);
  return { min, max };
}
