// Where a new data dir keeps its Raft log (src/storage/log-mode.ts): the node and the restore read
// RAFTKV_LOG_IN_FILES the same way.

import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/cluster-config.js';
import { logInFilesFromEnv } from '../../src/storage/log-mode.js';

describe('RAFTKV_LOG_IN_FILES', () => {
  it('keeps the log in segment files unless it is 0', () => {
    expect(logInFilesFromEnv({})).toBe(true);
    expect(logInFilesFromEnv({ RAFTKV_LOG_IN_FILES: '' })).toBe(true);
    expect(logInFilesFromEnv({ RAFTKV_LOG_IN_FILES: '1' })).toBe(true);
    expect(logInFilesFromEnv({ RAFTKV_LOG_IN_FILES: '0' })).toBe(false);
  });

  it('refuses anything else, saying what it takes', () => {
    for (const value of ['yes', 'true', '2', ' 0']) {
      expect(() => logInFilesFromEnv({ RAFTKV_LOG_IN_FILES: value })).toThrow(ConfigError);
      expect(() => logInFilesFromEnv({ RAFTKV_LOG_IN_FILES: value })).toThrow(/must be 1 .* or 0 \(in LevelDB\)/);
    }
  });
});
