// JSON bodies of read answers, built wherever the read runs (a pool worker or the main thread).
// Keys and values are text when they are valid UTF-8, base64 under a separate field otherwise.
//
// Answers are built an item at a time (`AnswerBuilder`), so a query knows the exact size of its
// answer before adding an item and can stop at `limits.maxResponseBytes` without building, or
// reading, what would not be sent. The bytes are the same as `JSON.stringify` of the whole answer.

import type { KeyMeta } from '../storage/key-meta.js';

const decoder = new TextDecoder('utf-8', { fatal: true });

export function textOrNull(bytes: Uint8Array): string | null {
  try {
    return decoder.decode(bytes);
  } catch {
    return null;
  }
}

function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

export function describeItem(
  key: Uint8Array,
  value: Uint8Array | undefined,
  meta?: KeyMeta,
): Record<string, string | number | null> {
  const item: Record<string, string | number | null> = {};
  const k = textOrNull(key);
  if (k === null) item['keyBase64'] = base64(key);
  else item['key'] = k;
  if (value === undefined) {
    item['value'] = null;
    return item;
  }
  const v = textOrNull(value);
  if (v === null) item['valueBase64'] = base64(value);
  else item['value'] = v;
  if (meta !== undefined) {
    item['createIndex'] = meta.createIndex;
    item['modIndex'] = meta.modIndex;
    item['version'] = meta.version;
  }
  return item;
}

/** One item of an answer as JSON text, with its size in bytes of UTF-8. */
export interface ItemJson {
  readonly text: string;
  readonly bytes: number;
}

export function itemJson(key: Uint8Array, value: Uint8Array | undefined, meta?: KeyMeta): ItemJson {
  const text = JSON.stringify(describeItem(key, value, meta));
  return { text, bytes: Buffer.byteLength(text, 'utf8') };
}

/** A scan's `next` member: the cursor as text (base64 when the key is not UTF-8), or null. */
export function cursorJson(nextStart: Uint8Array | null): ItemJson {
  const text = JSON.stringify(nextStart === null ? null : (textOrNull(nextStart) ?? base64(nextStart)));
  return { text, bytes: Buffer.byteLength(text, 'utf8') };
}

const ITEMS_OPEN = '{"items":[';
const ITEMS_CLOSE = ']}';
const PAGE_NEXT = '],"next":';
const PAGE_CLOSE = '}';

/**
 * `{"items":[...]...}` built item by item. Every size it reports is exact, so a caller that checks
 * `sizeWith` before `add` never produces an answer above its cap (except where it chooses to, for
 * the first item).
 */
export class AnswerBuilder {
  private readonly items: string[] = [];
  private itemBytes = 0;

  get count(): number {
    return this.items.length;
  }

  /** Bytes of the answer with `item` added and `tail` closing it (a page's cursor; none for mget). */
  sizeWith(item: ItemJson | null, tail: ItemJson | null): number {
    const items = this.items.length + (item === null ? 0 : 1);
    const itemBytes = this.itemBytes + (item === null ? 0 : item.bytes);
    const commas = Math.max(0, items - 1);
    const close = tail === null ? ITEMS_CLOSE.length : PAGE_NEXT.length + tail.bytes + PAGE_CLOSE.length;
    return ITEMS_OPEN.length + itemBytes + commas + close;
  }

  add(item: ItemJson): void {
    this.items.push(item.text);
    this.itemBytes += item.bytes;
  }

  /**
   * The answer as UTF-8, written once into a buffer of its exact size: no joined string of the
   * whole answer and no second copy of it (at 16 MiB both cost milliseconds and memory).
   */
  finish(tail: ItemJson | null): Uint8Array {
    const size = this.sizeWith(null, tail);
    const out = Buffer.allocUnsafe(size);
    let at = out.write(ITEMS_OPEN, 0, 'latin1');
    for (let i = 0; i < this.items.length; i++) {
      if (i > 0) at = out.writeUInt8(0x2c, at); // ','
      at += out.write(this.items[i]!, at, 'utf8');
    }
    if (tail === null) {
      at += out.write(ITEMS_CLOSE, at, 'latin1');
    } else {
      at += out.write(PAGE_NEXT, at, 'latin1');
      at += out.write(tail.text, at, 'utf8');
      at += out.write(PAGE_CLOSE, at, 'latin1');
    }
    // allocUnsafe: every byte must have been written, or stale memory would leave the process.
    if (at !== size) throw new Error(`answer size mismatch: wrote ${at} of ${size} bytes`);
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  }
}

/** `{"items":[{"key","value"}...],"next":cursor|null}` as UTF-8 bytes, without a cap. */
export function formatPage(
  entries: readonly (readonly [Uint8Array, Uint8Array, KeyMeta?])[],
  nextStart: Uint8Array | null,
): Uint8Array {
  const builder = new AnswerBuilder();
  for (const [k, v, meta] of entries) builder.add(itemJson(k, v, meta));
  return builder.finish(cursorJson(nextStart));
}

/** `{"items":[{"key","value"|null}...]}` in the order asked, null for an absent key, without a cap. */
export function formatValues(
  keys: readonly Uint8Array[],
  values: readonly ({ value: Uint8Array; meta: KeyMeta } | undefined)[],
): Uint8Array {
  const builder = new AnswerBuilder();
  keys.forEach((k, i) => builder.add(itemJson(k, values[i]?.value, values[i]?.meta)));
  return builder.finish(null);
}
