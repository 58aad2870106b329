// One raftkv node: `node dist/main.js --id n1 --config cluster.config.json`
// (or `npm run node -- --id n1 --config cluster.config.json`).
//
// Exit codes: 0 after a clean shutdown (SIGTERM / SIGINT), 1 on a fatal runtime error (storage
// I/O, a broken invariant), 2 when it refuses to start (bad config, foreign or corrupt data dir,
// port in use): the message says what to do.
import { randomInt } from 'node:crypto';
import { resolve } from 'node:path';
import { adminTokenFromEnv } from './api/admin-auth.js';
import { registerAdminRoutes } from './api/admin.js';
import { registerBackupRoute } from './api/backup.js';
import { buildClientApi } from './api/client-api.js';
import { registerJoinInfoRoute } from './api/join-info.js';
import { configFromJoinInfo, waitUntilAdded } from './cluster-join.js';
import { parseCommandLine } from './command-line.js';
import { ConfigError, listenAddress, loadClusterConfig, type ClusterConfig } from './config/cluster-config.js';
import { createLogger, type Logger } from './log.js';
import { NodeMetrics } from './node/metrics.js';
import { RaftNode } from './node/raft-node.js';
import { parseUnsafeModes } from './node/unsafe.js';
import { staleBundleWarning } from './stale-bundle.js';
import { startReadQueries, defaultPoolSize, moduleBeside } from './reads/read-pool.js';
import { NodeStorage } from './storage/node-storage.js';
import { logInFilesFromEnv } from './storage/log-mode.js';
import { StorageRefusedError } from './storage/errors.js';
import { SnapshotReceiver } from './snapshot/receiver.js';
import { SnapshotSender } from './snapshot/sender.js';
import { DEFAULT_MAX_QUEUE_BYTES } from './transport/peer-client.js';
import { devTokenRefusal, resolvePeerToken } from './transport/token.js';
import { FaultSwitch } from './transport/faults.js';
import { PeerServer } from './transport/peer-server.js';
import { PeerTransport } from './transport/peer-transport.js';

const USAGE = `usage: node dist/main.js --id <node id> [--config cluster.config.json] [--data-dir DIR]
  [--fault-injection] [--log-level info]
   or: node dist/main.js --id <new id> --join <a member's client URL> --client-url URL --peer-url URL --data-dir DIR
       (a new member: it waits until an operator adds it with POST /members, then catches up)
environment: RAFTKV_PEER_TOKEN (the cluster's shared peer secret), RAFTKV_LOG_LEVEL,
  RAFTKV_READ_POOL_THREADS (read pool size; default: cores - 1, at least 1; 0 runs reads inline),
  RAFTKV_FAULT_INJECTION=1 (same as --fault-injection: lets chaos tests cut links by peer request),
  RAFTKV_ADMIN_TOKEN (admin routes such as GET /backup and /members then need Authorization: Bearer <it>;
  without it they answer loopback clients only),
  RAFTKV_LOG_IN_FILES=0 (a NEW data dir keeps the Raft log in LevelDB with the state machine, format 3; by default,
  or with 1, in segment files of its own, format 4; an existing data dir keeps where it has its log)`;

interface Args {
  readonly id: string;
  readonly config: string;
  readonly dataDir: string | undefined;
  readonly faultInjection: boolean;
  readonly logLevel: string | undefined;
  readonly join: { readonly url: string; readonly clientUrl: string; readonly peerUrl: string } | undefined;
}

function readArgs(): Args {
  const values = parseCommandLine(
    {
      id: { type: 'string' },
      config: { type: 'string', default: 'cluster.config.json' },
      'data-dir': { type: 'string' },
      'fault-injection': { type: 'boolean', default: false },
      'log-level': { type: 'string' },
      join: { type: 'string' },
      'client-url': { type: 'string' },
      'peer-url': { type: 'string' },
    },
    USAGE,
    refuse,
  );
  if (values.id === undefined) refuse(`--id is required\n${USAGE}`);
  let join: Args['join'];
  if (values.join !== undefined) {
    if (values['client-url'] === undefined || values['peer-url'] === undefined || values['data-dir'] === undefined) {
      refuse(
        `--join needs --client-url, --peer-url and --data-dir (the new member's addresses and its empty data dir)\n${USAGE}`,
      );
    }
    join = { url: values.join, clientUrl: values['client-url'], peerUrl: values['peer-url'] };
  }
  return {
    join,
    id: values.id,
    config: values.config,
    dataDir: values['data-dir'],
    faultInjection: values['fault-injection'] || process.env['RAFTKV_FAULT_INJECTION'] === '1',
    logLevel: values['log-level'],
  };
}

function refuse(message: string, logger?: Logger): never {
  // The plain line on stderr always: an operator reads it as written, whatever the log's format (a
  // JSON log line escapes the quotes around the very key it names).
  if (logger !== undefined) logger.fatal(message);
  console.error(`raftkv: ${message}`);
  process.exit(2);
}

async function main(): Promise<void> {
  const args = readArgs();
  const logger = createLogger({ nodeId: args.id, ...(args.logLevel === undefined ? {} : { level: args.logLevel }) });
  const stale = staleBundleWarning(import.meta.url);
  if (stale !== null) logger.warn(stale);
  const config = await clusterConfig(args, logger);
  // A node of the cluster file, or a member its data dir knows (one that joined later), or a joiner.
  const spec = config.nodes.find((n) => n.id === args.id);
  process.on('uncaughtException', (error) => {
    logger.fatal({ err: error }, 'uncaught exception: stopping');
    process.exit(1);
  });
  process.on('unhandledRejection', (error) => {
    logger.fatal({ err: error }, 'unhandled rejection: stopping');
    process.exit(1);
  });

  const peerToken = resolvePeerToken(config.peerToken);
  const joining = args.join !== undefined;
  // Before anything binds or opens: the public token must never guard a reachable peer port.
  const tokenRefusal = devTokenRefusal(peerToken, config.nodes);
  if (tokenRefusal !== undefined) refuse(tokenRefusal, logger);
  if (peerToken.isDevToken) {
    logger.warn(
      '!!! using the built-in development peer token: anyone can join or disrupt this cluster. ' +
        'Set RAFTKV_PEER_TOKEN to a long random secret (the same on every node) for anything but local testing !!!',
    );
  }

  let unsafe;
  try {
    unsafe = parseUnsafeModes(process.env['RAFTKV_UNSAFE_TEST_MODE']);
  } catch (error) {
    refuse((error as Error).message, logger);
  }
  if (unsafe.localReads || unsafe.earlyAck) {
    logger.warn(
      { unsafe },
      '!!! RAFTKV_UNSAFE_TEST_MODE is set: this node breaks its guarantees on purpose, for testing the chaos runner !!!',
    );
  }

  const voters = config.nodes.map((n) => n.id);
  const dataDirArg = args.dataDir ?? spec?.dataDir;
  if (dataDirArg === undefined) {
    refuse(
      `no node "${args.id}" in ${args.config}; its nodes are ${voters.join(', ')}. A member that joined later starts ` +
        'with --data-dir (its data dir knows its addresses), or with --join',
      logger,
    );
  }
  const dataDir = resolve(config.baseDir, dataDirArg);
  const metrics = new NodeMetrics(args.id);
  let logInFiles: boolean;
  try {
    logInFiles = logInFilesFromEnv(process.env);
  } catch (error) {
    if (error instanceof ConfigError) refuse(error.message, logger);
    throw error;
  }
  let storage: NodeStorage;
  try {
    storage = await NodeStorage.open({
      dataDir,
      // Every synced write: a Ready's, or one that writes what was held (NodeStorage.writeReady).
      onPersist: (ms) => {
        metrics.fsyncSeconds.observe(ms / 1000);
        metrics.fsyncs.inc();
      },
      clusterId: config.clusterId,
      nodeId: args.id,
      voters,
      // The cluster file bootstraps a new cluster's members; a joining node starts with none (a
      // snapshot brings them). Once the data dir stores a membership, that one counts.
      initialMembers: joining
        ? []
        : config.nodes.map((n) => ({ id: n.id, clientUrl: n.clientUrl, peerUrl: n.peerUrl, role: 'voter' })),
      logger,
      cacheBytes: config.raft.logCacheBytes,
      logInFiles,
    });
  } catch (error) {
    if (error instanceof StorageRefusedError) refuse(error.message, logger);
    throw error;
  }

  // This node's addresses: the cluster file's, or (a member that joined later) the stored membership's.
  const self = spec ?? storage.membership.members.find((m) => m.id === args.id) ?? joinedSelf(args);
  if (self === undefined) {
    refuse(
      `node ${args.id} is neither in ${args.config} nor a member its data dir ${dataDir} knows: to add a new node, ` +
        'start it with --join (README.md, "Membership changes")',
      logger,
    );
  }
  const peerUrlOf = (id: string): string | undefined => storage.membership.members.find((m) => m.id === id)?.peerUrl;
  const clientUrlOf = (id: string): string | undefined =>
    storage.membership.members.find((m) => m.id === id)?.clientUrl ?? config.nodes.find((n) => n.id === id)?.clientUrl;

  const poolEnv = process.env['RAFTKV_READ_POOL_THREADS'];
  const poolThreads =
    poolEnv !== undefined && poolEnv !== '' ? Number(poolEnv) : (config.readPoolThreads ?? defaultPoolSize());
  if (!Number.isInteger(poolThreads) || poolThreads < 0)
    refuse(`RAFTKV_READ_POOL_THREADS must be a whole number, not "${poolEnv}"`, logger);
  const { queries: reads, ready: readsReady } = startReadQueries({
    // dist/reads/worker.js (tsc's), found from this entry, bundled or not (scripts/bundle.ts).
    workerFile: moduleBeside('./reads/worker', import.meta.url),
    location: storage.location,
    state: storage,
    threads: poolThreads,
    logger,
    maxResponseBytes: config.limits.maxResponseBytes,
  });
  // Not awaited: the node starts while the workers do (startReadQueries says why, and bounds how
  // long they may take). Settles only after the next await below, when every name shutdown uses
  // is defined.
  readsReady.then(
    () =>
      logger.info(
        { threads: reads.threads },
        reads.threads === 0 ? 'read pool disabled: every query runs on the main thread' : 'read pool started',
      ),
    (error: unknown) => {
      // A stop while the workers start rejects their start: that is no failure.
      if (shuttingDown) return;
      logger.fatal({ err: error }, 'the read pool could not start its workers');
      void shutdown(1);
    },
  );

  let shuttingDown = false;
  const faults = args.faultInjection ? new FaultSwitch() : undefined;
  if (faults !== undefined)
    logger.warn("fault injection is enabled: peers holding the token can cut this node's links");

  // The members' peer addresses; a joining node knows none yet until its snapshot: the join info's.
  const memberPeers = (): Map<string, string> =>
    storage.membership.members.length > 0
      ? new Map(storage.membership.members.map((m) => [m.id, m.peerUrl]))
      : new Map(config.nodes.map((n) => [n.id, n.peerUrl]));
  const transport = new PeerTransport({
    selfId: args.id,
    peers: memberPeers(),
    clusterId: config.clusterId,
    token: peerToken.token,
    logger,
    onUnreachable: (peer) => node.reportUnreachable(peer),
    onRemoved: (peer) => node.removedByPeer(peer),
    onReplies: (_peer, messages) => void node.receive(messages),
    requestTimeoutMs: config.raft.tickMs * config.raft.electionTicks * 2,
    // Room for the whole append window (plus the one append that may overshoot it) twice over, so
    // the queue never has to drop an append the core counts in flight (the config bounds keep this
    // under the peer server's body limit).
    maxQueueBytes: Math.max(DEFAULT_MAX_QUEUE_BYTES, 2 * (config.raft.maxInflightBytes + config.raft.maxMsgBytes)),
    ...(faults === undefined ? {} : { faults }),
  });
  metrics.watchPeers(() => transport.laneStats());
  const snapshotSender = new SnapshotSender({
    selfId: args.id,
    clusterId: config.clusterId,
    token: peerToken.token,
    peerUrlOf,
    openSource: () => storage.openSnapshotSource(),
    report: (to, ok) => node.reportSnapshot(to, ok),
    logger,
    onSent: () => metrics.snapshotsSent.inc(),
  });
  const snapshotReceiver = new SnapshotReceiver({
    selfId: args.id,
    clusterId: config.clusterId,
    beginStaging: () => storage.beginStaging(),
    deliver: (from, term, snapshot) => node.installSnapshot(from, term, snapshot),
    discard: (snapshot) => storage.discardStaged(snapshot),
    logger,
  });
  const node: RaftNode = new RaftNode({
    id: args.id,
    voters,
    store: storage,
    outbox: transport,
    tickMs: config.raft.tickMs,
    electionTicks: config.raft.electionTicks,
    heartbeatTicks: config.raft.heartbeatTicks,
    maxMsgBytes: config.raft.maxMsgBytes,
    maxInflightBytes: config.raft.maxInflightBytes,
    writeTimeoutMs: config.limits.writeTimeoutMs,
    readTimeoutMs: config.limits.readTimeoutMs,
    random: { int: (n) => randomInt(n) },
    logger,
    metrics,
    onFatal: () => void shutdown(1),
    unsafe,
    compaction: { everyEntries: config.raft.snapshotEveryEntries, keepEntries: config.raft.snapshotKeepEntries },
    onSnapshotRequested: (to, term) => snapshotSender.send(to, term),
    onLeadershipEnded: () => snapshotSender.abortAll(),
    // Peers follow the membership: new members get a client and may send to us; removed ones not.
    onMembershipChanged: (membership) => {
      transport.setPeers(new Map(membership.members.map((m) => [m.id, m.peerUrl])));
      peerServer.setMembers(
        membership.members.map((m) => m.id),
        membership.removed,
      );
    },
  });
  const peerServer = new PeerServer({
    ...listenAddress(self.peerUrl),
    selfId: args.id,
    // The members; a joining node knows none yet: whoever the join info named.
    peers: storage.membership.members.length > 0 ? storage.membership.members.map((m) => m.id) : voters,
    clusterId: config.clusterId,
    token: peerToken.token,
    logger,
    onMessages: (from, messages, replies) =>
      node.receive(messages, replies === 'none' ? undefined : from, replies === 'append'),
    onSnapshotFrame: (frame) => snapshotReceiver.frame(frame),
    ...(faults === undefined ? {} : { faults }),
  });
  peerServer.setMembers(
    storage.membership.members.length > 0 ? storage.membership.members.map((m) => m.id) : voters,
    storage.membership.removed,
  );
  const api = buildClientApi({
    nodeId: args.id,
    clusterId: config.clusterId,
    node,
    kv: {
      getEntrySync: (key) => storage.getEntrySync(key),
      scanJson: (query) => reads.scanJson(query),
      getManyJson: (keys) => reads.getManyJson(keys),
    },
    limits: config.limits,
    logger,
    metrics,
    clientUrlOf,
    live: () => !shuttingDown,
  });
  const adminToken = adminTokenFromEnv();
  registerBackupRoute(api, {
    clusterId: config.clusterId,
    openSource: () => storage.openSnapshotSource(),
    adminToken,
    logger,
  });
  registerAdminRoutes(api, {
    nodeId: args.id,
    node,
    adminToken,
    peerToken,
    clientUrlOf,
    promoteMaxLagEntries: config.limits.promoteMaxLagEntries,
    electionTimeoutMs: config.raft.tickMs * config.raft.electionTicks,
    tickMs: config.raft.tickMs,
    writeTimeoutMs: config.limits.writeTimeoutMs,
    logger,
  });
  registerJoinInfoRoute(api, {
    clusterId: config.clusterId,
    raft: config.raft,
    limits: config.limits,
    peerToken,
    node,
  });

  async function shutdown(code: number): Promise<void> {
    if (shuttingDown) return;
    shuttingDown = true;
    logger.info({ code }, code === 0 ? 'shutting down' : 'stopping after a fatal error');
    // Bounded: a stuck close must not keep a dying node around.
    const force = setTimeout(() => process.exit(code === 0 ? 1 : code), 10_000);
    force.unref();
    // A leader hands over first (while it still serves, so forwarded writes find the new leader):
    // otherwise the cluster waits an election timeout for a new one. Bounded by one election timeout.
    if (code === 0) await node.handOverLeadership(config.raft.tickMs * config.raft.electionTicks).catch(() => null);
    await api.close().catch(() => undefined);
    await node.stop().catch(() => undefined);
    await peerServer.close().catch(() => undefined);
    snapshotReceiver.abandon();
    await snapshotSender.close().catch(() => undefined);
    await transport.close().catch(() => undefined);
    await reads.close().catch(() => undefined);
    await storage.close().catch(() => undefined);
    logger.info('stopped');
    process.exit(code);
  }
  process.on('SIGTERM', () => void shutdown(0));
  process.on('SIGINT', () => void shutdown(0));

  try {
    await peerServer.listen();
    await api.listen(listenAddress(self.clientUrl));
  } catch (error) {
    // A stop begun while the servers were starting (a signal, or the read pool failing) closed them.
    if (shuttingDown) return;
    const code = (error as { code?: string }).code;
    refuse(
      code === 'EADDRINUSE'
        ? `an address of node ${args.id} is in use (client ${self.clientUrl}, peer ${self.peerUrl}): is this node already running? Stop it, or change the ports in ${args.config}`
        : `cannot listen: ${(error as Error).message}`,
      logger,
    );
  }
  if (shuttingDown) return;
  node.start();
  // LevelDB's estimate of the log's size on disk is asynchronous: refreshed now and then, not per scrape.
  const logBytesTimer = setInterval(() => {
    storage.logDiskBytes().then(
      (bytes) => metrics.logBytes.set(bytes),
      () => undefined,
    );
  }, 5000);
  logBytesTimer.unref();
  logger.info(
    {
      client: self.clientUrl,
      peer: self.peerUrl,
      dataDir: storage.location,
      cluster: config.clusterId,
      admin: adminToken === undefined ? 'loopback' : 'token',
    },
    `node ${args.id} is up`,
  );
}

/**
 * The cluster config: the file, or for `--join` what the cluster says (after waiting until an
 * operator added this node). Refuses the start with a message on anything wrong.
 */
async function clusterConfig(args: Args, logger: Logger): Promise<ClusterConfig> {
  try {
    if (args.join === undefined) return loadClusterConfig(args.config);
    const token = resolvePeerToken(undefined).token;
    const request = {
      joinUrl: args.join.url,
      id: args.id,
      clientUrl: args.join.clientUrl,
      peerUrl: args.join.peerUrl,
      dataDir: args.dataDir ?? '',
      token,
    };
    const info = await waitUntilAdded(request, logger);
    logger.info({ cluster: info.clusterId, members: info.members.map((m) => m.id) }, 'added to the cluster: joining');
    return configFromJoinInfo(info, request, process.cwd());
  } catch (error) {
    if (error instanceof ConfigError) refuse(error.message, logger);
    throw error;
  }
}

/** A joining node's own entry (its addresses from the command line). */
function joinedSelf(args: Args): { clientUrl: string; peerUrl: string } | undefined {
  return args.join === undefined ? undefined : { clientUrl: args.join.clientUrl, peerUrl: args.join.peerUrl };
}

void main();
