// GET /cluster/join-info on the client port: what a new node needs to join the cluster (its id, the
// members with their addresses and roles, the Raft timings and the limits every node must share),
// read after a linearizable read barrier, so it is never older than a change acknowledged before.
//
// Not an admin route: a node that is about to join asks it, with the cluster's peer token
// (`Authorization: Bearer <peer token>`, compared in constant time; 401 otherwise), which it must
// hold anyway to talk to its peers. It answers nothing secret: never the peer token. With the
// built-in development peer token (public) it also answers only loopback clients (403), as that
// token is only allowed when every node is on this machine.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { Limits, RaftTiming } from '../config/cluster-config.js';
import type { Membership } from '../storage/members.js';
import { isLoopbackAddress, type PeerToken } from './admin-auth.js';
import { bearerToken, Secret } from './bearer.js';
import { readFailureAnswer, sendErrorAnswer, type ErrorAnswer } from './errors.js';
import { memberViews } from './members.js';

export const JOIN_INFO_PATH = '/cluster/join-info';

export interface JoinInfoOptions {
  readonly clusterId: string;
  /** The cluster config's raft section (defaults applied). */
  readonly raft: RaftTiming;
  /** The cluster config's limits (defaults applied). */
  readonly limits: Limits;
  readonly peerToken: PeerToken;
  readonly node: { readonly membership: Membership; readBarrier(): Promise<number> };
}

export function registerJoinInfoRoute<L extends FastifyBaseLogger>(
  app: FastifyInstance<Server, IncomingMessage, ServerResponse, L>,
  options: JoinInfoOptions,
): void {
  const secret = new Secret(options.peerToken.token);

  const refusal = (remoteAddress: string | undefined, authorization: string | undefined): ErrorAnswer | undefined => {
    const presented = bearerToken(authorization);
    if (presented === undefined || !secret.matches(presented)) {
      return {
        status: 401,
        error: 'unauthorized',
        message: `${JOIN_INFO_PATH} needs Authorization: Bearer <the cluster's peer token> (RAFTKV_PEER_TOKEN)`,
        headers: { 'www-authenticate': 'Bearer realm="raftkv-peer"' },
      };
    }
    if (options.peerToken.isDevToken && !isLoopbackAddress(remoteAddress)) {
      return {
        status: 403,
        error: 'forbidden',
        message:
          'this cluster runs on the built-in development peer token, which is public: it answers join requests from this machine only. Set RAFTKV_PEER_TOKEN on every node',
      };
    }
    return undefined;
  };

  app.get(JOIN_INFO_PATH, async (request, reply) => {
    const refused = refusal(request.raw.socket?.remoteAddress, request.headers.authorization);
    if (refused !== undefined) return sendErrorAnswer(reply, refused);
    try {
      await options.node.readBarrier();
    } catch (error) {
      const answer = readFailureAnswer(error as Error);
      if (answer === undefined) throw error;
      return sendErrorAnswer(reply, answer);
    }
    return reply.send({
      clusterId: options.clusterId,
      members: memberViews(options.node.membership),
      raft: { ...options.raft },
      limits: { ...options.limits },
    });
  });
}
