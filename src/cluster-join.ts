// Joining a running cluster (`--join <a member's client URL>`): the new node learns the cluster id,
// its members and their settings from the cluster itself (GET /cluster/join-info, authenticated with
// the peer token), waits until an operator has added it (POST /members: it shows up as a learner),
// and then starts empty: the leader sends it a snapshot, then the log.
import type { Logger } from 'pino';
import { ConfigError, parseClusterConfig, type ClusterConfig } from './config/cluster-config.js';

/** What GET /cluster/join-info answers. */
export interface JoinInfo {
  readonly clusterId: string;
  readonly members: readonly { id: string; clientUrl: string; peerUrl: string; role: string }[];
  readonly raft: Record<string, unknown>;
  readonly limits: Record<string, unknown>;
}

export interface JoinRequest {
  readonly joinUrl: string;
  readonly id: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly dataDir: string;
  readonly token: string;
}

/** Join info from one member; throws with a sentence an operator can act on. */
export async function fetchJoinInfo(joinUrl: string, token: string): Promise<JoinInfo> {
  let response: Response;
  try {
    response = await fetch(new URL('/cluster/join-info', joinUrl), {
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(5000),
    });
  } catch (error) {
    throw new ConfigError(
      `cannot reach ${joinUrl} to join the cluster (${(error as Error).message}): is a member running there?`,
    );
  }
  if (response.status === 401) {
    throw new ConfigError(`${joinUrl} refused the peer token: set RAFTKV_PEER_TOKEN to the cluster's secret`);
  }
  if (!response.ok) throw new ConfigError(`${joinUrl} answered ${response.status} to GET /cluster/join-info`);
  const info = (await response.json()) as Partial<JoinInfo>;
  if (typeof info.clusterId !== 'string' || !Array.isArray(info.members)) {
    throw new ConfigError(`${joinUrl} answered GET /cluster/join-info with something that is not join info`);
  }
  return info as JoinInfo;
}

/**
 * The join info once `request.id` is a member (with these addresses), polling until then: an
 * operator adds it with POST /members. Logs what to run, once, then every minute.
 */
export async function waitUntilAdded(request: JoinRequest, logger: Logger, pollMs = 1000): Promise<JoinInfo> {
  let lastSaid = 0;
  for (;;) {
    const info = await fetchJoinInfo(request.joinUrl, request.token).catch((error: Error) => {
      logger.warn({ err: error.message }, 'could not fetch the join info; retrying');
      return null;
    });
    const self = info?.members.find((m) => m.id === request.id);
    if (info !== null && self !== undefined) {
      if (self.clientUrl !== request.clientUrl || self.peerUrl !== request.peerUrl) {
        throw new ConfigError(
          `${request.id} is a member with other addresses (client ${self.clientUrl}, peer ${self.peerUrl}), not ` +
            `${request.clientUrl} and ${request.peerUrl}: start it with those, or join as a new member with a new id`,
        );
      }
      return info;
    }
    if (Date.now() - lastSaid > 60_000) {
      lastSaid = Date.now();
      logger.info(
        { cluster: info?.clusterId },
        `waiting to be added to the cluster: run curl -X POST ${request.joinUrl}/members -d ` +
          `'{"id":"${request.id}","clientUrl":"${request.clientUrl}","peerUrl":"${request.peerUrl}"}' (from a loopback ` +
          'address of that member, or with the admin token)',
      );
    }
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

/** A cluster config for a joining node: the members and settings the cluster told it, its own data dir. */
export function configFromJoinInfo(info: JoinInfo, request: JoinRequest, baseDir: string): ClusterConfig {
  const nodes = info.members.map((m) => ({
    id: m.id,
    clientUrl: m.clientUrl,
    peerUrl: m.peerUrl,
    dataDir: m.id === request.id ? request.dataDir : `(${m.id}'s own)`,
  }));
  return parseClusterConfig(
    { clusterId: info.clusterId, nodes, raft: info.raft, limits: info.limits },
    baseDir,
    `the join info from ${request.joinUrl}`,
  );
}
