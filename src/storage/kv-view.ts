// The view of the key-value state that applying a command reads and writes (apply-request.ts). The
// state machine's view reads LevelDB through an overlay of the writes not yet in it (the batch being
// prepared), so an entry sees every entry before it in the same batch; a transaction's branch runs
// on a buffered view of its own, kept only if the branch completes.
//
// Keys of the state machine's own records (idempotency.ts) start with INTERNAL_PREFIX. No user key
// can (API keys are UTF-8 without control characters), and scans start after it (kv-scan.ts).

import { decodeMeta, type KeyMeta } from './key-meta.js';

/** Stored bytes (key-meta.ts) by key. */
export interface KvView {
  get(key: Uint8Array): Uint8Array | undefined;
  /** What `get` would return, decoded to the metadata alone (a view may know it without the value). */
  getMeta(key: Uint8Array): KeyMeta | undefined;
  put(key: Uint8Array, stored: Uint8Array): void;
  delete(key: Uint8Array): void;
}

/** The first byte of every internal key: below any user key. */
export const INTERNAL_PREFIX = 0x00;
/** The smallest key a user key can be: scans start here. */
export const FIRST_USER_KEY = new Uint8Array([0x01]);

/** getMeta for a view that holds stored bytes only: the metadata of what `get` returned. */
export function metaOfStored(stored: Uint8Array | null | undefined): KeyMeta | undefined {
  return stored === undefined || stored === null ? undefined : decodeMeta(stored);
}

/** A Map key for bytes: latin1 maps each byte to one UTF-16 unit, so distinct bytes stay distinct. */
export function byteKey(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1');
}

/**
 * Writes buffered over a base view: reads see them, the base does not until `flushTo`.
 * `null` marks a deleted key.
 */
export class BufferedView implements KvView {
  private readonly writes = new Map<string, { key: Uint8Array; stored: Uint8Array | null }>();

  constructor(private readonly base: KvView) {}

  get(key: Uint8Array): Uint8Array | undefined {
    const written = this.writes.get(byteKey(key));
    if (written !== undefined) return written.stored ?? undefined;
    return this.base.get(key);
  }

  getMeta(key: Uint8Array): KeyMeta | undefined {
    const written = this.writes.get(byteKey(key));
    if (written !== undefined) return metaOfStored(written.stored);
    return this.base.getMeta(key);
  }

  put(key: Uint8Array, stored: Uint8Array): void {
    this.writes.set(byteKey(key), { key, stored });
  }

  delete(key: Uint8Array): void {
    this.writes.set(byteKey(key), { key, stored: null });
  }

  /** Passes every buffered write to `target`, in the order first written. */
  flushTo(target: KvView): void {
    for (const { key, stored } of this.writes.values()) {
      if (stored === null) target.delete(key);
      else target.put(key, stored);
    }
    this.writes.clear();
  }
}
