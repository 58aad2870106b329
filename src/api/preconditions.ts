// Conditional writes in HTTP's words (RFC 9110 13.1): a key's ETag is its modIndex, quoted
// (GET /kv/<key> sends it), so
//   If-Match: "<modIndex>"   writes only while the key is at that modIndex (no write came between);
//   If-None-Match: *         writes only if the key does not exist.
// The condition is evaluated when the entry is applied (src/storage/apply-request.ts), on every node
// against the same state, so two clients racing on one ETag cannot both win.
//
// Only these two forms are accepted. Anything else is refused (400 bad_precondition) rather than
// read loosely, because a precondition the node ignored would turn a careful write into a blind one:
// a weak tag (W/"5": weak comparison is not allowed for writes), a list ("5", "6": an ETag is one
// write's), If-Match: * (exists-or-not is what POST /txn's compare says), If-None-Match with a tag,
// both headers at once, a number with leading zeros (never an ETag this node sent).
import type { Condition } from '../storage/request.js';
import { shownHeader } from './errors.js';

export type PreconditionCheck =
  { readonly ok: true; readonly condition: Condition | undefined } | { readonly ok: false; readonly message: string };

/** One strong entity tag holding a canonical non-negative decimal integer. */
const QUOTED_MOD_INDEX = /^"(0|[1-9][0-9]*)"$/;

const IF_MATCH_FORM = 'If-Match takes one ETag as GET /kv/<key> returns it: the quoted modIndex, like If-Match: "42"';
const IF_NONE_MATCH_FORM = 'If-None-Match takes only *, to write only if the key does not exist';

/** The ETag of a key at `modIndex` (and of the value a PUT wrote at that index). */
export function etagOf(modIndex: number): string {
  return `"${modIndex}"`;
}

/**
 * The condition the headers ask for: undefined when neither is present. Node joins repeated headers
 * with ", ", so a header given twice is refused as a list.
 */
export function parsePreconditions(
  ifMatch: string | string[] | undefined,
  ifNoneMatch: string | string[] | undefined,
): PreconditionCheck {
  if (ifMatch !== undefined && ifNoneMatch !== undefined) {
    return {
      ok: false,
      message: `If-Match and If-None-Match in one request: send one of them (${IF_MATCH_FORM}; ${IF_NONE_MATCH_FORM})`,
    };
  }
  if (ifMatch !== undefined) return parseIfMatch(ifMatch);
  if (ifNoneMatch !== undefined) {
    if (ifNoneMatch === '*') return { ok: true, condition: { absent: true } };
    return { ok: false, message: `${IF_NONE_MATCH_FORM}; got ${shownHeader('If-None-Match', ifNoneMatch)}` };
  }
  return { ok: true, condition: undefined };
}

function parseIfMatch(header: string | string[]): PreconditionCheck {
  if (header === '*') {
    return {
      ok: false,
      message: `If-Match: * is not supported: ${IF_MATCH_FORM} (to require only that the key exists, use POST /txn with a compare {"key","exists":true})`,
    };
  }
  const match = typeof header === 'string' ? QUOTED_MOD_INDEX.exec(header) : null;
  const modIndex = match === null ? NaN : Number(match[1]);
  if (!Number.isSafeInteger(modIndex)) {
    return {
      ok: false,
      message: `${IF_MATCH_FORM} (not weak W/"42", not a list); got ${shownHeader('If-Match', header)}`,
    };
  }
  return { ok: true, condition: { modIndex } };
}
