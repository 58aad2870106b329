// cluster.config.json: the cluster's members and its timing, validated with messages a person can
// act on. The same file, with real host names, runs the cluster across machines.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

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
};

/** V8 strings stop at ~512 MiB, and an answer is built as strings first: stay well below. */
const MAX_RESPONSE_BYTES_LIMIT = 256 * 1024 * 1024;

export const DEFAULT_TIMING: RaftTiming = {
  tickMs: 50,
  electionTicks: 10,
  heartbeatTicks: 1,
  maxMsgBytes: 1 << 20,
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

export function parseClusterConfig(json: unknown, baseDir: string, source = 'the cluster config'): ClusterConfig {
  const where = (field: string): string => `${source}: ${field}`;
  const root = asObject(json, where('the top level'));
  const clusterId = asString(root['clusterId'], where('clusterId'));
  const nodesJson = root['nodes'];
  if (!Array.isArray(nodesJson) || nodesJson.length === 0) throw new ConfigError(`${where('nodes')} must be a non-empty array`);
  const nodes = nodesJson.map((n: unknown, i: number) => {
    const o = asObject(n, where(`nodes[${i}]`));
    return {
      id: asString(o['id'], where(`nodes[${i}].id`)),
      clientUrl: asUrl(o['clientUrl'], where(`nodes[${i}].clientUrl`)),
      peerUrl: asUrl(o['peerUrl'], where(`nodes[${i}].peerUrl`)),
      dataDir: asString(o['dataDir'], where(`nodes[${i}].dataDir`)),
    };
  });
  assertUnique(nodes.map((n) => n.id), where('nodes[].id'));
  assertUnique(nodes.flatMap((n) => [n.clientUrl, n.peerUrl]), where('nodes[] urls'));
  assertUnique(nodes.map((n) => resolve(baseDir, n.dataDir)), where('nodes[].dataDir'));

  const raftJson = root['raft'] === undefined ? {} : asObject(root['raft'], where('raft'));
  const raft: RaftTiming = {
    tickMs: asInt(raftJson['tickMs'] ?? DEFAULT_TIMING.tickMs, 1, 10_000, where('raft.tickMs')),
    electionTicks: asInt(raftJson['electionTicks'] ?? DEFAULT_TIMING.electionTicks, 2, 10_000, where('raft.electionTicks')),
    heartbeatTicks: asInt(raftJson['heartbeatTicks'] ?? DEFAULT_TIMING.heartbeatTicks, 1, 10_000, where('raft.heartbeatTicks')),
    maxMsgBytes: asInt(raftJson['maxMsgBytes'] ?? DEFAULT_TIMING.maxMsgBytes, 1024, 1 << 20, where('raft.maxMsgBytes')),
    maxInflightBytes: asInt(raftJson['maxInflightBytes'] ?? DEFAULT_TIMING.maxInflightBytes, 1024, 8 << 20, where('raft.maxInflightBytes')),
    logCacheBytes: asInt(raftJson['logCacheBytes'] ?? DEFAULT_TIMING.logCacheBytes, 0, 1 << 30, where('raft.logCacheBytes')),
    snapshotEveryEntries: asInt(raftJson['snapshotEveryEntries'] ?? DEFAULT_TIMING.snapshotEveryEntries, 1, 100_000_000, where('raft.snapshotEveryEntries')),
    snapshotKeepEntries: asInt(raftJson['snapshotKeepEntries'] ?? DEFAULT_TIMING.snapshotKeepEntries, 0, 100_000_000, where('raft.snapshotKeepEntries')),
  };
  if (raft.electionTicks <= raft.heartbeatTicks) {
    throw new ConfigError(`${where('raft')}: electionTicks (${raft.electionTicks}) must exceed heartbeatTicks (${raft.heartbeatTicks})`);
  }
  const limitsJson = root['limits'] === undefined ? {} : asObject(root['limits'], where('limits'));
  const limits: Limits = {
    maxKeyBytes: asInt(limitsJson['maxKeyBytes'] ?? DEFAULT_LIMITS.maxKeyBytes, 1, 64 * 1024, where('limits.maxKeyBytes')),
    maxValueBytes: asInt(limitsJson['maxValueBytes'] ?? DEFAULT_LIMITS.maxValueBytes, 0, 16 * 1024 * 1024, where('limits.maxValueBytes')),
    writeTimeoutMs: asInt(limitsJson['writeTimeoutMs'] ?? DEFAULT_LIMITS.writeTimeoutMs, 1, 600_000, where('limits.writeTimeoutMs')),
    readTimeoutMs: asInt(limitsJson['readTimeoutMs'] ?? DEFAULT_LIMITS.readTimeoutMs, 1, 600_000, where('limits.readTimeoutMs')),
    maxPageSize: asInt(limitsJson['maxPageSize'] ?? DEFAULT_LIMITS.maxPageSize, 1, 100_000, where('limits.maxPageSize')),
    maxResponseBytes: asInt(
      limitsJson['maxResponseBytes'] ?? DEFAULT_LIMITS.maxResponseBytes,
      1024,
      MAX_RESPONSE_BYTES_LIMIT,
      where('limits.maxResponseBytes'),
    ),
  };
  const peerToken = root['peerToken'] === undefined ? undefined : asString(root['peerToken'], where('peerToken'));
  const readsJson = root['reads'] === undefined ? {} : asObject(root['reads'], where('reads'));
  const readPoolThreads =
    readsJson['poolThreads'] === undefined ? undefined : asInt(readsJson['poolThreads'], 0, 256, where('reads.poolThreads'));
  return { clusterId, nodes, raft, limits, peerToken, baseDir, readPoolThreads };
}

export function findNode(config: ClusterConfig, id: string): NodeSpec {
  const node = config.nodes.find((n) => n.id === id);
  if (node === undefined) {
    throw new ConfigError(`no node "${id}" in the cluster config; its nodes are ${config.nodes.map((n) => n.id).join(', ')}`);
  }
  return node;
}

/** host and port of an http:// URL, for listening on it. */
export function listenAddress(url: string): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port || 80) };
}

function asObject(value: unknown, where: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ConfigError(`${where} must be an object`);
  return value as Record<string, unknown>;
}

function asString(value: unknown, where: string): string {
  if (typeof value !== 'string' || value.length === 0) throw new ConfigError(`${where} must be a non-empty string`);
  return value;
}

function asUrl(value: unknown, where: string): string {
  const text = asString(value, where);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ConfigError(`${where} must be a URL like http://127.0.0.1:7001, got "${text}"`);
  }
  if (url.protocol !== 'http:') throw new ConfigError(`${where} must be an http:// URL, got "${text}"`);
  if (url.port === '') throw new ConfigError(`${where} must name a port, got "${text}"`);
  return `${url.protocol}//${url.host}`;
}

function asInt(value: unknown, min: number, max: number, where: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${where} must be an integer in [${min}, ${max}], got ${JSON.stringify(value)}`);
  }
  return value;
}

function assertUnique(values: readonly string[], where: string): void {
  const seen = new Set<string>();
  for (const v of values) {
    if (seen.has(v)) throw new ConfigError(`${where}: "${v}" appears twice`);
    seen.add(v);
  }
}
