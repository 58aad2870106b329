// The backup file (src/snapshot/backup-file.ts): what backupFilePieces writes, readBackupFile reads
// back exactly; a file cut anywhere, changed in any byte, or with anything appended is refused.
import { SNAPSHOT_FORMAT } from '../../src/snapshot/format.js';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { backupFilePieces, readBackupFile } from '../../src/snapshot/backup-file.js';
import { BACKUP_MAGIC, SnapshotFormatError, StreamWriter, type Pair } from '../../src/snapshot/format.js';
import type { SnapshotSource } from '../../src/storage/node-storage.js';
import { framePrefix } from '../../src/transport/frames.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const dirs: string[] = [];
afterEach(async () => {
  for (const dir of dirs.splice(0)) await fs.rm(dir, { recursive: true, force: true });
});

async function tempFile(name = 'backup.snap'): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'raftkv-backup-file-'));
  dirs.push(dir);
  return path.join(dir, name);
}

/** A snapshot source over `chunks`, as NodeStorage.openSnapshotSource hands them out. */
function sourceOf(index: number, term: number, chunks: Pair[][]): SnapshotSource & { closed: boolean } {
  let next = 0;
  return {
    index,
    term,
    membership: {
      members: ['n1', 'n2', 'n3'].map((id) => ({ id, clientUrl: '', peerUrl: '', role: 'voter' as const })),
      removed: [],
    },
    closed: false,
    async next() {
      return chunks[next++] ?? null;
    },
    async close() {
      this.closed = true;
    },
  };
}

function pairs(from: number, count: number): Pair[] {
  return Array.from(
    { length: count },
    (_, i) => [encoder.encode(`k${from + i}`), encoder.encode(`value-${from + i}`)] as const,
  );
}

async function writeBackup(file: string, source: SnapshotSource, clusterId = 'c1'): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const piece of backupFilePieces(source, { clusterId })) parts.push(piece);
  const bytes = Buffer.concat(parts);
  await fs.writeFile(file, bytes);
  return bytes;
}

describe('backup files', () => {
  it('round-trips: magic, header, every pair in order, and the trailer checks out', async () => {
    const file = await tempFile();
    const chunks = [pairs(0, 3), pairs(3, 2), pairs(5, 4)];
    const bytes = await writeBackup(file, sourceOf(42, 7, chunks));
    expect(bytes.subarray(0, BACKUP_MAGIC.byteLength)).toEqual(Buffer.from(BACKUP_MAGIC));
    const seen: string[] = [];
    const summary = await readBackupFile(file, async (chunk) => {
      for (const [k, v] of chunk) seen.push(`${decoder.decode(k)}=${decoder.decode(v)}`);
    });
    expect(summary).toEqual({
      header: {
        format: SNAPSHOT_FORMAT,
        clusterId: 'c1',
        index: 42,
        term: 7,
        membership: {
          members: ['n1', 'n2', 'n3'].map((id) => ({ id, clientUrl: '', peerUrl: '', role: 'voter' })),
          removed: [],
        },
      },
      pairs: 9,
      bytes: bytes.byteLength,
    });
    expect(seen).toEqual(chunks.flat().map(([k, v]) => `${decoder.decode(k)}=${decoder.decode(v)}`));
  });

  it('an empty state machine is a header and a trailer', async () => {
    const file = await tempFile();
    await writeBackup(file, sourceOf(0, 0, []));
    expect(await readBackupFile(file)).toMatchObject({ header: { index: 0, term: 0 }, pairs: 0 });
  });

  it('refuses the file cut at any byte', async () => {
    const file = await tempFile();
    const bytes = await writeBackup(file, sourceOf(42, 7, [pairs(0, 3), pairs(3, 3)]));
    const cut = await tempFile('cut.snap');
    for (let length = 0; length < bytes.byteLength; length++) {
      await fs.writeFile(cut, bytes.subarray(0, length));
      await expect(readBackupFile(cut), `cut at ${length}`).rejects.toBeInstanceOf(SnapshotFormatError);
    }
  });

  it('refuses the file with any one byte changed', async () => {
    const file = await tempFile();
    const bytes = await writeBackup(file, sourceOf(42, 7, [pairs(0, 3), pairs(3, 3)]));
    const flipped = await tempFile('flipped.snap');
    for (let at = 0; at < bytes.byteLength; at++) {
      const copy = Buffer.from(bytes);
      copy[at] = copy[at]! ^ 0x01;
      await fs.writeFile(flipped, copy);
      await expect(readBackupFile(flipped), `byte ${at} flipped`).rejects.toBeInstanceOf(SnapshotFormatError);
    }
  });

  it('refuses bytes after the trailer, another frame after it, and a frame length over the limit', async () => {
    const file = await tempFile();
    const bytes = await writeBackup(file, sourceOf(1, 1, [pairs(0, 2)]));
    await fs.writeFile(file, Buffer.concat([bytes, Buffer.from([0])]));
    await expect(readBackupFile(file)).rejects.toThrow(/after its trailer/);
    const extra = new StreamWriter().chunk(pairs(9, 1));
    await fs.writeFile(file, Buffer.concat([bytes, framePrefix(extra.byteLength), extra]));
    await expect(readBackupFile(file)).rejects.toThrow(/after its trailer/);
    await fs.writeFile(file, Buffer.concat([BACKUP_MAGIC, framePrefix(0xffffffff)]));
    await expect(readBackupFile(file)).rejects.toThrow(/over the limit/);
    await fs.writeFile(file, 'not a backup at all');
    await expect(readBackupFile(file)).rejects.toThrow(/not a raftkv backup/);
  });

  it('does not hand pairs of a file whose header is bad to the caller', async () => {
    const file = await tempFile();
    const bytes = await writeBackup(file, sourceOf(42, 7, [pairs(0, 3)]));
    // The header frame's first body byte (after magic and prefix) made something else.
    const copy = Buffer.from(bytes);
    copy[BACKUP_MAGIC.byteLength + 4] = 0xc1; // never used by msgpack
    await fs.writeFile(file, copy);
    let chunks = 0;
    await expect(readBackupFile(file, async () => void chunks++)).rejects.toBeInstanceOf(SnapshotFormatError);
    expect(chunks).toBe(0);
  });
});
