// Open time and disk use of a node's data dir after many writes, with log compaction and without
// (BENCHMARKS.md, "Compaction"). Writes go straight through NodeStorage as a follower's Readys do
// (entries persisted and applied in one synced batch, 256 per batch), so a million take a minute,
// not the quarter of an hour the HTTP path would; what is measured (opening the dir, its size) is
// the same. Not a test: nothing asserts a number.
//
//   npx tsx scripts/measure-open.ts [--writes 1000000] [--keys 100000] [--value-bytes 100]
//     [--every 10000 --keep 5000 | --no-compaction] [--opens 3] [--dir PARENT]
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { EntryType, type Entry } from '../src/raft/types.js';
import { NodeStorage } from '../src/storage/node-storage.js';
import { encodeCommand } from '../src/storage/state-machine.js';

const { values } = parseArgs({
  options: {
    writes: { type: 'string', default: '1000000' },
    keys: { type: 'string', default: '100000' },
    'value-bytes': { type: 'string', default: '100' },
    every: { type: 'string', default: '10000' },
    keep: { type: 'string', default: '5000' },
    'no-compaction': { type: 'boolean', default: false },
    opens: { type: 'string', default: '3' },
    dir: { type: 'string', default: os.tmpdir() },
  },
});
const writes = Number(values.writes);
const keys = Number(values.keys);
const valueBytes = Number(values['value-bytes']);
const every = values['no-compaction'] ? Infinity : Number(values.every);
const keep = Number(values.keep);
const BATCH = 256;

const dir = await fs.mkdtemp(path.join(values.dir, 'raftkv-measure-open-'));
const options = { dataDir: dir, clusterId: 'bench', nodeId: 'n1', voters: ['n1'] };
try {
  let storage = await NodeStorage.open(options);
  // Random printable values, as the benchmark's: LevelDB compresses blocks, so 'aaaa...' would measure nothing.
  const values64 = Array.from({ length: 64 }, () =>
    new TextEncoder().encode(randomBytes(valueBytes).toString('base64').slice(0, valueBytes)),
  );
  const started = performance.now();
  let lastSnapshot = 0;
  for (let first = 1; first <= writes; first += BATCH) {
    const entries: Entry[] = [];
    for (let index = first; index < first + BATCH && index <= writes; index++) {
      const key = new TextEncoder().encode(`k${index % keys}`);
      const value = values64[index % values64.length]!;
      entries.push({ index, term: 1, type: EntryType.Normal, data: encodeCommand({ op: 'put', key, value }) });
    }
    const last = entries[entries.length - 1]!.index;
    await storage.writeReady({ term: 1, vote: 'n1', commit: last }, entries, entries);
    if (last - lastSnapshot >= every) {
      lastSnapshot = last;
      await storage.compactLog(Math.max(0, last - keep));
    }
  }
  const writeS = (performance.now() - started) / 1000;
  await storage.close();
  const opens: number[] = [];
  for (let i = 0; i < Number(values.opens); i++) {
    const t = performance.now();
    storage = await NodeStorage.open(options);
    opens.push(Math.round(performance.now() - t));
    if (i === 0) {
      console.error(
        `after open: firstIndex ${storage.firstIndex()}, lastIndex ${storage.lastIndex()}, applied ${storage.applied.index}`,
      );
    }
    await storage.close();
  }
  const bytes = Number(execFileSync('du', ['-sb', dir], { encoding: 'utf8' }).split('\t')[0]);
  console.log(
    JSON.stringify(
      {
        writes,
        keys,
        valueBytes,
        compaction: every === Infinity ? 'off' : { every, keep },
        writeSeconds: Number(writeS.toFixed(1)),
        openMs: opens,
        dataDirMB: Number((bytes / 1e6).toFixed(1)),
      },
      null,
      2,
    ),
  );
} finally {
  await fs.rm(dir, { recursive: true, force: true });
}
