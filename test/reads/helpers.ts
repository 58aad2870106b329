// Shared by the read tests: puts committed and applied through NodeStorage, as the Raft driver does.
import { EntryType, type Entry } from '../../src/raft/types.js';
import { encodeCommand } from '../../src/storage/command.js';
import type { NodeStorage } from '../../src/storage/node-storage.js';
import { bytes } from '../storage/helpers.js';

export async function applyPuts(
  storage: NodeStorage,
  pairs: readonly (readonly [string, string | Uint8Array])[],
): Promise<void> {
  const first = storage.lastIndex() + 1;
  const entries: Entry[] = pairs.map(([k, v], i) => ({
    index: first + i,
    term: 1,
    type: EntryType.Normal,
    data: encodeCommand({ op: 'put', key: bytes(k), value: typeof v === 'string' ? bytes(v) : v }),
  }));
  const last = first + entries.length - 1;
  await storage.persist({ term: 1, vote: 'n1', commit: last }, entries);
  await storage.applyEntries(entries);
}
