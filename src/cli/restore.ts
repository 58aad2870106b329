// `npm run restore -- --from FILE [--config cluster.config.json]`: a new data dir for every node of
// the config, each starting from the state in a backup file (GET /backup). Start the nodes afterwards
// as usual; they elect a leader in a term after the backup's.
//
// Order, so that nothing is written from a bad file or over existing data:
//  1. the whole file is read and checked (magic, frames, header, trailer count and SHA-256);
//  2. the cluster id and every target data dir are checked (missing or empty);
//  3. the file is read again, its pairs written into every data dir, and each dir is made a node's
//     (identity last: restore-data-dir.ts) only once the trailer checked out again.
// A failure in 3 removes what the restore wrote.
//
// Exit codes: 0 restored; 2 refused (bad arguments or config, a corrupt or truncated file, another
// cluster's backup, a data dir in the way), with a message that says what to do; 1 anything else
// (an I/O error while writing).

import { resolve } from 'node:path';
import { parseCommandLine } from '../command-line.js';
import { ConfigError, loadClusterConfig, type ClusterConfig } from '../config/cluster-config.js';
import { readBackupFile, type BackupSummary } from '../snapshot/backup-file.js';
import { SnapshotFormatError } from '../snapshot/format.js';
import { StorageRefusedError, describeError } from '../storage/errors.js';
import { RestoredDataDir, assertRestorable } from '../storage/restore-data-dir.js';
import { logInFilesFromEnv } from '../storage/log-mode.js';

const USAGE = `usage: npm run restore -- --from FILE [--config cluster.config.json] [--allow-new-cluster-id]
  (or: node dist/cli/restore.js --from FILE ...)
Creates a data dir for every node of the config from a backup file (GET /backup on a node's client port).
Every data dir must be missing or empty; stop the cluster and move its old data dirs away first.
  --allow-new-cluster-id  restore a backup of another cluster id into the config's cluster
environment: RAFTKV_LOG_IN_FILES=0 makes data dirs that keep the Raft log in LevelDB (format 3), as a node
  started with it does; by default the log is in segment files (format 4)`;

class Refusal extends Error {}

function refuse(message: string): never {
  throw new Refusal(message);
}

interface Args {
  readonly from: string;
  readonly config: string;
  readonly allowNewClusterId: boolean;
}

function readArgs(): Args {
  const values = parseCommandLine(
    {
      from: { type: 'string' },
      config: { type: 'string', default: 'cluster.config.json' },
      'allow-new-cluster-id': { type: 'boolean', default: false },
    },
    USAGE,
    refuse,
  );
  if (values.from === undefined) refuse(`--from is required\n${USAGE}`);
  return { from: values.from, config: values.config, allowNewClusterId: values['allow-new-cluster-id'] };
}

/** Reads and checks the whole file; a bad one is refused with what is wrong and that nothing was written. */
async function verify(file: string): Promise<BackupSummary> {
  try {
    return await readBackupFile(file);
  } catch (error) {
    if (error instanceof SnapshotFormatError) {
      refuse(
        `backup file ${file} is not usable: ${error.message}. Nothing was written. Take a new backup (GET /backup), or use an intact copy of this one`,
      );
    }
    refuse(`cannot read backup file ${file} (${describeError(error)}). Nothing was written`);
  }
}

function checkClusterId(summary: BackupSummary, config: ClusterConfig, args: Args): void {
  const from = summary.header.clusterId;
  if (from === config.clusterId || args.allowNewClusterId) return;
  refuse(
    `the backup is of cluster "${from}", but ${args.config} is for cluster "${config.clusterId}". Nothing was written. ` +
      `To bring cluster "${from}" back, set "clusterId": "${from}" in the config; to start cluster "${config.clusterId}" ` +
      'with this data, run the restore again with --allow-new-cluster-id',
  );
}

async function checkTargets(targets: readonly { id: string; dataDir: string }[]): Promise<void> {
  const problems: string[] = [];
  for (const target of targets) {
    try {
      await assertRestorable(target.dataDir);
    } catch (error) {
      if (!(error instanceof StorageRefusedError)) throw error;
      problems.push(`${target.id}: ${error.message}`);
    }
  }
  if (problems.length > 0) refuse(`nothing was written:\n  ${problems.join('\n  ')}`);
}

async function write(
  file: string,
  summary: BackupSummary,
  config: ClusterConfig,
  targets: readonly { id: string; dataDir: string }[],
  logInFiles: boolean,
): Promise<void> {
  const dirs: RestoredDataDir[] = [];
  try {
    for (const target of targets) dirs.push(await RestoredDataDir.create(target.dataDir, target.id, logInFiles));
    const again = await readBackupFile(file, async (pairs) => {
      await Promise.all(dirs.map((dir) => dir.write(pairs)));
    });
    // The file was checked in full before; a file that changed since is caught by its own trailer
    // (readBackupFile threw), but the point it names must be the one checked, too.
    if (
      again.header.index !== summary.header.index ||
      again.header.term !== summary.header.term ||
      again.pairs !== summary.pairs
    ) {
      throw new SnapshotFormatError('the file changed while it was being restored');
    }
    const point = {
      clusterId: config.clusterId,
      index: summary.header.index,
      term: summary.header.term,
      members: config.nodes.map((n) => ({
        id: n.id,
        clientUrl: n.clientUrl,
        peerUrl: n.peerUrl,
        role: 'voter' as const,
      })),
    };
    for (const dir of dirs) await dir.finish(point);
  } catch (error) {
    await Promise.all(dirs.map((dir) => dir.abandon().catch(() => undefined)));
    if (error instanceof SnapshotFormatError)
      refuse(
        `backup file ${file} changed or broke while it was restored (${error.message}). What was written is removed`,
      );
    if (error instanceof StorageRefusedError) refuse(`${error.message}. What was written is removed`);
    throw error;
  }
}

async function main(): Promise<void> {
  const args = readArgs();
  let config: ClusterConfig;
  // The same kind of data dir a node makes when it starts on an empty one.
  let logInFiles: boolean;
  try {
    config = loadClusterConfig(args.config);
    logInFiles = logInFilesFromEnv(process.env);
  } catch (error) {
    if (error instanceof ConfigError) refuse(error.message);
    throw error;
  }
  const file = resolve(args.from);
  const summary = await verify(file);
  const { header } = summary;
  console.log(
    `backup ${file}: cluster ${header.clusterId}, index ${header.index}, term ${header.term}, ${summary.pairs} keys, ` +
      `${summary.bytes} bytes, checksum OK`,
  );
  checkClusterId(summary, config, args);
  const targets = config.nodes.map((n) => ({ id: n.id, dataDir: resolve(config.baseDir, n.dataDir) }));
  await checkTargets(targets);
  const started = Date.now();
  await write(file, summary, config, targets, logInFiles);
  for (const target of targets) console.log(`restored ${target.id} -> ${target.dataDir}`);
  const from = header.clusterId === config.clusterId ? '' : ` (from cluster ${header.clusterId})`;
  console.log(
    `cluster ${config.clusterId}${from}: ${targets.length} data dirs at index ${header.index}, term ${header.term}, ` +
      `in ${Date.now() - started} ms. Start every node (npm start, or npm run node -- --id <id> --config ${args.config}): ` +
      'they elect a leader in a later term',
  );
}

// exitCode, not exit(): the process ends once everything is closed, after its output is flushed.
main().then(
  () => {
    process.exitCode = 0;
  },
  (error: unknown) => {
    if (error instanceof Refusal) {
      console.error(`raftkv restore: ${error.message}`);
      process.exitCode = 2;
      return;
    }
    console.error(`raftkv restore failed: ${describeError(error)}`);
    process.exitCode = 1;
  },
);
