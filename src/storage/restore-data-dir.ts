// Writing a node's data dir that starts from a backup (`npm run restore`): the state machine of the
// backup in generation 0, and a log that is empty after the backup's point, as if the node had just
// installed that snapshot. NodeStorage opens it like any other data dir.
//
//   identity     {clusterId, nodeId, format: STORAGE_FORMAT, or LOG_FILES_FORMAT with the log in files}
//   hard state   {term: the backup's term, vote: none, commit: the backup's index}
//   log start    (index, term) = snapshot point = applied; no entries
//   kv           every pair of the backup
// With the log in files (format 4), the term and vote and the log's start are the segment files'
// (`raft-log/`): one segment that starts after the backup's point, as an install leaves it.
//
// Invariant: the identity (with the hard state, log start and applied index) is written LAST, in
// one synced batch, after every pair (and the log's segment) was written synced. A restore that
// stops half-way (killed, a full disk) leaves a database without an identity, which NodeStorage
// refuses to open: such a dir can never start as a node that holds part of the data, nor as an
// empty new node.

import fs from 'node:fs/promises';
import path from 'node:path';
import { confStateOf, encodeMembership, type Member } from './members.js';
import { NONE, type NodeId } from '../raft/types.js';
import {
  META_HARDSTATE,
  META_IDENTITY,
  META_LOGSTART,
  META_SNAPSHOT,
  SM_APPLIED,
  SM_MEMBERS,
  SM_GENERATION,
  LOG_FILES_DIR,
  LOG_FILES_FORMAT,
  STORAGE_FORMAT,
  encodeApplied,
  encodeGeneration,
  encodeHardState,
  encodeIdentity,
  encodeLogPosition,
  encodeSnapshotMeta,
} from './codec.js';
import { openDatabase, openKv, putOp, type ByteSublevel, type Database } from './database.js';
import { StorageRefusedError, describeError } from './errors.js';
import { FileLog } from './log-file/file-log.js';
import { StoreHealth } from './store-health.js';

/** The generation a restored state machine lives in (database.ts kvName: the sublevel `kv`). */
const RESTORED_GENERATION = 0;

/** Where the restored node starts: the backup's point, in the cluster it is restored into. */
export interface RestorePoint {
  readonly clusterId: string;
  readonly index: number;
  readonly term: number;
  /** The members the restored cluster starts with (the config's nodes, all voters). */
  readonly members: readonly Member[];
}

/** Names in a directory that do not make it "in use" (a mount point's lost+found, hidden files). */
function counts(name: string): boolean {
  return name !== 'lost+found' && !name.startsWith('.');
}

/**
 * Refuses (StorageRefusedError) unless `location` is missing or an empty directory: a restore never
 * writes over anything, least of all a node's existing data.
 */
export async function assertRestorable(location: string): Promise<void> {
  let names: string[];
  try {
    names = await fs.readdir(location);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return;
    if (code === 'ENOTDIR')
      throw new StorageRefusedError(
        `${location} exists and is not a directory: move it away, then run the restore again`,
      );
    throw new StorageRefusedError(
      `cannot read ${location} (${describeError(error)}): check the path and its permissions`,
      { cause: error },
    );
  }
  const used = names.filter(counts);
  if (used.length > 0) {
    const shown = used.slice(0, 3).join(', ') + (used.length > 3 ? ', ...' : '');
    throw new StorageRefusedError(
      `data dir ${location} is not empty (it holds ${shown}): a restore only writes into a missing or empty directory. ` +
        'Move it away (keep it until the restored cluster is known good), then run the restore again',
    );
  }
}

/** A data dir being written from a backup: `write` every pair, then `finish`; or `abandon`. */
export class RestoredDataDir {
  private closed = false;
  private removed = false;

  private constructor(
    readonly location: string,
    private readonly nodeId: NodeId,
    private readonly handles: Database,
    private readonly kv: ByteSublevel,
    /** Whether this restore created the directory (abandon removes it) or found it empty (abandon empties it). */
    private readonly created: boolean,
    private readonly existing: ReadonlySet<string>,
    private readonly logInFiles: boolean,
  ) {}

  /**
   * Creates the database at `location` (missing or empty: assertRestorable) for node `nodeId`;
   * `logInFiles`: the dir keeps its Raft log in segment files (format 4), as a node makes a new dir.
   */
  static async create(location: string, nodeId: NodeId, logInFiles: boolean): Promise<RestoredDataDir> {
    await assertRestorable(location);
    // What was there before (an empty dir may hold lost+found or hidden files); null: no dir yet.
    let existing: string[] | null;
    try {
      existing = await fs.readdir(location);
    } catch {
      existing = null;
    }
    try {
      await fs.mkdir(location, { recursive: true });
    } catch (error) {
      throw new StorageRefusedError(
        `cannot create data dir ${location} (${describeError(error)}): check the path and its permissions`,
        { cause: error },
      );
    }
    let handles: Database;
    try {
      handles = await openDatabase(location);
    } catch (error) {
      if (existing === null) await fs.rm(location, { recursive: true, force: true });
      throw new StorageRefusedError(
        `cannot create a LevelDB database in ${location} (${describeError(error)}): check the disk and its free space`,
        {
          cause: error,
        },
      );
    }
    const kv = await openKv(handles.db, RESTORED_GENERATION);
    return new RestoredDataDir(location, nodeId, handles, kv, existing === null, new Set(existing ?? []), logInFiles);
  }

  /** Writes pairs of the state machine, synced (a later synced batch does not cover an unsynced one: ARCHITECTURE.md). */
  async write(pairs: readonly (readonly [Uint8Array, Uint8Array])[]): Promise<void> {
    if (pairs.length === 0) return;
    await this.handles.db.batch(
      pairs.map(([key, value]) => putOp(this.kv, key, value)),
      { sync: true },
    );
  }

  /** Every pair is written: one synced batch makes the dir a node's, starting at `point`; then closes it. */
  async finish(point: RestorePoint): Promise<void> {
    const { meta, sm } = this.handles;
    const position = { index: point.index, term: point.term };
    if (this.logInFiles) await this.startLogFiles(point);
    const format = this.logInFiles ? LOG_FILES_FORMAT : STORAGE_FORMAT;
    await this.handles.db.batch(
      [
        putOp(meta, META_IDENTITY, encodeIdentity({ clusterId: point.clusterId, nodeId: this.nodeId, format })),
        // With the log in files, the files hold these (startLogFiles).
        ...(this.logInFiles
          ? []
          : [
              putOp(meta, META_HARDSTATE, encodeHardState({ term: point.term, vote: NONE, commit: point.index })),
              putOp(meta, META_LOGSTART, encodeLogPosition(position)),
            ]),
        putOp(
          meta,
          META_SNAPSHOT,
          encodeSnapshotMeta({ ...position, ...confStateOf({ members: point.members, removed: [] }) }),
        ),
        putOp(sm, SM_APPLIED, encodeApplied(position)),
        putOp(sm, SM_MEMBERS, encodeMembership({ members: point.members, removed: [] })),
        putOp(sm, SM_GENERATION, encodeGeneration(RESTORED_GENERATION)),
      ],
      { sync: true },
    );
    this.closed = true;
    await this.handles.db.close();
  }

  /**
   * The log's segment files: one segment after the backup's point (FileLog starts a new dir's log
   * after its snapshot point), then the backup's term with no vote, synced, as the hard state
   * says in a format-3 dir.
   */
  private async startLogFiles(point: RestorePoint): Promise<void> {
    const dir = path.join(this.location, LOG_FILES_DIR);
    const position = { index: point.index, term: point.term };
    const { log } = await FileLog.open({
      dir,
      clusterId: point.clusterId,
      nodeId: this.nodeId,
      health: new StoreHealth(dir),
      snapshot: position,
      applied: position,
      fresh: true,
      advice: 'Run the restore again',
      cacheBytes: 0,
    });
    try {
      await log.append({ term: point.term, vote: NONE }, []);
    } finally {
      await log.close();
    }
  }

  /**
   * Gives up: closes the database and removes what this restore wrote (the directory, if it made
   * it). Also after `finish`: a restore of several nodes that fails on one removes them all, so
   * running it again finds every dir as it was.
   */
  async abandon(): Promise<void> {
    if (this.removed) return;
    this.removed = true;
    if (!this.closed) {
      this.closed = true;
      await this.handles.db.close().catch(() => undefined);
    }
    if (this.created) {
      await fs.rm(this.location, { recursive: true, force: true });
      return;
    }
    for (const name of await fs.readdir(this.location)) {
      if (!this.existing.has(name)) await fs.rm(path.join(this.location, name), { recursive: true, force: true });
    }
  }
}
