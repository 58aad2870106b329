// Opening a data dir: identity, refusals with messages an operator can act on, and open-time
// validation of everything loaded from disk.
import fs from 'node:fs/promises';
import path from 'node:path';
import { ClassicLevel } from 'classic-level';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { refusalForOpenError } from '../../src/storage/data-dir.js';
import type { NodeStorage } from '../../src/storage/node-storage.js';
import { LOG_FILES_FORMAT, STORAGE_FORMAT } from '../../src/storage/codec.js';
import { encodeCommand } from '../../src/storage/command.js';
import { StorageRefusedError } from '../../src/storage/errors.js';
import { LEGACY_META } from '../../src/storage/key-meta.js';
import { CLUSTER, bytes, entriesFrom, entry, rawLogKey, useStorageFixture, withRawSublevel } from './helpers.js';

const fixture = useStorageFixture();
const packr = new Packr({ useRecords: true });

/** The refusal `open` fails with (the test fails if it opens). */
async function refusal(open: Promise<NodeStorage>): Promise<StorageRefusedError> {
  const error: unknown = await open.then(
    async (storage) => {
      await storage.close();
      return new Error('the data dir was not refused');
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(StorageRefusedError);
  return error as StorageRefusedError;
}

/**
 * A refusal never suggests wiping a voter's data dir or bringing it back empty: an empty voter can
 * grant a vote it already gave and help elect a leader that lacks committed entries (acknowledged
 * writes lost). It points to the safe ways: the node's own data back, and the README section.
 */
function expectSafeAdvice(message: string, nodeId: string): void {
  expect(message).not.toMatch(/\b(delete|remove|wipe|erase|rm)\b/i);
  expect(message).not.toMatch(/\bstart\w*\b[^.]*\bempty\b/i);
  expect(message).toContain(`restore ${nodeId}'s own data dir from a backup of it, or from a copy of ${nodeId}'s disk`);
  expect(message).toContain(`Never bring ${nodeId} back with an empty data dir`);
  expect(message).toContain('"A node that lost its data"');
}

/** A data dir of n1 with a committed, applied log, closed again. */
async function populatedDir(): Promise<string> {
  const dir = await fixture.tempDir();
  const storage = await fixture.open(dir);
  await storage.persist({ term: 2, vote: 'n1', commit: 3 }, entriesFrom(1, [1, 2, 2, 2]));
  await storage.applyEntries(entriesFrom(1, [1, 2]).map((e) => ({ ...e, data: new Uint8Array(0) })));
  await storage.close();
  return dir;
}

describe('data dir identity', () => {
  it('writes the identity into a new data dir, creating missing parents', async () => {
    const dir = path.join(await fixture.tempDir(), 'nested', 'n1');
    const storage = await fixture.open(dir);
    expect(storage.location).toBe(dir);
    await storage.close();
    await withRawSublevel(dir, 'meta', async (meta) => {
      const identity: unknown = packr.unpack(meta.getSync(bytes('identity')) ?? new Uint8Array(0));
      expect(identity).toEqual({ clusterId: CLUSTER, nodeId: 'n1', format: STORAGE_FORMAT });
    });
    const again = await fixture.open(dir);
    expect(again.lastIndex()).toBe(0);
  });

  it('resolves a relative data dir once and exposes it as `location`', async () => {
    const dir = await fixture.tempDir();
    const relative = path.relative(process.cwd(), dir);
    const storage = await fixture.open(relative);
    expect(storage.location).toBe(path.resolve(relative));
    expect(path.isAbsolute(storage.location)).toBe(true);
  });

  it("refuses another node's data dir, naming both nodes and what to do", async () => {
    const dir = await populatedDir();
    const error = await refusal(fixture.open(dir, { nodeId: 'n2' }));
    expect(error.message).toContain(`data dir ${dir} belongs to node n1 of cluster ${CLUSTER}, not n2 of ${CLUSTER}`);
    expect(error.message).toContain("point --data-dir at n2's directory");
    expectSafeAdvice(error.message, 'n2');
  });

  it("refuses another cluster's data dir, naming both clusters", async () => {
    const dir = await populatedDir();
    const error = await refusal(fixture.open(dir, { clusterId: 'other' }));
    expect(error.message).toContain(`belongs to node n1 of cluster ${CLUSTER}, not n1 of other`);
    expect(error.message).toContain(`cluster ${CLUSTER} no longer needs this data`);
    expectSafeAdvice(error.message, 'n1');
  });

  it('refuses a data dir written in a newer format', async () => {
    const dir = await populatedDir();
    await withRawSublevel(dir, 'meta', (meta) =>
      meta.put(bytes('identity'), packr.pack({ clusterId: CLUSTER, nodeId: 'n1', format: LOG_FILES_FORMAT + 1 })),
    );
    const error = await refusal(fixture.open(dir));
    expect(error.message).toContain(
      `format ${LOG_FILES_FORMAT + 1}, written by a newer raftkv; this build reads format ${STORAGE_FORMAT} (and ${LOG_FILES_FORMAT} with the log in files)`,
    );
  });

  it('a data dir keeps its log where it was made to, whatever a later start asks for a new dir', async () => {
    const inLevelDb = await populatedDir();
    const levelDb = await fixture.open(inLevelDb, { logInFiles: true });
    expect(levelDb.logInFiles).toBe(false);
    await levelDb.close();
    const inFiles = await fixture.tempDir();
    await fixture.open(inFiles, { logInFiles: true }).then((storage) => storage.close());
    const files = await fixture.open(inFiles);
    expect(files.logInFiles).toBe(true);
    await files.close();
    // Another node's format-4 dir is refused as any other node's is.
    const other = await refusal(fixture.open(inFiles, { nodeId: 'n2' }));
    expect(other.message).toContain('belongs to node n1');
  });

  for (const format of [1, 2]) {
    it(`upgrades a format-${format} data dir: its values gain legacy key metadata, in a new generation, and the dir is marked format ${STORAGE_FORMAT}`, async () => {
      const dir = await populatedDir();
      // What a build before versioned keys left: values as the client wrote them, in generation 0.
      await withRawSublevel(dir, 'meta', (meta) =>
        meta.put(bytes('identity'), packr.pack({ clusterId: CLUSTER, nodeId: 'n1', format })),
      );
      await withRawSublevel(dir, 'kv', async (kv) => {
        await kv.put(bytes('old/a'), bytes('A'));
        await kv.put(bytes('old/b'), new Uint8Array(0));
      });
      const storage = await fixture.open(dir);
      expect(storage.firstIndex()).toBe(1);
      expect(storage.lastIndex()).toBeGreaterThan(0);
      expect(storage.getEntrySync(bytes('old/a'))).toEqual({ meta: LEGACY_META, value: bytes('A') });
      expect(storage.getEntrySync(bytes('old/b'))).toEqual({ meta: LEGACY_META, value: new Uint8Array(0) });
      // A legacy put in the log (proposed by the old build) gives the same metadata; a new one counts on.
      const legacy = encodeCommand({ op: 'put', key: bytes('old/a'), value: bytes('A2'), legacy: true });
      const current = encodeCommand({ op: 'put', key: bytes('old/b'), value: bytes('B2') });
      const next = [entry(5, 2, legacy), entry(6, 2, current)];
      await storage.writeReady({ term: 2, vote: 'n1', commit: 6 }, next, [
        ...entriesFrom(3, [2, 2]).map((e) => ({ ...e, data: new Uint8Array(0) })),
        ...next,
      ]);
      expect(storage.getEntrySync(bytes('old/a'))).toEqual({ meta: LEGACY_META, value: bytes('A2') });
      expect(storage.getEntrySync(bytes('old/b'))?.meta).toEqual({ createIndex: 0, modIndex: 6, version: 2 });
      await storage.close();
      await withRawSublevel(dir, 'meta', async (meta) => {
        expect(packr.unpack(meta.getSync(bytes('identity')) ?? new Uint8Array(0))).toMatchObject({
          format: STORAGE_FORMAT,
        });
      });
      // The old generation is gone; the upgrade does not run again.
      await withRawSublevel(dir, 'kv', async (kv) => expect(await kv.keys().all()).toEqual([]));
      const again = await fixture.open(dir);
      expect(again.getEntrySync(bytes('old/a'))).toEqual({ meta: LEGACY_META, value: bytes('A2') });
    });
  }

  it('an upgrade interrupted by a crash is done again from the start on the next open', async () => {
    const dir = await populatedDir();
    await withRawSublevel(dir, 'meta', (meta) =>
      meta.put(bytes('identity'), packr.pack({ clusterId: CLUSTER, nodeId: 'n1', format: 2 })),
    );
    await withRawSublevel(dir, 'kv', (kv) => kv.put(bytes('k'), bytes('v')));
    // Half a copy in the next generation, with a stray key no real copy would hold.
    await withRawSublevel(dir, 'kv1', (kv) => kv.put(bytes('stray'), bytes('x')));
    const storage = await fixture.open(dir);
    expect(storage.getEntrySync(bytes('k'))).toEqual({ meta: LEGACY_META, value: bytes('v') });
    expect(storage.getSync(bytes('stray'))).toBeUndefined();
  });

  it('refuses a LevelDB database without an identity', async () => {
    const dir = await fixture.tempDir();
    await withRawSublevel(dir, 'kv', (kv) => kv.put(bytes('k'), bytes('v')));
    const error = await refusal(fixture.open(dir));
    expect(error.message).toContain('holds a LevelDB database but no raftkv identity');
    expectSafeAdvice(error.message, 'n1');
  });

  it('initializes a LevelDB database that holds no data at all', async () => {
    const dir = await fixture.tempDir();
    await withRawSublevel(dir, 'kv', async () => undefined);
    const storage = await fixture.open(dir);
    expect(storage.lastIndex()).toBe(0);
  });
});

describe('corrupt or inconsistent data on disk is refused at open', () => {
  const garbage = bytes('\u00c1 not msgpack at all');
  const cases: [string, (dir: string) => Promise<void>, RegExp][] = [
    [
      'garbage in meta/hardstate',
      (dir) => withRawSublevel(dir, 'meta', (m) => m.put(bytes('hardstate'), garbage)),
      /hard state is not valid msgpack/,
    ],
    [
      'a hard state of the wrong shape',
      (dir) =>
        withRawSublevel(dir, 'meta', (m) => m.put(bytes('hardstate'), packr.pack({ term: -1, vote: 'n1', commit: 3 }))),
      /hard state has an invalid "term"/,
    ],
    [
      'garbage in meta/identity',
      (dir) => withRawSublevel(dir, 'meta', (m) => m.put(bytes('identity'), garbage)),
      /identity is not valid msgpack/,
    ],
    [
      'garbage in sm/applied',
      (dir) => withRawSublevel(dir, 'sm', (sm) => sm.put(bytes('applied'), garbage)),
      /applied state is not valid msgpack/,
    ],
    [
      'garbage in a log entry',
      (dir) => withRawSublevel(dir, 'log', (log) => log.put(rawLogKey(3), garbage)),
      /log entry 3 is not valid msgpack/,
    ],
    [
      'a log key of the wrong size',
      (dir) => withRawSublevel(dir, 'log', (log) => log.put(bytes('x'), garbage)),
      /log key of 1 bytes/,
    ],
    [
      'a hole in the log',
      (dir) => withRawSublevel(dir, 'log', (log) => log.del(rawLogKey(2))),
      /log entries 2\.\.2 are missing/,
    ],
    [
      'a log that does not start at 1',
      (dir) => withRawSublevel(dir, 'log', (log) => log.del(rawLogKey(1))),
      /the log starts at entry 2, but there is no snapshot/,
    ],
    [
      'a term going down in the log',
      (dir) =>
        withRawSublevel(dir, 'log', (log) =>
          log.put(rawLogKey(4), packr.pack({ term: 1, type: 0, data: new Uint8Array(0) })),
        ),
      /log entry 4 has term 1, below term 2/,
    ],
    [
      'a commit beyond the log',
      (dir) =>
        withRawSublevel(dir, 'meta', (m) => m.put(bytes('hardstate'), packr.pack({ term: 2, vote: 'n1', commit: 9 }))),
      /commits entry 9, but the log ends at entry 4/,
    ],
    [
      "a log term beyond the hard state's term",
      (dir) =>
        withRawSublevel(dir, 'meta', (m) => m.put(bytes('hardstate'), packr.pack({ term: 1, vote: 'n1', commit: 3 }))),
      /has term 2, beyond the hard state's term 1/,
    ],
    [
      'applied beyond the log',
      (dir) => withRawSublevel(dir, 'sm', (sm) => sm.put(bytes('applied'), packr.pack({ index: 5, term: 2 }))),
      /applied entry 5, but the log ends at entry 4/,
    ],
    [
      'an applied term that disagrees with the log',
      (dir) => withRawSublevel(dir, 'sm', (sm) => sm.put(bytes('applied'), packr.pack({ index: 2, term: 1 }))),
      /applied entry 2 of term 1, but the log's entry 2 has term 2/,
    ],
  ];

  it.each(cases)('%s', async (_name, damage, detail) => {
    const dir = await populatedDir();
    await damage(dir);
    const error = await refusal(fixture.open(dir));
    expect(error.message).toContain(`data dir ${dir} is corrupt: `);
    expect(error.message).toMatch(detail);
    expectSafeAdvice(error.message, 'n1');
  });
});

describe('unusable paths are refused', () => {
  it('a path that is a file', async () => {
    const file = path.join(await fixture.tempDir(), 'data');
    await fs.writeFile(file, 'x');
    const error = await refusal(fixture.open(file));
    expect(error.message).toContain(`data dir ${file} exists but is not a directory`);
  });

  it('a path beneath a file', async () => {
    const file = path.join(await fixture.tempDir(), 'file');
    await fs.writeFile(file, 'x');
    const error = await refusal(fixture.open(path.join(file, 'n1')));
    expect(error.message).toMatch(/cannot access data dir .*file\/n1 \(ENOTDIR.*check the path/);
  });

  it('a non-empty directory that is not a data dir', async () => {
    const dir = await fixture.tempDir();
    await fs.writeFile(path.join(dir, 'notes.txt'), 'x');
    await fs.mkdir(path.join(dir, 'lost+found'));
    const error = await refusal(fixture.open(dir));
    expect(error.message).toContain(`data dir ${dir} is not empty and is not a raftkv data dir (it holds notes.txt)`);
    // The right dir, or, for a node that ran before, the README's way; never "start it empty".
    expect(error.message).toContain("point --data-dir at n1's own data dir");
    expect(error.message).not.toMatch(/\b(delete|remove|wipe|erase|rm)\b/i);
    expect(error.message).not.toMatch(/\bstart\w*\b[^.]*\bempty\b/i);
    expect(error.message).toContain('"A node that lost its data"');
  });

  it('LevelDB files without a CURRENT file', async () => {
    const dir = await populatedDir();
    await fs.rm(path.join(dir, 'CURRENT'));
    const error = await refusal(fixture.open(dir));
    expect(error.message).toContain('holds LevelDB files but no CURRENT file');
    expectSafeAdvice(error.message, 'n1');
  });

  it('LevelDB reporting corruption at open', () => {
    const corruption = Object.assign(new Error('Corruption: bad block'), { code: 'LEVEL_CORRUPTION' });
    const error = refusalForOpenError('/data/n1', 'n1', new Error('Database failed to open', { cause: corruption }));
    expect(error).toBeInstanceOf(StorageRefusedError);
    expect(error.message).toContain('LevelDB reports corruption in data dir /data/n1');
    expectSafeAdvice(error.message, 'n1');
  });

  it('a database another handle holds without sharing it', async () => {
    const dir = await populatedDir();
    const exclusive = new ClassicLevel(dir);
    await exclusive.open();
    try {
      const error = await refusal(fixture.open(dir));
      expect(error.message).toContain(`data dir ${dir} is locked by another process`);
    } finally {
      await exclusive.close();
    }
  });

  it("a data dir this process already has open (LevelDB's lock is shared between its handles)", async () => {
    const dir = await fixture.tempDir();
    const first = await fixture.open(dir);
    const error = await refusal(fixture.open(dir));
    expect(error.message).toContain(`data dir ${dir} is already open in this process`);
    await first.close();
    const second = await fixture.open(dir);
    expect(second.lastIndex()).toBe(0);
  });

  it('an empty cluster or node id', async () => {
    const dir = await fixture.tempDir();
    expect((await refusal(fixture.open(dir, { clusterId: '' }))).message).toContain('cluster id is empty');
    expect((await refusal(fixture.open(dir, { nodeId: '' }))).message).toContain('node id is empty');
  });
});
