// `node dist/cli/restore.js` (npm run restore): a data dir for every node of a config from a backup
// file. A corrupt or truncated file, another cluster's backup, or a data dir in the way is refused
// with exit code 2 and a message, before anything is written.
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../scripts/harness/cluster/process-cluster.js';
import { backupFilePieces } from '../../src/snapshot/backup-file.js';
import { encodeCommand } from '../../src/storage/state-machine.js';
import { CLUSTER, bytes, entry, text, useStorageFixture } from '../storage/helpers.js';

const fixture = useStorageFixture();
const RESTORE_JS = path.join(REPO_ROOT, 'dist/cli/restore.js');
const NODES = ['n1', 'n2', 'n3'];
const KEYS = 300;

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function runRestore(args: readonly string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [RESTORE_JS, ...args], { timeout: 60_000 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
      resolve({ code, stdout, stderr });
    });
  });
}

/** A temp dir with a cluster config of three nodes whose data dirs are data/<id> (none exist yet). */
async function configDir(clusterId = CLUSTER): Promise<{ dir: string; config: string; dataDirs: string[] }> {
  const dir = await fixture.tempDir();
  const config = path.join(dir, 'cluster.config.json');
  const nodes = NODES.map((id, i) => ({
    id,
    clientUrl: `http://127.0.0.1:${17_001 + i}`,
    peerUrl: `http://127.0.0.1:${18_001 + i}`,
    dataDir: `data/${id}`,
  }));
  await fs.writeFile(config, JSON.stringify({ clusterId, nodes }));
  return { dir, config, dataDirs: NODES.map((id) => path.join(dir, 'data', id)) };
}

/** A backup file of a node that applied KEYS puts in term 4 (index KEYS), from cluster `clusterId`. */
async function backupFile(clusterId = CLUSTER): Promise<{ file: string; bytes: Buffer }> {
  const storage = await fixture.open(await fixture.tempDir());
  const entries = Array.from({ length: KEYS }, (_, i) =>
    entry(i + 1, 4, encodeCommand({ op: 'put', key: bytes(`key/${i}`), value: bytes(`value ${i}`) })),
  );
  await storage.writeReady({ term: 4, vote: 'n1', commit: KEYS }, entries, entries);
  const source = await storage.openSnapshotSource();
  const parts: Uint8Array[] = [];
  try {
    for await (const piece of backupFilePieces(source, { clusterId })) parts.push(piece);
  } finally {
    await source.close();
  }
  await storage.close();
  const file = path.join(await fixture.tempDir(), 'backup.snap');
  const content = Buffer.concat(parts);
  await fs.writeFile(file, content);
  return { file, bytes: content };
}

async function exists(p: string): Promise<boolean> {
  return fs.stat(p).then(
    () => true,
    () => false,
  );
}

describe('npm run restore', () => {
  it("creates every node's data dir from the backup; each opens at the backup point with every key", async () => {
    const { file } = await backupFile();
    const { config, dataDirs } = await configDir();
    const run = await runRestore(['--from', file, '--config', config]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`cluster ${CLUSTER}, index ${KEYS}, term 4, ${KEYS} keys`);
    expect(run.stdout).toContain('checksum OK');
    for (const [i, id] of NODES.entries()) {
      expect(run.stdout).toContain(`restored ${id} -> ${dataDirs[i]}`);
      const storage = await fixture.open(dataDirs[i]!, { nodeId: id, clusterId: CLUSTER, voters: NODES });
      expect(storage.applied).toEqual({ index: KEYS, term: 4 });
      expect(storage.firstIndex()).toBe(KEYS + 1);
      expect(storage.initialHardState()).toEqual({ term: 4, vote: '', commit: KEYS });
      for (const k of [0, 150, KEYS - 1]) expect(text(storage.getSync(bytes(`key/${k}`)))).toBe(`value ${k}`);
      await storage.close();
    }
  });

  it('refuses a corrupt file (one byte flipped) with exit 2 before writing anything', async () => {
    const { file, bytes: content } = await backupFile();
    const copy = Buffer.from(content);
    const at = Math.floor(copy.byteLength / 2);
    copy[at] = copy[at]! ^ 0xff;
    await fs.writeFile(file, copy);
    const { dir, config } = await configDir();
    const run = await runRestore(['--from', file, '--config', config]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/raftkv restore: backup file .* is not usable: .*Nothing was written/);
    expect(await exists(path.join(dir, 'data'))).toBe(false);
  });

  it('refuses a truncated file with exit 2 before writing anything', async () => {
    const { file, bytes: content } = await backupFile();
    await fs.writeFile(file, content.subarray(0, content.byteLength - 10));
    const { dir, config } = await configDir();
    const run = await runRestore(['--from', file, '--config', config]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/is not usable: .*truncated.*Nothing was written/);
    expect(await exists(path.join(dir, 'data'))).toBe(false);
  });

  it('refuses when any data dir is not empty, naming it, and writes none of them', async () => {
    const { file } = await backupFile();
    const { config, dataDirs } = await configDir();
    await fs.mkdir(dataDirs[1]!, { recursive: true });
    await fs.writeFile(path.join(dataDirs[1]!, 'CURRENT'), 'MANIFEST-000001\n');
    const run = await runRestore(['--from', file, '--config', config]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`n2: data dir ${dataDirs[1]} is not empty`);
    expect(run.stderr).toContain('Move it away');
    expect(await exists(dataDirs[0]!)).toBe(false);
    expect(await exists(dataDirs[2]!)).toBe(false);
    expect(await fs.readdir(dataDirs[1]!)).toEqual(['CURRENT']);
  });

  it("refuses another cluster's backup with exit 2 and says how to go on; --allow-new-cluster-id restores it into the config's cluster", async () => {
    const { file } = await backupFile('old-cluster');
    const { dir, config, dataDirs } = await configDir();
    const refused = await runRestore(['--from', file, '--config', config]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(
      `the backup is of cluster "old-cluster", but ${config} is for cluster "${CLUSTER}"`,
    );
    expect(refused.stderr).toContain('--allow-new-cluster-id');
    expect(await exists(path.join(dir, 'data'))).toBe(false);

    const allowed = await runRestore(['--from', file, '--config', config, '--allow-new-cluster-id']);
    expect(allowed.code).toBe(0);
    const storage = await fixture.open(dataDirs[0]!, { nodeId: 'n1', clusterId: CLUSTER, voters: NODES });
    expect(storage.applied.index).toBe(KEYS);
  });

  it('refuses bad arguments, a missing file and a bad config with exit 2', async () => {
    const { config } = await configDir();
    const noFrom = await runRestore(['--config', config]);
    expect(noFrom.code).toBe(2);
    expect(noFrom.stderr).toContain('--from is required');
    const missing = await runRestore(['--from', path.join(path.dirname(config), 'nope.snap'), '--config', config]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/cannot read backup file .*ENOENT.*Nothing was written/);
    const badConfig = await runRestore(['--from', 'x', '--config', path.join(path.dirname(config), 'missing.json')]);
    expect(badConfig.code).toBe(2);
    expect(badConfig.stderr).toContain('cannot read the cluster config');
    const unknown = await runRestore(['--from', 'x', '--bogus']);
    expect(unknown.code).toBe(2);
  });
});
