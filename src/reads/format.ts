// JSON bodies of read answers, built wherever the read runs (a pool worker or the main thread).
// Keys and values are text when they are valid UTF-8, base64 under a separate field otherwise.

const decoder = new TextDecoder('utf-8', { fatal: true });
const encoder = new TextEncoder();

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

export function describeItem(key: Uint8Array, value: Uint8Array | undefined): Record<string, string | null> {
  const item: Record<string, string | null> = {};
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
  return item;
}

/** `{"items":[{"key","value"}...],"next":cursor|null}` as UTF-8 bytes. */
export function formatPage(entries: readonly (readonly [Uint8Array, Uint8Array])[], nextStart: Uint8Array | null): Uint8Array {
  const next = nextStart === null ? null : (textOrNull(nextStart) ?? base64(nextStart));
  return encoder.encode(JSON.stringify({ items: entries.map(([k, v]) => describeItem(k, v)), next }));
}

/** `{"items":[{"key","value"|null}...]}` in the order asked, null for an absent key. */
export function formatValues(keys: readonly Uint8Array[], values: readonly (Uint8Array | undefined)[]): Uint8Array {
  return encoder.encode(JSON.stringify({ items: keys.map((k, i) => describeItem(k, values[i])) }));
}
