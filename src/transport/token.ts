// The peer token: a shared secret every node of a cluster presents as `Authorization: Bearer` on the
// peer port. It is resolved once at startup; the built-in development token is public (it is in
// this file), so the caller must warn loudly whenever `isDevToken` is true.

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
