// The public surface of node storage. Drivers, the API and the read pool import from here.
export {
  NodeStorage,
  type ApplyOutcome,
  type NodeStorageOptions,
  type NodeStorageStats,
} from './node-storage.js';
export { encodeCommand, decodeCommand, MAX_COMMAND_KEY_BYTES, type Command } from './state-machine.js';
export { StorageRefusedError, StorageFatalError, CorruptDataError } from './errors.js';
export { scanKv, scanBounds, type ScanOptions, type ScanPage } from './kv-scan.js';
export {
  openDatabase,
  DATABASE_OPTIONS,
  SUBLEVEL_NAMES,
  type Database,
  type ByteLevel,
  type ByteSublevel,
} from './database.js';
export { STORAGE_FORMAT } from './codec.js';
