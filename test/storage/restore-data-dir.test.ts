// Data dirs restored from a backup (src/storage/restore-data-dir.ts): a node's state as a backup
// file, read back and written into a fresh data dir, opens with NodeStorage at the backup's point
// (applied, log start, hard state, every pair) and goes on from there; a restore never writes over
// anything, and one abandoned half-way removes what it wrote.
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Entry } from '../../src/raft/types.js';
import { backupFilePieces, readBackupFile } from '../../src/snapshot/backup-file.js';
import { StorageRefusedError } from '../../src/storage/errors.js';
import type { NodeStorage } from '../../src/storage/node-storage.js';
import { RestoredDataDir, assertRestorable } from '../../src/storage/restore-data-dir.js';
import { encodeCommand } from '../../src/storage/state-machine.js';
import { CLUSTER, bytes, entry, text, useStorageFixture } from './helpers.js';

const fixture = useStorageFixture();
const VOTERS = ['n1', 'n2', 'n3'];
const MEMBERS = VOTERS.map((id, i) => ({
  id,
  clientUrl: `http://127.0.0.1:${7001 + i}`,
  peerUrl: `http://127.0.0.1:${7101 + i}`,
  role: 'voter' as const,
}));

function put(key: string, value: string): Uint8Array {
  return encodeCommand({ op: 'put', key: bytes(key), value: bytes(value) });
}

/** A node's storage that applied puts k1..k60 (1..50 in term 1, 51..60 in term 2), deleted k7, and compacted its log. */
async function sourceStorage(): Promise<NodeStorage> {
  const storage = await fixture.open(await fixture.tempDir());
  const first = Array.from({ length: 50 }, (_, i) => entry(i + 1, 1, put(`k${i + 1}`, `v${i + 1}`)));
  await storage.writeReady({ term: 1, vote: 'n1', commit: 50 }, first, first);
  const second: Entry[] = Array.from({ length: 10 }, (_, i) => entry(i + 51, 2, put(`k${i + 51}`, `v${i + 51}`)));
  second.push(entry(61, 2, encodeCommand({ op: 'delete', key: bytes('k7') })));
  await storage.writeReady({ term: 2, vote: 'n2', commit: 61 }, second, second);
  await storage.compactLog(40);
  return storage;
}

async function allPairs(storage: NodeStorage): Promise<[string, string][]> {
  const source = await storage.openSnapshotSource();
  const out: [string, string][] = [];
  try {
    for (let pairs = await source.next(1000); pairs !== null; pairs = await source.next(1000)) {
      for (const [k, v] of pairs) out.push([text(k)!, text(v)!]);
    }
  } finally {
    await source.close();
  }
  return out;
}

/** `storage`'s state as a backup file (what GET /backup sends). */
async function backupOf(storage: NodeStorage): Promise<string> {
  const file = path.join(await fixture.tempDir(), 'backup.snap');
  const source = await storage.openSnapshotSource();
  const parts: Uint8Array[] = [];
  try {
    for await (const piece of backupFilePieces(source, { clusterId: CLUSTER })) parts.push(piece);
  } finally {
    await source.close();
  }
  await fs.writeFile(file, Buffer.concat(parts));
  return file;
}

/** Restores `file` into `location` for `nodeId`, as the restore CLI does. */
async function restore(
  file: string,
  location: string,
  nodeId: string,
  logInFiles: boolean,
): Promise<{ index: number; term: number }> {
  const dir = await RestoredDataDir.create(location, nodeId, logInFiles);
  const { header } = await readBackupFile(file, (pairs) => dir.write(pairs));
  await dir.finish({ clusterId: CLUSTER, index: header.index, term: header.term, members: MEMBERS });
  return header;
}

describe.each([false, true])('restoring a data dir from a backup (the log in files: %s)', (logInFiles) => {
  it('opens with NodeStorage at the backup point: applied, log start, hard state, snapshot point and every pair', async () => {
    const source = await sourceStorage();
    const file = await backupOf(source);
    const location = path.join(await fixture.tempDir(), 'n2');
    expect(await restore(file, location, 'n2', logInFiles)).toMatchObject({ index: 61, term: 2 });

    const restored = await fixture.open(location, { nodeId: 'n2' });
    // The dir's format decides where the log is, whatever the options say.
    expect(restored.logInFiles).toBe(logInFiles);
    expect(restored.applied).toEqual({ index: 61, term: 2 });
    expect(restored.firstIndex()).toBe(62);
    expect(restored.lastIndex()).toBe(61);
    expect(restored.term(61)).toBe(2);
    expect(restored.initialHardState()).toEqual({ term: 2, vote: '', commit: 61 });
    expect(restored.snapshotMeta()).toEqual({ index: 61, term: 2, voters: VOTERS, learners: [] });
    expect(restored.latestSnapshot()).toEqual({ index: 61, term: 2, voters: VOTERS, learners: [] });
    const pairs = await allPairs(restored);
    expect(pairs).toEqual(await allPairs(source));
    expect(pairs).toHaveLength(59);
    expect(restored.getSync(bytes('k7'))).toBeUndefined();
    expect(text(restored.getSync(bytes('k60')))).toBe('v60');
  });

  it('goes on from there: a leader of a later term appends and applies after the backup point, and it survives a reopen', async () => {
    const file = await backupOf(await sourceStorage());
    const location = path.join(await fixture.tempDir(), 'n3');
    await restore(file, location, 'n3', logInFiles);
    let restored = await fixture.open(location, { nodeId: 'n3' });
    const next = [entry(62, 3), entry(63, 3, put('after', 'restore'))];
    await restored.writeReady({ term: 3, vote: 'n1', commit: 63 }, next, next);
    restored = await fixture.reopen(restored, { nodeId: 'n3' });
    expect(restored.applied).toEqual({ index: 63, term: 3 });
    expect(restored.firstIndex()).toBe(62);
    expect(text(restored.getSync(bytes('after')))).toBe('restore');
    expect(text(restored.getSync(bytes('k1')))).toBe('v1');
    expect(restored.initialHardState()).toMatchObject({ term: 3, vote: 'n1' });
  });
});

describe('restoring a data dir from a backup', () => {
  it.each([false, true])(
    "the dir is the named node's: another node id refuses it (the log in files: %s)",
    async (logInFiles) => {
      const file = await backupOf(await sourceStorage());
      const location = path.join(await fixture.tempDir(), 'n2');
      await restore(file, location, 'n2', logInFiles);
      await expect(fixture.open(location, { nodeId: 'n3' })).rejects.toThrow(/belongs to node n2/);
    },
  );

  it.each([false, true])(
    'an empty state machine restores too (a backup of a cluster that applied nothing yet; the log in files: %s)',
    async (logInFiles) => {
      const empty = await fixture.open(await fixture.tempDir());
      const file = await backupOf(empty);
      const location = path.join(await fixture.tempDir(), 'n2');
      await restore(file, location, 'n2', logInFiles);
      const restored = await fixture.open(location, { nodeId: 'n2' });
      expect(restored.applied).toEqual({ index: 0, term: 0 });
      expect(restored.firstIndex()).toBe(1);
    },
  );

  it('never writes over anything: a file in the way or a non-empty dir is refused, and left as it was', async () => {
    const parent = await fixture.tempDir();
    const used = path.join(parent, 'used');
    await fs.mkdir(used);
    await fs.writeFile(path.join(used, 'CURRENT'), 'MANIFEST-000001\n');
    await expect(RestoredDataDir.create(used, 'n1', false)).rejects.toThrow(StorageRefusedError);
    await expect(assertRestorable(used)).rejects.toThrow(/is not empty \(it holds CURRENT\).*Move it away/);
    expect(await fs.readdir(used)).toEqual(['CURRENT']);
    const aFile = path.join(parent, 'file');
    await fs.writeFile(aFile, 'x');
    await expect(assertRestorable(aFile)).rejects.toThrow(/not a directory/);
    // Missing, empty, or holding only what a mount point or a placeholder leaves: fine.
    await assertRestorable(path.join(parent, 'missing', 'deeper'));
    const mount = path.join(parent, 'mount');
    await fs.mkdir(path.join(mount, 'lost+found'), { recursive: true });
    await fs.writeFile(path.join(mount, '.keep'), '');
    await assertRestorable(mount);
  });

  it('an abandoned restore removes what it wrote: the dir it made, or the files it added to an empty one', async () => {
    const source = await sourceStorage();
    const parent = await fixture.tempDir();
    const made = path.join(parent, 'made', 'n1');
    const dir = await RestoredDataDir.create(made, 'n1', false);
    await dir.write([[bytes('a'), bytes('1')]]);
    await dir.abandon();
    await expect(fs.stat(made)).rejects.toThrow(/ENOENT/);

    const mount = path.join(parent, 'mount');
    await fs.mkdir(path.join(mount, 'lost+found'), { recursive: true });
    // With the log in files: its segment files go too.
    const again = await RestoredDataDir.create(mount, 'n1', true);
    await again.write([[bytes('a'), bytes('1')]]);
    await again.finish({ clusterId: CLUSTER, index: 61, term: 2, members: MEMBERS });
    // A restore of several nodes that fails on a later one removes the finished ones too.
    await again.abandon();
    expect(await fs.readdir(mount)).toEqual(['lost+found']);
    expect(source.applied.index).toBe(61);
  });
});
