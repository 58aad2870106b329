// The public surface of the Raft core. Drivers import from here.
export { RaftCore, type RaftConfig, type RaftStatus, type ProgressStatus } from './core.js';
export { MemoryStorage, entryBytes, type Storage } from './storage.js';
export { SeededRandom, type Random } from './prng.js';
export { RaftInvariantError } from './assert.js';
export * from './types.js';
