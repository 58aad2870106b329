// Keys arrive in the URL path, percent-encoded. A key is 1..maxKeyBytes bytes of UTF-8 with no
// control characters: anything else is a client mistake, answered 400 with the reason.

const encoder = new TextEncoder();

export type KeyCheck =
  { readonly ok: true; readonly key: Uint8Array } | { readonly ok: false; readonly message: string };

export function parseKey(raw: string | undefined, maxKeyBytes: number): KeyCheck {
  if (raw === undefined || raw.length === 0) return { ok: false, message: 'the key is empty: use /kv/<key>' };
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(raw)) return { ok: false, message: 'the key contains a control character' };
  // Only keys with surrogates pay for the pairing check (it copies the string).
  if (/[\ud800-\udfff]/.test(raw) && /[\ud800-\udfff]/.test(raw.replace(/[\ud800-\udbff][\udc00-\udfff]/g, ''))) {
    return { ok: false, message: 'the key is not valid UTF-8' };
  }
  const key = encoder.encode(raw);
  if (key.length > maxKeyBytes)
    return { ok: false, message: `the key is ${key.length} bytes; the limit is ${maxKeyBytes}` };
  return { ok: true, key };
}

/** Why a URL with a raw '#' is refused (client-api.ts): how to send a key that holds one. */
export const RAW_HASH_MESSAGE =
  'the URL contains a raw \'#\', which starts a fragment and would cut the key or query short: encode it as %23 (e.g. /kv/a%23b for the key "a#b")';

/** A query parameter as bytes (prefix, start); undefined when absent. */
export function queryBytes(value: unknown): Uint8Array | undefined {
  return typeof value === 'string' && value.length > 0 ? encoder.encode(value) : undefined;
}
