// Checks on the data directory before LevelDB touches it, and the translation of LevelDB's open
// errors into refusals an operator can act on. Everything here throws StorageRefusedError.

import { constants as fsConstants, type Stats } from 'node:fs';
import fs from 'node:fs/promises';
import { StorageRefusedError, describeError } from './errors.js';

/**
 * What to do when a node's data dir is unusable (damaged, or not this node's): bring back this
 * node's own data, never an empty dir. A voter's vote and log must survive: one that came back
 * empty could grant a vote it already gave in a term and help elect a leader that lacks committed
 * entries, losing acknowledged writes (and it would never catch up: the leader's commit index lies
 * beyond its empty log). Wiping the dir is therefore never the advice.
 */
export function restoreOwnDataAdvice(nodeId: string): string {
  return (
    `restore ${nodeId}'s own data dir from a backup of it, or from a copy of ${nodeId}'s disk made while ${nodeId} ` +
    `was stopped. Never bring ${nodeId} back with an empty data dir or another node's: a voter must keep its vote ` +
    'and its log, or the cluster can lose acknowledged writes. Meanwhile the other nodes serve while they form a ' +
    'majority (README.md, "A node that lost its data")'
  );
}

/** Files LevelDB writes while it creates a database, before it holds any data. */
const LEVELDB_BOOT_FILES = new Set(['LOCK', 'LOG', 'LOG.old']);
/** Files of a LevelDB database that only exist once it has state. */
const LEVELDB_DATA_FILE = /^(MANIFEST-\d+|\d+\.(log|ldb|sst))$/;

/**
 * Makes sure `location` is a writable directory that is empty or looks like a LevelDB database,
 * creating it (and its parents) when missing. A non-empty directory of other files is refused: a
 * mistyped --data-dir must not litter someone's home directory with LevelDB files.
 */
export async function prepareDataDir(location: string, nodeId: string): Promise<void> {
  const stat = await statOrNull(location);
  if (stat === null) {
    await createDir(location);
    return;
  }
  if (!stat.isDirectory()) {
    throw new StorageRefusedError(
      `data dir ${location} exists but is not a directory: point --data-dir at a directory (it is created if missing)`,
    );
  }
  await assertWritable(location);
  await assertLevelDbOrEmpty(location, nodeId);
}

/** LevelDB failed to open an existing, prepared directory: say why in an operator's terms. */
export function refusalForOpenError(location: string, nodeId: string, error: unknown): StorageRefusedError {
  const code = rootCode(error);
  const detail = describeError(error);
  if (code === 'LEVEL_LOCKED') {
    return new StorageRefusedError(
      `data dir ${location} is locked by another process (${detail}): another raftkv node or tool is using it. ` +
        "Stop that process, or point --data-dir at this node's own directory",
      { cause: error },
    );
  }
  if (code === 'LEVEL_CORRUPTION') {
    return new StorageRefusedError(
      `LevelDB reports corruption in data dir ${location} (${detail}). To bring ${nodeId} back, ${restoreOwnDataAdvice(nodeId)}`,
      { cause: error },
    );
  }
  return new StorageRefusedError(
    `cannot open the LevelDB database in data dir ${location} (${detail}): check the path, its permissions and free disk space`,
    { cause: error },
  );
}

async function statOrNull(location: string): Promise<Stats | null> {
  try {
    return await fs.stat(location);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return null;
    throw new StorageRefusedError(
      `cannot access data dir ${location} (${describeError(error)}): check the path and the permissions of its parents`,
      { cause: error },
    );
  }
}

async function createDir(location: string): Promise<void> {
  try {
    await fs.mkdir(location, { recursive: true });
  } catch (error) {
    throw new StorageRefusedError(
      `cannot create data dir ${location} (${describeError(error)}): create it yourself with write permission for ` +
        'this process, or point --data-dir somewhere writable',
      { cause: error },
    );
  }
}

async function assertWritable(location: string): Promise<void> {
  try {
    await fs.access(location, fsConstants.W_OK | fsConstants.X_OK);
  } catch (error) {
    throw new StorageRefusedError(
      `data dir ${location} is not writable by this process (${describeError(error)}): fix its permissions or ` +
        'point --data-dir somewhere writable',
      { cause: error },
    );
  }
}

async function assertLevelDbOrEmpty(location: string, nodeId: string): Promise<void> {
  const names = (await fs.readdir(location)).filter((name) => name !== 'lost+found' && !name.startsWith('.'));
  if (names.includes('CURRENT')) return; // a LevelDB database: whose it is, the identity says
  if (names.every((name) => LEVELDB_BOOT_FILES.has(name))) return; // empty, or a creation that never got further
  if (names.every((name) => LEVELDB_BOOT_FILES.has(name) || LEVELDB_DATA_FILE.test(name))) {
    throw new StorageRefusedError(
      `data dir ${location} holds LevelDB files but no CURRENT file: the database is damaged. To bring ${nodeId} back, ${restoreOwnDataAdvice(nodeId)}`,
    );
  }
  const shown = names.slice(0, 5).join(', ') + (names.length > 5 ? `, ... (${names.length} entries)` : '');
  throw new StorageRefusedError(
    `data dir ${location} is not empty and is not a raftkv data dir (it holds ${shown}): point --data-dir at ` +
      `${nodeId}'s own data dir. A missing or empty directory is only for a node's first run in a new cluster; ` +
      `if ${nodeId} has run before and its data is lost, see "A node that lost its data" in README.md`,
  );
}

function errnoCode(error: unknown): string | undefined {
  return error instanceof Error && 'code' in error && typeof error.code === 'string' ? error.code : undefined;
}

/** The most specific error code in a cause chain (LevelDB puts the real one in `cause`). */
function rootCode(error: unknown): string | undefined {
  let code: string | undefined;
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current instanceof Error; depth++) {
    code = errnoCode(current) ?? code;
    current = current.cause;
  }
  return code;
}
