// The shape of cluster.config.json as a TypeBox schema: every key it may hold, at every level, and
// the range of every number. An unknown key is refused, naming the known ones: a misspelt key
// (`"tickMS"`) used to be ignored silently, and the node ran with the default instead.
//
// What a schema cannot say is checked after it, in cluster-config.ts: URLs (http://, with a port, no path),
// ids, URLs and data dirs unique across nodes, electionTicks > heartbeatTicks.
import Type, { type Static } from 'typebox';
import { inBrackets, integerIn } from '../schema/problems.js';

/** V8 strings stop at ~512 MiB, and an answer is built as strings first: stay well below. */
export const MAX_RESPONSE_BYTES_LIMIT = 256 * 1024 * 1024;
/**
 * A transaction is one log entry, and an append carries at least one entry in a peer request of at
 * most 32 MiB (src/transport): its body stays well below that, whatever its encoding adds.
 */
export const MAX_TXN_BYTES_LIMIT = 16 * 1024 * 1024;

const int = (min: number, max: number) => integerIn(min, max, inBrackets);
const nonEmptyString = Type.String({ minLength: 1, description: 'a non-empty string' });
const url = Type.String({ minLength: 1, description: 'a URL like http://127.0.0.1:7001' });

/**
 * A node id: it travels in HTTP headers (x-raft-leader, forwarding), URL paths (`/members/<id>`),
 * metric labels and log lines, so it is kept to characters all of them take as they are; a leading
 * letter or digit keeps `.` and `..` (which URL clients collapse) out. The admin API's
 * `POST /members` checks a new member's id against this same schema.
 */
export const nodeIdSchema = Type.String({
  pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$',
  description: 'a node id: 1 to 64 letters, digits, ".", "_" or "-", starting with a letter or digit',
});
/** Objects refuse keys they do not declare. */
const strict = (description: string) => ({ additionalProperties: false, description });

const nodeSpec = Type.Object(
  { id: nodeIdSchema, clientUrl: url, peerUrl: url, dataDir: nonEmptyString },
  strict('an object {"id", "clientUrl", "peerUrl", "dataDir"}'),
);

const raft = Type.Object(
  {
    tickMs: Type.Optional(int(1, 10_000)),
    electionTicks: Type.Optional(int(2, 10_000)),
    heartbeatTicks: Type.Optional(int(1, 10_000)),
    // At most 1 MiB: an append of empty entries (24 bytes each) must fit the peer decoder's bound
    // of 65,536 entries per body.
    maxMsgBytes: Type.Optional(int(1024, 1 << 20)),
    maxInflightBytes: Type.Optional(int(1024, 8 << 20)),
    logCacheBytes: Type.Optional(int(0, 1 << 30)),
    snapshotEveryEntries: Type.Optional(int(1, 100_000_000)),
    snapshotKeepEntries: Type.Optional(int(0, 100_000_000)),
  },
  strict('an object of Raft timings and flow-control bounds'),
);

const limits = Type.Object(
  {
    maxKeyBytes: Type.Optional(int(1, 64 * 1024)),
    maxValueBytes: Type.Optional(int(0, 16 * 1024 * 1024)),
    writeTimeoutMs: Type.Optional(int(1, 600_000)),
    readTimeoutMs: Type.Optional(int(1, 600_000)),
    maxPageSize: Type.Optional(int(1, 100_000)),
    maxResponseBytes: Type.Optional(int(1024, MAX_RESPONSE_BYTES_LIMIT)),
    promoteMaxLagEntries: Type.Optional(int(0, 1_000_000_000)),
    maxTxnOps: Type.Optional(int(1, 10_000)),
    maxTxnBytes: Type.Optional(int(1024, MAX_TXN_BYTES_LIMIT)),
  },
  strict('an object of request limits'),
);

const reads = Type.Object({ poolThreads: Type.Optional(int(0, 256)) }, strict('an object {"poolThreads"}'));

export const clusterConfigFile = Type.Object(
  {
    clusterId: nonEmptyString,
    nodes: Type.Array(nodeSpec, { minItems: 1, description: 'a non-empty array of nodes' }),
    raft: Type.Optional(raft),
    limits: Type.Optional(limits),
    peerToken: Type.Optional(nonEmptyString),
    reads: Type.Optional(reads),
  },
  strict('an object'),
);

/** cluster.config.json as written, once it passed the schema (defaults not yet applied). */
export type ClusterConfigFile = Static<typeof clusterConfigFile>;
