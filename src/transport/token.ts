// The peer token: a shared secret every node of a cluster presents as `Authorization: Bearer` on the
// peer port. It is resolved once at startup; the built-in development token is public (it is in
// this file), so the caller must warn loudly whenever `isDevToken` is true, and refuse to start
// when any peer URL is reachable from another machine (`devTokenRefusal`).

import { isIPv4 } from 'node:net';

/** The built-in development token. Anyone who has read this source knows it: never use it in production. */
export const DEV_PEER_TOKEN = 'raftkv-insecure-development-peer-token';

/** The environment variable that overrides the configured token. */
export const PEER_TOKEN_ENV = 'RAFTKV_PEER_TOKEN';

export interface ResolvedPeerToken {
  readonly token: string;
  /** True when the token is the public development token, whoever supplied it. */
  readonly isDevToken: boolean;
}

/**
 * `RAFTKV_PEER_TOKEN` first (so a secret never has to live in the config file), then the config
 * file's token, then the development token. Empty strings count as unset: an empty bearer token
 * would be an open door.
 */
export function resolvePeerToken(
  configToken?: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
): ResolvedPeerToken {
  const fromEnv = env[PEER_TOKEN_ENV];
  const token = nonEmpty(fromEnv) ?? nonEmpty(configToken) ?? DEV_PEER_TOKEN;
  return { token, isDevToken: token === DEV_PEER_TOKEN };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value !== undefined && value.trim() !== '' ? value : undefined;
}

/**
 * Whether a peer URL's host is this machine's loopback: 127.0.0.0/8, ::1 or `localhost`. The URL is
 * parsed first, so every spelling WHATWG URL canonicalizes (127.1, 0x7f.0.0.1, [0:0::1]) counts as
 * what it is; anything else, 0.0.0.0 (every interface) included, is reachable from elsewhere.
 */
export function isLoopbackUrl(url: string): boolean {
  let host: string;
  try {
    host = new URL(url).hostname;
  } catch {
    return false;
  }
  if (host === 'localhost' || host === '[::1]') return true;
  return isIPv4(host) && host.startsWith('127.');
}

/**
 * Why a node must not start with this token, or undefined when it may. The development token is
 * public, so it may only guard a cluster nobody else can reach: every node's peer URL on loopback
 * (what `npm start` runs). One non-loopback peer URL is enough to refuse, on every node: a node
 * whose own port is on loopback would still send the public token to, and accept it from, the
 * others. The caller refuses to start with the returned message (exit code 2).
 */
export function devTokenRefusal(
  resolved: ResolvedPeerToken,
  nodes: readonly { readonly id: string; readonly peerUrl: string }[],
): string | undefined {
  if (!resolved.isDevToken) return undefined;
  const exposed = nodes.filter((node) => !isLoopbackUrl(node.peerUrl));
  if (exposed.length === 0) return undefined;
  const listed = exposed.map((node) => `${node.id} at ${node.peerUrl}`).join(', ');
  return (
    `refusing to start with the built-in development peer token: it is public, and the cluster config puts ` +
    `peer ports on addresses other machines can reach (${listed}), so anyone could join or disrupt the cluster. ` +
    `Set ${PEER_TOKEN_ENV} to the same long random secret on every node (for example the output of ` +
    '`openssl rand -hex 32`) and start the nodes again. Only a cluster whose peer URLs are all loopback ' +
    '(127.0.0.0/8, ::1, localhost) may run with the development token.'
  );
}
