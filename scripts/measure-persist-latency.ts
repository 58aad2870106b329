// Latency of NodeStorage.persist for the common case: one new entry plus the hard state, one
// fsync'd batch. Not a test (nothing asserts a number): run it to measure a disk.
//
//   npx tsx scripts/measure-persist-latency.ts [writes=200] [payloadBytes=100] [dir under which to create the data dir]
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { EntryType } from '../src/raft/types.js';
import { NodeStorage } from '../src/storage/node-storage.js';
import { encodeCommand } from '../src/storage/state-machine.js';

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

async function main(): Promise<void> {
  const writes = Number(process.argv[2] ?? 200);
  const payloadBytes = Number(process.argv[3] ?? 100);
  const parent = process.argv[4] ?? os.tmpdir();
  const dir = await fs.mkdtemp(path.join(parent, 'raftkv-persist-latency-'));
  const samples: number[] = [];
  const storage = await NodeStorage.open({
    dataDir: dir,
    clusterId: 'bench',
    nodeId: 'n1',
    voters: ['n1'],
    onPersist: (ms) => samples.push(ms),
  });
  try {
    const data = encodeCommand({
      op: 'put',
      key: new TextEncoder().encode('key'),
      value: new Uint8Array(payloadBytes),
    });
    for (let index = 1; index <= writes; index++) {
      await storage.persist({ term: 1, vote: 'n1', commit: index - 1 }, [
        { index, term: 1, type: EntryType.Normal, data },
      ]);
    }
  } finally {
    await storage.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
  const sorted = samples.slice().sort((a, b) => a - b);
  const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
  const fmt = (ms: number): string => `${ms.toFixed(3)} ms`;
  console.log(
    `${samples.length} sync persists (1 entry of ${payloadBytes} B + hard state) under ${parent}: ` +
      `p50 ${fmt(percentile(sorted, 50))}, p90 ${fmt(percentile(sorted, 90))}, p99 ${fmt(percentile(sorted, 99))}, ` +
      `max ${fmt(sorted[sorted.length - 1] ?? NaN)}, mean ${fmt(mean)}`,
  );
}

await main();
