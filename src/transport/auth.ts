// Bearer-token check for the peer port.

import { hash, timingSafeEqual } from 'node:crypto';

/**
 * Compares presented tokens with the cluster's token in constant time. Both sides are hashed first so
 * that timingSafeEqual always sees equal-length buffers and the comparison leaks neither content
 * nor length of the expected token.
 */
export class BearerVerifier {
  private readonly expected: Buffer;

  constructor(token: string) {
    if (token === '') throw new Error('the peer token must not be empty');
    this.expected = digest(token);
  }

  /** True iff `header` is exactly `Bearer <token>` (scheme case-insensitive, RFC 7235). */
  verify(header: string | string[] | undefined): boolean {
    if (typeof header !== 'string') return false;
    const space = header.indexOf(' ');
    if (space < 0 || header.slice(0, space).toLowerCase() !== 'bearer') return false;
    const presented = header.slice(space + 1).trim();
    if (presented === '') return false;
    return timingSafeEqual(digest(presented), this.expected);
  }
}

/** SHA-256 of `text`: the one-shot `hash()` costs about half of a `createHash` object (every peer request pays it). */
function digest(text: string): Buffer {
  return hash('sha256', text, 'buffer');
}
