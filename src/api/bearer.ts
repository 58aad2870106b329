// Secrets presented in request headers, compared in constant time: the admin token, the peer token a
// forwarding node vouches with, and the peer token of `GET /cluster/join-info`.
import { hash, timingSafeEqual } from 'node:crypto';

/** The token of `Bearer <token>` (scheme case-insensitive, RFC 7235), or undefined. */
export function bearerToken(header: string | string[] | undefined): string | undefined {
  if (typeof header !== 'string') return undefined;
  const space = header.indexOf(' ');
  if (space < 0 || header.slice(0, space).toLowerCase() !== 'bearer') return undefined;
  const token = header.slice(space + 1).trim();
  return token === '' ? undefined : token;
}

/**
 * A secret to compare presented values with. Both sides are hashed, so timingSafeEqual always sees
 * equal lengths, and the comparison leaks neither the content nor the length of the secret.
 */
export class Secret {
  private readonly digest: Buffer;

  constructor(secret: string) {
    if (secret === '') throw new Error('a secret must not be empty');
    this.digest = digest(secret);
  }

  /** Whether `presented` is the secret; a missing, repeated or empty header never is. */
  matches(presented: string | string[] | undefined): boolean {
    if (typeof presented !== 'string' || presented === '') return false;
    return timingSafeEqual(digest(presented), this.digest);
  }
}

/** SHA-256 of `text`: the one-shot `hash()` costs about half of a `createHash` object. */
function digest(text: string): Buffer {
  return hash('sha256', text, 'buffer');
}
