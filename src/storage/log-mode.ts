// Where a new data dir keeps its Raft log: the one reading of RAFTKV_LOG_IN_FILES, shared by the
// node (main.ts) and the restore (cli/restore.ts), so that both make the same kind of dir. An
// existing dir keeps the format it has, whatever the variable says (open-data-dir.ts).

import { ConfigError } from '../config/cluster-config.js';

export const LOG_IN_FILES_ENV = 'RAFTKV_LOG_IN_FILES';

/**
 * Whether a new data dir keeps its Raft log in segment files of its own (format 4: the default,
 * BENCHMARKS.md step 24 says why), or in LevelDB with the state machine (format 3) when the
 * variable is 0. Throws ConfigError on any other value.
 */
export function logInFilesFromEnv(env: NodeJS.ProcessEnv): boolean {
  const value = env[LOG_IN_FILES_ENV];
  if (value === undefined || value === '' || value === '1') return true;
  if (value === '0') return false;
  throw new ConfigError(
    `${LOG_IN_FILES_ENV} must be 1 (a new data dir keeps the Raft log in segment files, the default) or 0 (in LevelDB), not "${value}"`,
  );
}
