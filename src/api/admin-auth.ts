// Who may call the admin routes of the client port (GET /backup, the membership routes, leader
// transfer): with RAFTKV_ADMIN_TOKEN set on the node, only requests that carry
// `Authorization: Bearer <token>`, from anywhere (loopback included: a proxy or another user on the
// node's host is no proof of anything once a token is configured); without it, only requests whose
// TCP peer is this machine's loopback address. The peer address is the socket's own, never a
// header a client writes (X-Forwarded-For).
//
// A follower forwards admin requests to the leader (forward.ts), from its own address: the leader
// cannot see the client's. The follower checked the client's credentials, and vouches for the
// request with the cluster's peer token (ADMIN_VOUCH_HEADER); the leader accepts the vouching in
// place of its loopback check, never in place of its own admin token (the forwarder passes the
// client's Authorization through). A request that says it was forwarded (FORWARDED_HEADER) without
// a valid vouching is refused, whatever its address: the claim alone proves nothing. The built-in
// development peer token is public, so vouching with it counts for nothing.

import { isIPv4 } from 'node:net';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { bearerToken, Secret } from './bearer.js';
import { sendErrorAnswer, type ErrorAnswer } from './errors.js';
import { ADMIN_VOUCH_HEADER, FORWARDED_HEADER } from './forward.js';

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

/** The cluster's peer token, as the node resolved it (src/transport/token.ts). */
export interface PeerToken {
  readonly token: string;
  /** The built-in development token: public, so it vouches for nothing. */
  readonly isDevToken: boolean;
}

/** What an admin request presents: its socket's remote address and its headers. */
export interface AdminCredentials {
  readonly remoteAddress: string | undefined;
  readonly authorization: string | string[] | undefined;
  /** FORWARDED_HEADER: the request says another node forwarded it. */
  readonly forwardedBy?: string | string[] | undefined;
  /** ADMIN_VOUCH_HEADER: the forwarding node's vouching. */
  readonly vouch?: string | string[] | undefined;
}

/** Checks admin requests against the node's token (or its absence), and forwarded ones against the peer token. */
export class AdminAuth {
  private readonly expected: Secret | null;
  private readonly peer: Secret | null;
  private readonly peerIsPublic: boolean;

  /** Without `peerToken` (routes that are never forwarded, such as /backup), no forwarded request is accepted. */
  constructor(token: string | undefined, peerToken?: PeerToken) {
    this.expected = token === undefined || token.trim() === '' ? null : new Secret(token);
    this.peer = peerToken === undefined || peerToken.token === '' ? null : new Secret(peerToken.token);
    this.peerIsPublic = peerToken?.isDevToken ?? false;
  }

  /** True when a token is required (RAFTKV_ADMIN_TOKEN was set). */
  get tokenRequired(): boolean {
    return this.expected !== null;
  }

  /** Why the request may not use an admin route (401 or 403), or undefined when it may. */
  refusal(request: AdminCredentials): ErrorAnswer | undefined {
    if (request.forwardedBy !== undefined) {
      if (this.peer === null || !this.peer.matches(request.vouch)) {
        return {
          status: 403,
          error: 'forbidden',
          message:
            `this admin request says it was forwarded by another node (${FORWARDED_HEADER}) but carries no valid vouching ` +
            `(${ADMIN_VOUCH_HEADER}, the cluster's peer token): send admin requests to a node without ${FORWARDED_HEADER}`,
        };
      }
      // The forwarding node checked the client's address or token. Ours, if set, is checked below
      // all the same (the forwarder passes Authorization through); a public peer token proves nothing.
      if (this.expected === null && !this.peerIsPublic) return undefined;
    }
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
    if (!this.expected.matches(presented)) {
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
        forwardedBy: request.headers[FORWARDED_HEADER],
        vouch: request.headers[ADMIN_VOUCH_HEADER],
      });
      // Returning the reply once sent is how an async hook ends the request early (Fastify's hooks docs).
      return refusal === undefined ? undefined : sendErrorAnswer(reply, refusal);
    };
  }
}
