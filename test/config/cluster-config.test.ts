// cluster.config.json: defaults, overrides, and everything wrong refused with a message that names
// the field and what it must be; unknown keys at any level are refused, naming the known ones.
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  DEFAULT_LIMITS,
  DEFAULT_TIMING,
  loadClusterConfig,
  parseClusterConfig,
} from '../../src/config/cluster-config.js';

const base = {
  clusterId: 'c',
  nodes: [{ id: 'n1', clientUrl: 'http://127.0.0.1:7001', peerUrl: 'http://127.0.0.1:7101', dataDir: 'data/n1' }],
};

describe('limits.maxResponseBytes', () => {
  it('defaults to 16 MiB and can be set', () => {
    expect(parseClusterConfig(base, '/tmp').limits.maxResponseBytes).toBe(16 * 1024 * 1024);
    expect(DEFAULT_LIMITS.maxResponseBytes).toBe(16 * 1024 * 1024);
    expect(parseClusterConfig({ ...base, limits: { maxResponseBytes: 65536 } }, '/tmp').limits.maxResponseBytes).toBe(
      65536,
    );
  });

  it.each([0, 1023, 256 * 1024 * 1024 + 1, 1.5, '16MiB'])('refuses %s, naming the field and the range', (value) => {
    expect(() => parseClusterConfig({ ...base, limits: { maxResponseBytes: value } }, '/tmp')).toThrow(ConfigError);
    expect(() => parseClusterConfig({ ...base, limits: { maxResponseBytes: value } }, '/tmp')).toThrow(
      /limits\.maxResponseBytes must be an integer in \[1024, 268435456\]/,
    );
  });
});

const NODE_ID_RULE = 'a node id: 1 to 64 letters, digits, ".", "_" or "-", starting with a letter or digit';

describe('node ids and URLs: the rules the admin API applies to a member added at run time', () => {
  it.each(['n1', 'N-1', 'db_2.eu-west', '7', 'a'.repeat(64)])('takes the id %s', (id) => {
    const json = { ...base, nodes: [{ ...base.nodes[0], id }] };
    expect(parseClusterConfig(json, '/tmp').nodes[0]?.id).toBe(id);
  });

  // An id travels in headers (x-raft-leader), URL paths (/members/<id>) and metric labels.
  it.each(['', 'n 1', 'n1\n', '..', '.n1', '-n1', 'a/b', 'n%31', 'nœud', '日本', 'a'.repeat(65)])(
    'refuses the id %j, saying what an id is',
    (id) => {
      expect(() => parseClusterConfig({ ...base, nodes: [{ ...base.nodes[0], id }] }, '/tmp')).toThrow(
        `nodes[0].id must be ${NODE_ID_RULE}`,
      );
    },
  );

  it.each([
    ['http://127.0.0.1:7001/raft', 'a path'],
    ['http://127.0.0.1:7001?x=1', 'a query'],
    ['http://127.0.0.1:7001#x', 'a fragment'],
    ['http://user:secret@127.0.0.1:7001', 'credentials'],
  ])('refuses the URL %s (%s): requests are built as the URL followed by a route', (clientUrl) => {
    expect(() => parseClusterConfig({ ...base, nodes: [{ ...base.nodes[0], clientUrl }] }, '/tmp')).toThrow(
      `nodes[0].clientUrl must be http://host:port and nothing more (no path, query or credentials), got "${clientUrl}"`,
    );
  });

  it('normalises a URL to http://host:port (a trailing slash is no path)', () => {
    const json = { ...base, nodes: [{ ...base.nodes[0], clientUrl: 'http://LOCALHOST:7001/' }] };
    expect(parseClusterConfig(json, '/tmp').nodes[0]?.clientUrl).toBe('http://localhost:7001');
  });
});

describe('limits.promoteMaxLagEntries', () => {
  it('defaults to 1000 and can be set, from 0', () => {
    expect(DEFAULT_LIMITS.promoteMaxLagEntries).toBe(1000);
    expect(parseClusterConfig(base, '/tmp').limits.promoteMaxLagEntries).toBe(1000);
    expect(
      parseClusterConfig({ ...base, limits: { promoteMaxLagEntries: 0 } }, '/tmp').limits.promoteMaxLagEntries,
    ).toBe(0);
    expect(() => parseClusterConfig({ ...base, limits: { promoteMaxLagEntries: -1 } }, '/tmp')).toThrow(
      /limits\.promoteMaxLagEntries must be an integer in \[0, 1000000000\]/,
    );
  });
});

describe('limits.maxTxnOps and limits.maxTxnBytes (POST /txn)', () => {
  it('default to 128 items and 4 MiB, and can be set', () => {
    expect(parseClusterConfig(base, '/tmp').limits).toMatchObject({ maxTxnOps: 128, maxTxnBytes: 4 * 1024 * 1024 });
    const limits = parseClusterConfig({ ...base, limits: { maxTxnOps: 3, maxTxnBytes: 2048 } }, '/tmp').limits;
    expect(limits).toMatchObject({ maxTxnOps: 3, maxTxnBytes: 2048 });
  });

  it.each([
    ['maxTxnOps', 0, /limits\.maxTxnOps must be an integer in \[1, 10000\], got 0/],
    ['maxTxnOps', 10_001, /limits\.maxTxnOps must be an integer in \[1, 10000\], got 10001/],
    ['maxTxnOps', 2.5, /limits\.maxTxnOps must be an integer in \[1, 10000\], got 2\.5/],
    ['maxTxnBytes', 1023, /limits\.maxTxnBytes must be an integer in \[1024, 16777216\], got 1023/],
    ['maxTxnBytes', 16 * 1024 * 1024 + 1, /limits\.maxTxnBytes must be an integer in \[1024, 16777216\], got 16777217/],
    ['maxTxnBytes', '4MiB', /limits\.maxTxnBytes must be an integer in \[1024, 16777216\], got "4MiB"/],
  ])('refuses %s = %s, naming the field and the range', (field, value, message) => {
    expect(() => parseClusterConfig({ ...base, limits: { [field]: value } }, '/tmp')).toThrow(message);
  });
});

const SOURCE = 'cluster.config.json';
const parse = (json: unknown) => parseClusterConfig(json, '/tmp', SOURCE);
/** The ConfigError message `json` is refused with. */
function refusal(json: unknown): string {
  try {
    parse(json);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('the config was accepted');
}
const node2 = { id: 'n2', clientUrl: 'http://127.0.0.1:7002', peerUrl: 'http://127.0.0.1:7102', dataDir: 'data/n2' };
const RAFT_KEYS =
  'tickMs, electionTicks, heartbeatTicks, maxMsgBytes, maxInflightBytes, logCacheBytes, snapshotEveryEntries, snapshotKeepEntries';
const LIMITS_KEYS =
  'maxKeyBytes, maxValueBytes, writeTimeoutMs, readTimeoutMs, maxPageSize, maxResponseBytes, promoteMaxLagEntries, maxTxnOps, maxTxnBytes';
const TOP_KEYS = 'clusterId, nodes, raft, limits, peerToken, reads';

describe('unknown keys are refused, naming them and the known ones', () => {
  // Regression: each of these was ignored silently, and the node ran with the default instead.
  it.each([
    ['raft', { ...base, raft: { tickMS: 10 } }, `raft: unknown key "tickMS" (known: ${RAFT_KEYS})`],
    ['limits', { ...base, limits: { maxPageSzie: 10 } }, `limits: unknown key "maxPageSzie" (known: ${LIMITS_KEYS})`],
    ['reads', { ...base, reads: { threads: 2 } }, 'reads: unknown key "threads" (known: poolThreads)'],
    [
      'a node',
      { ...base, nodes: [base.nodes[0], { ...node2, peerURL: 'x' }] },
      'nodes[1]: unknown key "peerURL" (known: id, clientUrl, peerUrl, dataDir)',
    ],
    ['the top level', { ...base, limit: {} }, `unknown key "limit" (known: ${TOP_KEYS})`],
  ])('in %s', (_where, json, message) => {
    expect(refusal(json)).toBe(`${SOURCE}: ${message}`);
  });

  it('a misspelt required key is named first, then the key it lacks', () => {
    const { clusterId: _, ...rest } = base;
    expect(refusal({ ...rest, clusterID: 'c' })).toBe(
      `${SOURCE} has these problems:\n` +
        `  unknown key "clusterID" (known: ${TOP_KEYS})\n` +
        '  clusterId is missing: it must be a non-empty string',
    );
  });

  it('every unknown key of an object, even more than TypeBox reports errors for (8)', () => {
    const raft = Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`k${i}`, i]));
    const message = refusal({ ...base, raft });
    expect(message).toMatch(/^cluster\.config\.json: raft: unknown keys "k0", "k1", "k2", "k3", "k4", "k5", "k6"/);
    expect(message).toContain('(known: tickMs,');
  });

  it('problems in several places are listed one per line', () => {
    expect(refusal({ ...base, raft: { tickMS: 10, electionTick: 3 }, limits: { maxPageSize: 0 } })).toBe(
      `${SOURCE} has these problems:\n` +
        `  raft: unknown keys "tickMS", "electionTick" (known: ${RAFT_KEYS})\n` +
        '  limits.maxPageSize must be an integer in [1, 100000], got 0',
    );
  });
});

describe('every other check stays', () => {
  const nodes = (...list: unknown[]) => ({ ...base, nodes: list });
  it.each([
    ['the top level', [], 'the top level must be an object, got []'],
    ['clusterId', { ...base, clusterId: '' }, 'clusterId must be a non-empty string, got ""'],
    ['nodes', nodes(), 'nodes must be a non-empty array of nodes, got []'],
    ['a node', nodes('n1'), 'nodes[0] must be an object {"id", "clientUrl", "peerUrl", "dataDir"}, got "n1"'],
    ['a node id', nodes({ ...node2, id: 7 }), `nodes[0].id must be ${NODE_ID_RULE}, got 7`],
    [
      'a missing dataDir',
      nodes({ id: 'n2', clientUrl: node2.clientUrl, peerUrl: node2.peerUrl }),
      'nodes[0].dataDir is missing: it must be a non-empty string',
    ],
    ['a range', { ...base, raft: { electionTicks: 1 } }, 'raft.electionTicks must be an integer in [2, 10000], got 1'],
    ['an integer', { ...base, raft: { tickMs: 2.5 } }, 'raft.tickMs must be an integer in [1, 10000], got 2.5'],
    ['a section', { ...base, limits: 5 }, 'limits must be an object of request limits, got 5'],
    ['peerToken', { ...base, peerToken: '' }, 'peerToken must be a non-empty string, got ""'],
    [
      'reads.poolThreads',
      { ...base, reads: { poolThreads: 257 } },
      'reads.poolThreads must be an integer in [0, 256], got 257',
    ],
    [
      'electionTicks > heartbeatTicks',
      { ...base, raft: { electionTicks: 3, heartbeatTicks: 3 } },
      'raft: electionTicks (3) must exceed heartbeatTicks (3)',
    ],
    [
      'a URL',
      nodes({ ...node2, clientUrl: 'localhost' }),
      'nodes[0].clientUrl must be a URL like http://127.0.0.1:7001, got "localhost"',
    ],
    [
      'http://',
      nodes({ ...node2, peerUrl: 'https://127.0.0.1:7102' }),
      'nodes[0].peerUrl must be an http:// URL, got "https://127.0.0.1:7102"',
    ],
    [
      'a port',
      nodes({ ...node2, peerUrl: 'http://127.0.0.1' }),
      'nodes[0].peerUrl must name a port, got "http://127.0.0.1"',
    ],
    ['unique ids', nodes(base.nodes[0], { ...node2, id: 'n1' }), 'nodes[].id: "n1" appears twice'],
    [
      'unique URLs',
      nodes(base.nodes[0], { ...node2, peerUrl: 'http://127.0.0.1:7001/' }),
      'nodes[] urls: "http://127.0.0.1:7001" appears twice',
    ],
    [
      'unique data dirs',
      nodes(base.nodes[0], { ...node2, dataDir: 'data/../data/n1' }),
      'nodes[].dataDir: "/tmp/data/n1" appears twice',
    ],
  ])('%s', (_what, json, message) => {
    expect(refusal(json)).toBe(`${SOURCE}: ${message}`);
  });

  it('a valid file gets the defaults for what it leaves out', () => {
    const config = parse({
      ...base,
      nodes: [base.nodes[0], node2],
      raft: { tickMs: 20 },
      limits: { maxPageSize: 7 },
      reads: { poolThreads: 0 },
      peerToken: 't',
    });
    expect(config.raft).toEqual({ ...DEFAULT_TIMING, tickMs: 20 });
    expect(config.limits).toEqual({ ...DEFAULT_LIMITS, maxPageSize: 7 });
    expect(config.readPoolThreads).toBe(0);
    expect(config.peerToken).toBe('t');
    expect(config.nodes.map((n) => n.id)).toEqual(['n1', 'n2']);
    expect(parse(base).readPoolThreads).toBeUndefined();
    expect(parse(base).peerToken).toBeUndefined();
  });

  it("the repository's cluster.config.json loads", () => {
    const config = loadClusterConfig(fileURLToPath(new URL('../../cluster.config.json', import.meta.url)));
    expect(config.nodes.map((n) => n.id)).toEqual(['n1', 'n2', 'n3']);
  });
});
