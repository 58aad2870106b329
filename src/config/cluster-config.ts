// cluster.config.json: the cluster's members and its timing, validated with messages a person can
// act on: first against its schema (config-schema.ts: every key at every level, every range; an
// unknown key is refused, naming the known ones), then what a schema cannot say (URLs, uniqueness,
// electionTicks > heartbeatTicks). The same file, with real host names, runs the cluster across machines.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Compile } from 'typebox/compile';
import { describeErrors, type PathSegment, type Problem } from '../schema/problems.js';
import { clusterConfigFile } from './config-schema.js';

export interface NodeSpec {
  readonly id: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly dataDir: string;
}

export interface RaftTiming {
  readonly tickMs: number;
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  /**
   * Bytes of entries in one append (at least one entry is always sent). At most 1 MiB: an append of
   * empty entries (24 bytes each) must fit the peer decoder's bound of 65,536 entries per body.
   */
  readonly maxMsgBytes: number;
  /** Bytes of entries in flight to one follower: how a follower far behind is fed (etcd's MaxInflightBytes). */
  readonly maxInflightBytes: number;
  /** Bytes of recent log entries each node keeps in memory; older ones are read off the loop when needed. */
  readonly logCacheBytes: number;
  /** Every this many applied entries a node records a snapshot point and compacts its log. */
  readonly snapshotEveryEntries: number;
  /** Entries kept before the snapshot point, so a follower a little behind catches up from the log. */
  readonly snapshotKeepEntries: number;
}

export interface Limits {
  /** Longest key, in bytes of its UTF-8 form. */
  readonly maxKeyBytes: number;
  /** Largest value, in bytes. */
  readonly maxValueBytes: number;
  /** How long a write may wait for commit and apply before the client gets 504 (outcome unknown). */
  readonly writeTimeoutMs: number;
  /** How long a linearizable read may wait for its read index before 503. */
  readonly readTimeoutMs: number;
  /** The most keys a list request returns per page. */
  readonly maxPageSize: number;
  /**
   * The most bytes of JSON in one scan page or multi-key answer. A page stops early (with `next`),
   * a multi-key read beyond it is refused (413); neither refuses its first item.
   */
  readonly maxResponseBytes: number;
  /**
   * The most entries a learner may be behind the leader's log and still be promoted to voter
   * (`POST /members/<id>/promote`): a voter that is far behind counts in the quorum but cannot
   * acknowledge new entries until it has caught up, so one more failure would stop every write.
   */
  readonly promoteMaxLagEntries: number;
  /** The most items in one POST /txn: its compare, success and failure lists together. */
  readonly maxTxnOps: number;
  /** The largest POST /txn body, in bytes of JSON. */
  readonly maxTxnBytes: number;
}

export interface ClusterConfig {
  readonly clusterId: string;
  readonly nodes: readonly NodeSpec[];
  readonly raft: RaftTiming;
  readonly limits: Limits;
  /** The peer token, if the file names one (RAFTKV_PEER_TOKEN wins over it). */
  readonly peerToken: string | undefined;
  /** The directory data dirs are relative to: the config file's own. */
  readonly baseDir: string;
  /** Worker threads of the read pool; undefined: every core but one (at least one); 0: none. */
  readonly readPoolThreads: number | undefined;
}

export const DEFAULT_LIMITS: Limits = {
  maxKeyBytes: 1024,
  maxValueBytes: 1024 * 1024,
  writeTimeoutMs: 5000,
  readTimeoutMs: 5000,
  maxPageSize: 10_000,
  // Room for a dozen values of the largest default size in base64 (1 MiB -> 1.33 MiB), or a full
  // page of 10,000 items of 1.6 KiB; small enough that a worker builds it in tens of milliseconds,
  // holds ~3x of it while it does, and a slow client ties up no more than that per request.
  maxResponseBytes: 16 * 1024 * 1024,
  // A third of a second of writes at the peak PUT rate BENCHMARKS.md measures (~3,000/s), and one
  // or two appends of small entries: a learner this close is caught up within a round trip or two.
  promoteMaxLagEntries: 1000,
  maxTxnOps: 128,
  // Two values of the default maxValueBytes even in base64 (2 x 1.33 MiB), plus maxTxnOps items with
  // keys of the default maxKeyBytes: a transaction may move a couple of big values, never a bulk
  // load. The same bound as what its gets may read (MAX_TXN_RESULT_BYTES).
  maxTxnBytes: 4 * 1024 * 1024,
};

export const DEFAULT_TIMING: RaftTiming = {
  tickMs: 50,
  electionTicks: 10,
  heartbeatTicks: 1,
  maxMsgBytes: 256 << 10,
  maxInflightBytes: 4 << 20,
  logCacheBytes: 8 << 20,
  snapshotEveryEntries: 10_000,
  snapshotKeepEntries: 5_000,
};

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export function loadClusterConfig(path: string): ClusterConfig {
  const file = resolve(path);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read the cluster config ${file}: ${(error as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`${file} is not valid JSON: ${(error as Error).message}`);
  }
  return parseClusterConfig(json, dirname(file), file);
}

/** Problems listed in one refusal at most (TypeBox reports at most 8 errors anyway). */
const MAX_LISTED_PROBLEMS = 10;
const checkFile = Compile(clusterConfigFile);

export function parseClusterConfig(json: unknown, baseDir: string, source = 'the cluster config'): ClusterConfig {
  const where = (field: string): string => `${source}: ${field}`;
  if (!checkFile.Check(json)) {
    throw new ConfigError(schemaRefusal(describeErrors(clusterConfigFile, json, checkFile.Errors(json)), source));
  }
  const nodes = json.nodes.map((n, i) => ({
    id: n.id,
    clientUrl: asUrl(n.clientUrl, where(`nodes[${i}].clientUrl`)),
    peerUrl: asUrl(n.peerUrl, where(`nodes[${i}].peerUrl`)),
    dataDir: n.dataDir,
  }));
  assertUnique(
    nodes.map((n) => n.id),
    where('nodes[].id'),
  );
  assertUnique(
    nodes.flatMap((n) => [n.clientUrl, n.peerUrl]),
    where('nodes[] urls'),
  );
  assertUnique(
    nodes.map((n) => resolve(baseDir, n.dataDir)),
    where('nodes[].dataDir'),
  );

  const raft: RaftTiming = { ...DEFAULT_TIMING, ...json.raft };
  if (raft.electionTicks <= raft.heartbeatTicks) {
    throw new ConfigError(
      `${where('raft')}: electionTicks (${raft.electionTicks}) must exceed heartbeatTicks (${raft.heartbeatTicks})`,
    );
  }
  const limits: Limits = { ...DEFAULT_LIMITS, ...json.limits };
  return {
    clusterId: json.clusterId,
    nodes,
    raft,
    limits,
    peerToken: json.peerToken,
    baseDir,
    readPoolThreads: json.reads?.poolThreads,
  };
}

/**
 * One line per problem: `<file>: raft: unknown key "tickMS" (known: tickMs, ...)`,
 * `<file>: limits.maxPageSize must be an integer in [1, 100000], got 0`.
 */
function schemaRefusal(problems: readonly Problem[], source: string): string {
  const lines = problems.slice(0, MAX_LISTED_PROBLEMS).map((problem) => {
    const where = configPath(problem.path);
    if (problem.kind === 'keys') return where === '' ? problem.text : `${where}: ${problem.text}`;
    return `${where === '' ? 'the top level' : where} ${problem.text}`;
  });
  if (lines.length === 1) return `${source}: ${lines[0]}`;
  return `${source} has these problems:\n${lines.map((line) => `  ${line}`).join('\n')}`;
}

/** ["nodes", 0, "clientUrl"] -> "nodes[0].clientUrl", as a person writes it. */
function configPath(path: readonly PathSegment[]): string {
  return path
    .map((segment, i) => (typeof segment === 'number' ? `[${segment}]` : i === 0 ? segment : `.${segment}`))
    .join('');
}

export function findNode(config: ClusterConfig, id: string): NodeSpec {
  const node = config.nodes.find((n) => n.id === id);
  if (node === undefined) {
    throw new ConfigError(
      `no node "${id}" in the cluster config; its nodes are ${config.nodes.map((n) => n.id).join(', ')}`,
    );
  }
  return node;
}

/** host and port of an http:// URL, for listening on it. */
export function listenAddress(url: string): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port || 80) };
}

/** `text` passed the schema (a non-empty string); a URL a node can listen on, normalised. */
function asUrl(text: string, where: string): string {
  const checked = checkNodeUrl(text);
  if ('problem' in checked) throw new ConfigError(`${where} ${checked.problem}`);
  return checked.url;
}

/**
 * A node's client or peer URL normalised to `http://host:port`, or what is wrong with it (a
 * predicate: "must ..., got ..."). Shared by the cluster config and the admin API's `POST /members`,
 * so a member added at run time obeys the rules of one in the file. No path, query or credentials:
 * nodes build every request as the URL followed by a route, so anything after the port would be
 * lost or would break every request to the node.
 */
export function checkNodeUrl(text: string): { readonly url: string } | { readonly problem: string } {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return { problem: `must be a URL like http://127.0.0.1:7001, got "${text}"` };
  }
  if (url.protocol !== 'http:') return { problem: `must be an http:// URL, got "${text}"` };
  if (url.port === '') return { problem: `must name a port, got "${text}"` };
  if (url.username !== '' || url.password !== '' || url.pathname !== '/' || url.search !== '' || url.hash !== '') {
    return { problem: `must be http://host:port and nothing more (no path, query or credentials), got "${text}"` };
  }
  return { url: `${url.protocol}//${url.host}` };
}

function assertUnique(values: readonly string[], where: string): void {
  const seen = new Set<string>();
  for (const v of values) {
    if (seen.has(v)) throw new ConfigError(`${where}: "${v}" appears twice`);
    seen.add(v);
  }
}
