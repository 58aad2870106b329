// The Idempotency-Key header (as in the IETF httpapi draft and Stripe's API): a client names a write
// so that retrying it (after a timeout, a 504, a lost connection) is applied at most once and gets
// the first answer. The node records the id with the write's answer in the replicated state
// (src/storage/idempotency.ts); a retry with the same id and the same request is answered from the
// record, the same id with another request is refused (422).
import { shownHeader } from './errors.js';

/**
 * The longest key a client may send. Within the storage format's MAX_IDEMPOTENCY_ID_LENGTH (256),
 * which a decoder enforces on every entry (a unit test keeps the two in order).
 */
export const MAX_IDEMPOTENCY_KEY_LENGTH = 128;

/** Printable ASCII without the space: no key needs escaping, quoting or trimming anywhere. */
const PRINTABLE = /^[\x21-\x7e]+$/;

export type IdempotencyKeyCheck =
  { readonly ok: true; readonly id: string | undefined } | { readonly ok: false; readonly message: string };

/**
 * The key of `Idempotency-Key`, undefined when absent. A header given twice reaches us joined with
 * ", " (Node's rule), which holds a space: refused like any other key outside the rule.
 */
export function parseIdempotencyKey(header: string | string[] | undefined): IdempotencyKeyCheck {
  if (header === undefined) return { ok: true, id: undefined };
  if (typeof header === 'string' && header.length <= MAX_IDEMPOTENCY_KEY_LENGTH && PRINTABLE.test(header)) {
    return { ok: true, id: header };
  }
  return {
    ok: false,
    message:
      `Idempotency-Key must be 1 to ${MAX_IDEMPOTENCY_KEY_LENGTH} characters of printable ASCII without spaces ` +
      `(e.g. a UUID), one per request; got ${shownHeader('Idempotency-Key', header)}`,
  };
}
