// The upgrade of a data dir from storage format 1 or 2 to 3, where every value carries its key's
// metadata (key-meta.ts). Run once, when a build with versioned keys first opens the dir.
//
// The state machine is copied into the next generation with LEGACY_META on every value, then one
// synced batch switches the generation and marks the dir format 3: a crash at any moment leaves the
// old dir (which the next start upgrades again, from scratch) or the complete new one. Every batch
// is synced, because a later synced batch does not make an earlier unsynced one durable
// (ARCHITECTURE.md, durability model).
//
// Why LEGACY_META and not the applied index: nodes upgrade at different applied indices, and the
// metadata must not depend on when a node upgraded (command.ts: legacy ops give the same).

import type { Logger } from 'pino';
import {
  SM_GENERATION,
  META_IDENTITY,
  decodeGeneration,
  encodeGeneration,
  encodeIdentity,
  type Identity,
} from './codec.js';
import { openKv, putOp, type ByteBatchOperation, type Database } from './database.js';
import { encodeStored, LEGACY_META } from './key-meta.js';

/** The storage format from which values carry key metadata. */
export const VERSIONED_VALUES_FORMAT = 3;

const COPY_CHUNK = 1024;

export async function upgradeToVersionedValues(
  handles: Database,
  identity: Identity,
  options: { readonly location: string; readonly logger?: Logger },
): Promise<void> {
  const started = Date.now();
  const generationBytes = handles.sm.getSync(SM_GENERATION);
  const generation = generationBytes === undefined ? 0 : decodeGeneration(generationBytes);
  const from = await openKv(handles.db, generation);
  const to = await openKv(handles.db, generation + 1);
  await to.clear(); // what an interrupted upgrade (or an abandoned snapshot staging) left
  let keys = 0;
  const iterator = from.iterator();
  try {
    for (let chunk = await iterator.nextv(COPY_CHUNK); chunk.length > 0; chunk = await iterator.nextv(COPY_CHUNK)) {
      const ops: ByteBatchOperation[] = chunk.map(([key, value]) => putOp(to, key, encodeStored(LEGACY_META, value)));
      await handles.db.batch(ops, { sync: true });
      keys += chunk.length;
    }
  } finally {
    await iterator.close();
  }
  await handles.db.batch(
    [
      putOp(handles.sm, SM_GENERATION, encodeGeneration(generation + 1)),
      putOp(handles.meta, META_IDENTITY, encodeIdentity({ ...identity, format: VERSIONED_VALUES_FORMAT })),
    ],
    { sync: true },
  );
  await from.clear();
  options.logger?.info(
    { location: options.location, from: identity.format, to: VERSIONED_VALUES_FORMAT, keys, ms: Date.now() - started },
    'upgraded the data dir to versioned keys: every key now carries createIndex/modIndex/version (0/0/1 for keys written before)',
  );
}
