// Opening a node's data dir: the identity check (whose dir, which cluster, which format), loading
// the hard state, the applied state and the whole log, and validating that they agree. Anything
// wrong refuses the start (StorageRefusedError, with a message that says what to do): a node never
// starts silently on damaged or foreign state.

import path from 'node:path';
import type { Logger } from 'pino';
import { EMPTY_HARD_STATE, type HardState, type NodeId, type SnapshotMeta } from '../raft/types.js';
import {
  META_HARDSTATE,
  META_IDENTITY,
  META_LOGSTART,
  META_REMOVED,
  META_SNAPSHOT,
  SM_APPLIED,
  SM_GENERATION,
  SM_MEMBERS,
  LOG_FILES_DIR,
  LOG_FILES_FORMAT,
  STORAGE_FORMAT,
  decodeApplied,
  decodeGeneration,
  decodeHardState,
  decodeIdentity,
  decodeLogPosition,
  decodeLogValue,
  decodeSnapshotMeta,
  encodeIdentity,
  indexOfLogKey,
  logKey,
  type AppliedState,
  type LogPosition,
} from './codec.js';
import { prepareDataDir, refusalForOpenError, restoreOwnDataAdvice } from './data-dir.js';
import { openDatabase, putOp, type ByteSublevel, type Database } from './database.js';
import { CorruptDataError, StorageRefusedError, describeError } from './errors.js';
import { loadEntries } from './load-log-entry.js';
import { FileLog, type FileLogOptions } from './log-file/file-log.js';
import { FIRST_INDEX } from './log-store.js';
import type { StoreHealth } from './store-health.js';
import { TailCache } from './tail-cache.js';
import { TermIndex } from './term-index.js';
import { decodeMembership, type Membership } from './members.js';
import { upgradeToVersionedValues, VERSIONED_VALUES_FORMAT } from './upgrade-values.js';

/** Log entries decoded per iterator step while loading the log on open. */
const LOAD_CHUNK = 1024;

export interface OpenOptions {
  readonly clusterId: string;
  readonly nodeId: NodeId;
  readonly voters: readonly NodeId[];
  readonly cacheBytes: number;
  readonly logger?: Logger;
  /**
   * Where a NEW data dir keeps its Raft log: in segment files (format 4) or in LevelDB (format 3).
   * An existing dir keeps where it has it, whatever this says.
   */
  readonly logInFiles?: boolean;
  /** The store's health: the segment files mark it failed on an I/O error. */
  readonly health: StoreHealth;
  /** The size of each segment file (tests use small ones). */
  readonly segmentBytes?: number;
}

/** Everything loaded (and validated) from disk on open. */
export interface LoadedState {
  readonly hardState: HardState;
  readonly applied: AppliedState;
  /** The entry the log starts after ((0, 0) for a log never compacted). */
  readonly logStart: LogPosition;
  /** The latest snapshot point recorded (index 0: none). */
  readonly snapshot: SnapshotMeta;
  /** The state machine's generation (database.ts kvName). */
  readonly generation: number;
  /** The membership stored with the state machine; null in a dir that predates membership (or is new). */
  readonly membership: Membership | null;
  readonly terms: TermIndex;
  readonly cache: TailCache;
  /** The segment files of a format-4 dir, open; null when the log is in LevelDB. */
  readonly files: FileLog | null;
}

/**
 * Opens the database at `location` (creating an empty data dir if there is none), checks it is this
 * node's, loads and validates it. The database is closed again if anything is refused.
 */
export async function openDataDir(
  location: string,
  options: OpenOptions,
): Promise<{ handles: Database; loaded: LoadedState }> {
  await prepareDataDir(location, options.nodeId);
  let handles: Database;
  try {
    handles = await openDatabase(location);
  } catch (error) {
    throw refusalForOpenError(location, options.nodeId, error);
  }
  try {
    const { format, started } = await checkIdentity(handles, location, options);
    let loaded: LoadedState;
    try {
      loaded = await loadState(handles, location, options, format === LOG_FILES_FORMAT, started);
    } catch (error) {
      await started?.log.close().catch(() => undefined);
      throw error;
    }
    try {
      validateLoadedState(loaded);
    } catch (error) {
      await loaded.files?.close().catch(() => undefined);
      throw error;
    }
    return { handles, loaded };
  } catch (error) {
    await handles.db.close().catch(() => undefined);
    throw refusalForLoadError(location, options.nodeId, error);
  }
}

/**
 * The data dir must be this node's, in this cluster, in a format this build reads. A dir without an
 * identity is initialized only when it holds no data at all. Returns the dir's format after any
 * upgrade: LOG_FILES_FORMAT when it keeps its log in segment files, else STORAGE_FORMAT.
 */
async function checkIdentity(
  handles: Database,
  location: string,
  options: OpenOptions,
): Promise<{ format: number; started: OpenedFileLog | null }> {
  const { clusterId, nodeId } = options;
  const stored = handles.meta.getSync(META_IDENTITY);
  if (stored === undefined) {
    if (await holdsAnyKey(handles)) {
      throw new StorageRefusedError(
        `data dir ${location} holds a LevelDB database but no raftkv identity: it is not a raftkv data dir, or it ` +
          `was damaged. Point --data-dir at ${nodeId}'s data dir, or, if this is ${nodeId}'s damaged dir, ` +
          restoreOwnDataAdvice(nodeId),
      );
    }
    const format = options.logInFiles === true ? LOG_FILES_FORMAT : STORAGE_FORMAT;
    const started = format === LOG_FILES_FORMAT ? await startLogFiles(location, options) : null;
    try {
      await handles.db.batch([putOp(handles.meta, META_IDENTITY, encodeIdentity({ clusterId, nodeId, format }))], {
        sync: true,
      });
    } catch (error) {
      await started?.log.close().catch(() => undefined);
      throw error;
    }
    options.logger?.info({ location, clusterId, nodeId, format }, 'initialized an empty data dir');
    return { format, started };
  }
  const identity = decodeIdentity(stored);
  if (identity.format === LOG_FILES_FORMAT) {
    // The log in files: this dir stays so (moving a format-4 dir back to LevelDB is not built).
    if (identity.clusterId === clusterId && identity.nodeId === nodeId)
      return { format: LOG_FILES_FORMAT, started: null };
  } else if (identity.format > STORAGE_FORMAT) {
    throw new StorageRefusedError(
      `data dir ${location} is in storage format ${identity.format}, written by a newer raftkv; this build reads ` +
        `format ${STORAGE_FORMAT} (and ${LOG_FILES_FORMAT} with the log in files) and will not downgrade it: run a ` +
        `raftkv release that supports format ${identity.format}`,
    );
  }
  if (identity.clusterId !== clusterId || identity.nodeId !== nodeId) {
    const otherCluster =
      identity.clusterId === clusterId
        ? ''
        : ` (first make sure cluster ${identity.clusterId} no longer needs this data)`;
    throw new StorageRefusedError(
      `data dir ${location} belongs to node ${identity.nodeId} of cluster ${identity.clusterId}, not ${nodeId} of ` +
        `${clusterId}: point --data-dir at ${nodeId}'s directory; if ${nodeId}'s data is lost, ${restoreOwnDataAdvice(nodeId)}${otherCluster}`,
    );
  }
  if (identity.format < VERSIONED_VALUES_FORMAT) {
    // Values gain their key metadata; the same batch that switches to the upgraded copy marks the dir.
    await upgradeToVersionedValues(handles, identity, {
      location,
      ...(options.logger ? { logger: options.logger } : {}),
    });
    return { format: STORAGE_FORMAT, started: null };
  }
  if (identity.format < STORAGE_FORMAT) {
    // Every older format reads as this one (codec.ts says how); mark the dir, so older builds, which
    // could not read what this one writes (a compacted log), refuse it.
    await handles.db.batch(
      [putOp(handles.meta, META_IDENTITY, encodeIdentity({ ...identity, format: STORAGE_FORMAT }))],
      { sync: true },
    );
    options.logger?.info({ location, from: identity.format, to: STORAGE_FORMAT }, 'upgraded the data dir format');
  }
  return { format: STORAGE_FORMAT, started: null };
}

async function holdsAnyKey(handles: Database): Promise<boolean> {
  const iterator = handles.db.keys({ limit: 1 });
  try {
    return (await iterator.nextv(1)).length > 0;
  } finally {
    await iterator.close();
  }
}

async function loadState(
  handles: Database,
  location: string,
  options: OpenOptions,
  logInFiles: boolean,
  started: OpenedFileLog | null,
): Promise<LoadedState> {
  const hardStateBytes = handles.meta.getSync(META_HARDSTATE);
  const appliedBytes = handles.sm.getSync(SM_APPLIED);
  const logStartBytes = handles.meta.getSync(META_LOGSTART);
  const snapshotBytes = handles.meta.getSync(META_SNAPSHOT);
  const generationBytes = handles.sm.getSync(SM_GENERATION);
  const hardState = hardStateBytes === undefined ? EMPTY_HARD_STATE : decodeHardState(hardStateBytes);
  const applied = appliedBytes === undefined ? { index: 0, term: 0 } : decodeApplied(appliedBytes);
  const logStart =
    logStartBytes === undefined ? { index: 0, term: 0 } : decodeLogPosition(logStartBytes, 'the log start');
  const snapshot =
    snapshotBytes === undefined ? { index: 0, term: 0, voters: options.voters } : decodeSnapshotMeta(snapshotBytes);
  const generation = generationBytes === undefined ? 0 : decodeGeneration(generationBytes);
  const membersBytes = handles.sm.getSync(SM_MEMBERS);
  const membership = membersBytes === undefined ? null : decodeMembership(membersBytes, 'the membership record');
  const toldRemoved = handles.meta.getSync(META_REMOVED);
  if (membership?.removed.includes(options.nodeId) === true || toldRemoved !== undefined) {
    const by = toldRemoved === undefined ? '' : ` (${Buffer.from(toldRemoved).toString('utf8')} said so)`;
    throw new StorageRefusedError(
      `node ${options.nodeId} was removed from the cluster${by}: its data dir can never be used again (a removed member's ` +
        'vote and log no longer count, and it must not come back as itself). To bring this machine back, join it as a ' +
        'new member with a new id and an empty data dir (README.md, "Membership changes")',
    );
  }
  if (logInFiles) {
    const inFiles = await loadLogFiles(
      location,
      options,
      { index: snapshot.index, term: snapshot.term },
      applied,
      started,
    );
    // The commit is not written with the log in files: every applied entry was committed.
    const commit = applied.index <= inFiles.terms.lastIndex ? applied.index : 0;
    return { ...inFiles, hardState: { ...inFiles.hardState, commit }, applied, snapshot, generation, membership };
  }
  const { terms, cache } = await loadLog(handles.log, logStart, options.cacheBytes);
  // Entries that were applied were committed, so the commit is at least the applied index: a
  // commit-only Ready is written without fsync and can be lost while a later apply survives (and
  // data dirs of older builds applied while the Ready recording the commit was being persisted).
  // (An applied index beyond the log is not raised into the commit: validation refuses it.)
  const commit = applied.index <= terms.lastIndex ? Math.max(hardState.commit, applied.index) : hardState.commit;
  return {
    hardState: commit === hardState.commit ? hardState : { ...hardState, commit },
    applied,
    logStart,
    snapshot,
    generation,
    membership,
    terms,
    cache,
    files: null,
  };
}

/**
 * Opens the segment files of a format-4 dir (FileLog reconciles them with the snapshot point) and
 * loads the log they hold as loadLog does LevelDB's: the term index, the tail cache, and the term
 * and vote.
 */
async function loadLogFiles(
  location: string,
  options: OpenOptions,
  snapshot: LogPosition,
  applied: LogPosition,
  started: OpenedFileLog | null,
): Promise<{ hardState: HardState; logStart: LogPosition; terms: TermIndex; cache: TailCache; files: FileLog }> {
  // A new dir's files, opened by startLogFiles, are used as they are: opening them again would
  // delete the next segment it preallocated and write another segment of zeros.
  const { log: files, recovered } =
    started ?? (await FileLog.open(logFilesOptions(location, options, snapshot, applied, false)));
  // The replay built the term index and tail cache as it read (checking indices and terms, as
  // loadLog does), never holding the whole log.
  const hardState = {
    term: recovered.termVote?.term ?? 0,
    vote: recovered.termVote?.vote ?? EMPTY_HARD_STATE.vote,
    commit: 0,
  };
  return { hardState, logStart: recovered.start, terms: recovered.terms, cache: recovered.cache, files };
}

function logFilesOptions(
  location: string,
  options: OpenOptions,
  snapshot: LogPosition,
  applied: LogPosition,
  fresh: boolean,
): FileLogOptions {
  return {
    dir: path.join(location, LOG_FILES_DIR),
    clusterId: options.clusterId,
    nodeId: options.nodeId,
    health: options.health,
    snapshot,
    applied,
    fresh,
    advice: `To bring ${options.nodeId} back, ${restoreOwnDataAdvice(options.nodeId)}`,
    cacheBytes: options.cacheBytes,
    ...(options.segmentBytes === undefined ? {} : { segmentBytes: options.segmentBytes }),
  };
}

type OpenedFileLog = Awaited<ReturnType<typeof FileLog.open>>;

/**
 * A new format-4 dir's first segment, made before its identity is written: so a dir with an
 * identity always has one, and one without is refused (FileLogOptions.fresh). A crash before the
 * identity leaves a segment with nothing in it, which the next open reuses. The files stay open
 * for loadLogFiles.
 */
async function startLogFiles(location: string, options: OpenOptions): Promise<OpenedFileLog> {
  const origin = { index: 0, term: 0 };
  return FileLog.open(logFilesOptions(location, options, origin, origin, true));
}

/**
 * Reads the retained log once (the entries after the log start; compacted ones that a crash left
 * behind are skipped, and deleted later): every key and value is decoded, indices must be contiguous
 * from the log start and terms non-decreasing. This builds the term index (which needs every entry's
 * term anyway), so the full check costs nothing extra; the last entries stay in the tail cache.
 */
async function loadLog(
  log: ByteSublevel,
  logStart: LogPosition,
  cacheBytes: number,
): Promise<{ terms: TermIndex; cache: TailCache }> {
  const terms = new TermIndex(logStart.index + 1, logStart.term);
  const cache = new TailCache(cacheBytes);
  const iterator = log.iterator({ gt: logKey(logStart.index) });
  try {
    for (;;) {
      const chunk = await iterator.nextv(LOAD_CHUNK);
      if (chunk.length === 0) break;
      const entries = chunk.map(([key, value]) => {
        const index = indexOfLogKey(key);
        return decodeLogValue(index, value);
      });
      loadEntries(terms, cache, entries);
    }
  } finally {
    await iterator.close();
  }
  return { terms, cache };
}

/** The loaded pieces must agree with each other (log-store.ts and state-machine.ts state the invariants). */
function validateLoadedState(state: LoadedState): void {
  const { hardState, applied, terms } = state;
  const lastIndex = terms.lastIndex;
  const lastTerm = terms.lastTerm ?? 0;
  if (lastTerm > hardState.term) {
    throw new CorruptDataError(
      `the log's last entry ${lastIndex} has term ${lastTerm}, beyond the hard state's term ${hardState.term}`,
    );
  }
  if (hardState.commit > lastIndex) {
    throw new CorruptDataError(
      `the hard state commits entry ${hardState.commit}, but the log ends at entry ${lastIndex}: committed entries are lost`,
    );
  }
  if (applied.index > lastIndex) {
    throw new CorruptDataError(
      `the state machine applied entry ${applied.index}, but the log ends at entry ${lastIndex}`,
    );
  }
  if (applied.index < terms.baseIndex) {
    throw new CorruptDataError(
      `the state machine applied entry ${applied.index}, but the log was compacted up to entry ${terms.baseIndex}: the entries in between are lost`,
    );
  }
  if (applied.index >= FIRST_INDEX && terms.termAt(applied.index) !== applied.term) {
    throw new CorruptDataError(
      `the state machine applied entry ${applied.index} of term ${applied.term}, but the log's entry ${applied.index} has term ${terms.termAt(applied.index)}`,
    );
  }
  if (applied.index === 0 && applied.term !== 0) {
    throw new CorruptDataError(`the applied state names term ${applied.term} for entry 0`);
  }
}

function refusalForLoadError(location: string, nodeId: string, error: unknown): StorageRefusedError {
  if (error instanceof StorageRefusedError) return error;
  if (error instanceof CorruptDataError) {
    return new StorageRefusedError(
      `data dir ${location} is corrupt: ${error.message}. To bring ${nodeId} back, ${restoreOwnDataAdvice(nodeId)}`,
      { cause: error },
    );
  }
  return new StorageRefusedError(
    `cannot read data dir ${location} (${describeError(error)}): check the disk, its free space and the permissions`,
    { cause: error },
  );
}
