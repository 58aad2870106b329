// Who may call the admin routes of the client port (GET /backup; membership and leader transfer
// later): with RAFTKV_ADMIN_TOKEN set on the node, only requests that carry
// `Authorization: Bearer <token>`, from anywhere (loopback included: a proxy or another user on the
// node's host is no proof of anything once a token is configured); without it, only requests whose
// TCP peer is this machine's loopback address. The peer address is the socket's own, never a
// header a client writes (X-Forwarded-For).

import { createHash, timingSafeEqual } from 'node:crypto';
import { isIPv4 } from 'node:net';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { sendErrorAnswer, type ErrorAnswer } from './errors.js';

/** The environment variable holding the admin token. */
export const ADMIN_TOKEN_ENV = 'RAFTKV_ADMIN_TOKEN';

/** The admin token of the environment; undefined when unset or blank (a blank token would be an open door). */
export function adminTokenFromEnv(env: Readonly<Record<string, string | undefined>> = process.env): string | undefined {
  const token = env[ADMIN_TOKEN_ENV];
  return token !== undefined && token.trim() !== '' ? token : undefined;
}

/** Whether a socket's remote address is this machine's loopback: 127.0.0.0/8 or ::1, also IPv4-mapped. */
export function isLoopbackAddress(address: string | undefined): boolean {
  if (address === undefined) return false;
  if (address === '::1') return true;
  const v4 = address.toLowerCase().startsWith('::ffff:') ? address.slice('::ffff:'.length) : address;
  return isIPv4(v4) && v4.startsWith('127.');
}

/** What an admin request presents: its socket's remote address and its Authorization header. */
export interface AdminCredentials {
  readonly remoteAddress: string | undefined;
  readonly authorization: string | string[] | undefined;
}

/** Checks admin requests against the node's token (or its absence). */
export class AdminAuth {
  private readonly expected: Buffer | null;

  constructor(token: string | undefined) {
    this.expected = token === undefined || token.trim() === '' ? null : digest(token);
  }

  /** True when a token is required (RAFTKV_ADMIN_TOKEN was set). */
  get tokenRequired(): boolean {
    return this.expected !== null;
  }

  /** Why the request may not use an admin route (401 or 403), or undefined when it may. */
  refusal(request: AdminCredentials): ErrorAnswer | undefined {
    if (this.expected === null) {
      if (isLoopbackAddress(request.remoteAddress)) return undefined;
      return {
        status: 403,
        error: 'forbidden',
        message:
          `admin routes answer only requests from this node's own machine (loopback), and this one came from ${request.remoteAddress ?? 'an unknown address'}: ` +
          `call it on the node's host, or set ${ADMIN_TOKEN_ENV} (a long random secret) on the node and send Authorization: Bearer <token>`,
      };
    }
    const presented = bearerToken(request.authorization);
    if (presented === undefined) {
      return {
        status: 401,
        error: 'unauthorized',
        message: `admin routes of this node need Authorization: Bearer <token>, the node's ${ADMIN_TOKEN_ENV}`,
        headers: { 'www-authenticate': 'Bearer realm="raftkv-admin"' },
      };
    }
    // Both sides hashed: timingSafeEqual sees equal lengths, and neither content nor length leaks.
    if (!timingSafeEqual(digest(presented), this.expected)) {
      return {
        status: 401,
        error: 'unauthorized',
        message: `the bearer token is not this node's ${ADMIN_TOKEN_ENV}`,
        headers: { 'www-authenticate': 'Bearer realm="raftkv-admin", error="invalid_token"' },
      };
    }
    return undefined;
  }

  /** A Fastify onRequest hook that answers the refusal, if any, before the route runs. */
  hook(): (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply | undefined> {
    return async (request, reply) => {
      const refusal = this.refusal({
        remoteAddress: request.raw.socket?.remoteAddress,
        authorization: request.headers.authorization,
      });
      // Returning the reply once sent is how an async hook ends the request early (Fastify's hooks docs).
      return refusal === undefined ? undefined : sendErrorAnswer(reply, refusal);
    };
  }
}

/** The token of `Bearer <token>` (scheme case-insensitive, RFC 7235), or undefined. */
function bearerToken(header: string | string[] | undefined): string | undefined {
  if (typeof header !== 'string') return undefined;
  const space = header.indexOf(' ');
  if (space < 0 || header.slice(0, space).toLowerCase() !== 'bearer') return undefined;
  const token = header.slice(space + 1).trim();
  return token === '' ? undefined : token;
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}
