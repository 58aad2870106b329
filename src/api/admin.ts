// The admin API of the client port: the cluster's membership and leadership. Admin-only
// (admin-auth.ts); JSON in and out; every error is {error, message}.
//
//   GET    /members                  200 {"members":[{id, clientUrl, peerUrl, role}]} after a read barrier
//   POST   /members  {id, clientUrl, peerUrl}    adds a learner: 200 {"index", "members"} once applied
//   POST   /members/<id>/promote     a caught-up learner becomes a voter: 200 {"index", "members"}
//   DELETE /members/<id>             removes a member: 200 {"index", "members"}
//   POST   /leader/transfer  {"to": id} | {}     200 {"leader", "term"} once the target leads
//
// Any node answers. GET /members reads the membership this node applied, after a linearizable read
// barrier. Everything else is the leader's to decide (its membership is the newest, only it knows how
// far behind a learner is, only it can hand leadership over), so a follower forwards it there, once,
// vouching for the client with the cluster's peer token (admin-auth.ts); a forwarded request that
// reaches a non-leader gets 503.
//
// 400 is a request that is wrong whatever the cluster looks like (a malformed body, an id or URL that
// breaks the rules of the cluster config); 404 names no member; 409 conflicts with the membership as
// it is (an id in use or removed before, an address in use, the only voter, a learner not caught up,
// another change not applied yet: `change_in_progress`, retry).
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { checkNodeUrl } from '../config/cluster-config.js';
import type { WriteResult } from '../node/apply-waiters.js';
import { MembershipChangeError, NotLeaderError } from '../node/errors.js';
import { mostUpToDateFollower } from '../node/raft-node.js';
import type { RaftStatus } from '../raft/core.js';
import type { SoftState, TransferResult } from '../raft/types.js';
import { SchemaValidationError } from '../schema/fastify-validation.js';
import type { MemberChange, Membership } from '../storage/members.js';
import { AdminAuth, type PeerToken } from './admin-auth.js';
import { readFailureAnswer, REMOVED, sendError, sendErrorAnswer, writeFailureAnswer } from './errors.js';
import { ADMIN_VOUCH_HEADER, FORWARDED_HEADER, Forwarder } from './forward.js';
import { awaitTransfer } from './leader-transfer.js';
import { memberClientUrl, memberViews } from './members.js';
import { adminSchemas } from './schemas.js';

/** An admin body is a few hundred bytes of JSON; whatever the limit on values is (it may be 0). */
export const ADMIN_BODY_LIMIT = 16 * 1024;

/** What the admin routes need from the node (RaftNode in production; fakes in tests). */
export interface AdminNode {
  readonly softState: SoftState;
  /** This node applied its own removal: it serves nothing, and forwards nothing either. */
  readonly isRemoved: boolean;
  readonly membership: Membership;
  readBarrier(): Promise<number>;
  changeMembership(change: MemberChange): Promise<WriteResult>;
  lagOf(id: string): number | null;
  transferLeadership(target: string): TransferResult;
  status(): RaftStatus;
}

export interface AdminRoutesOptions {
  readonly nodeId: string;
  readonly node: AdminNode;
  /** RAFTKV_ADMIN_TOKEN, or undefined: loopback only. */
  readonly adminToken: string | undefined;
  /** The cluster's peer token: a follower vouches with it for the admin requests it forwards. */
  readonly peerToken: PeerToken;
  /** A node's client URL where the membership has none (the cluster config's). */
  readonly clientUrlOf: (id: string) => string | undefined;
  /** limits.promoteMaxLagEntries: a learner further behind the leader's log is not promoted. */
  readonly promoteMaxLagEntries: number;
  /** raft.tickMs * raft.electionTicks. */
  readonly electionTimeoutMs: number;
  readonly tickMs: number;
  /** limits.writeTimeoutMs: how long a membership change may take before 504 (it bounds forwarding too). */
  readonly writeTimeoutMs: number;
  readonly logger: Logger;
}

/** Registers the admin routes on the client API (before it listens); generic in the app's logger type. */
export function registerAdminRoutes<L extends FastifyBaseLogger>(
  app: FastifyInstance<Server, IncomingMessage, ServerResponse, L>,
  options: AdminRoutesOptions,
): void {
  const { node, nodeId } = options;
  const log = options.logger.child({ component: 'admin' });
  const auth = new AdminAuth(options.adminToken, options.peerToken).hook();
  const transferWaitMs = 2 * options.electionTimeoutMs;
  // A forwarded request waits at most as long as the leader does, plus a second for the hop.
  const forwarder = new Forwarder(nodeId, Math.max(options.writeTimeoutMs, transferWaitMs) + 1000);
  const vouching = { [ADMIN_VOUCH_HEADER]: options.peerToken.token };

  /** On a follower: to the leader, once; a request forwarded already is answered 503 here. */
  const toLeader = (
    request: FastifyRequest,
    reply: FastifyReply,
    leader: string = node.softState.leader,
  ): Promise<FastifyReply> | FastifyReply => {
    // What a removed node believes about the leader is stale: it must not speak for the client.
    if (node.isRemoved) return sendErrorAnswer(reply, REMOVED);
    if (request.headers[FORWARDED_HEADER] !== undefined) {
      return sendError(
        reply,
        503,
        'not_leader',
        `this node is not the leader${leader === '' ? '' : ` (the leader is ${leader})`} and the request was already forwarded once; retry`,
        { 'retry-after': '1', ...(leader === '' ? {} : { 'x-raft-leader': leader }) },
      );
    }
    const url =
      leader === '' || leader === nodeId ? undefined : memberClientUrl(node.membership, leader, options.clientUrlOf);
    if (url === undefined) {
      return sendError(
        reply,
        503,
        'no_leader',
        'no leader is known right now (an election may be under way); retry shortly',
        {
          'retry-after': '1',
        },
      );
    }
    // The body was parsed (and checked) here: the leader gets it as JSON again.
    const body = request.body == null ? undefined : Buffer.from(JSON.stringify(request.body));
    return forwarder.forward(request, reply, url, {
      headers: { ...vouching, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body }),
    });
  };

  /** Proposes `change` on the leader and answers once it is applied. */
  const propose = async (request: FastifyRequest, reply: FastifyReply, change: MemberChange): Promise<FastifyReply> => {
    log.info(
      { change, remote: request.raw.socket?.remoteAddress, forwardedBy: request.headers[FORWARDED_HEADER] },
      'membership change requested',
    );
    let result: WriteResult;
    try {
      result = await node.changeMembership(change);
    } catch (error) {
      if (error instanceof NotLeaderError) return toLeader(request, reply, error.leader);
      if (error instanceof MembershipChangeError) {
        return error.kind === 'conflict'
          ? sendError(reply, 409, 'change_in_progress', error.message, { 'retry-after': '1' })
          : sendError(reply, 409, 'conflict', error.message);
      }
      const answer = writeFailureAnswer(error as Error);
      if (answer === undefined) throw error;
      return sendErrorAnswer(reply, answer);
    }
    return reply
      .headers({ 'x-raft-index': String(result.index), 'x-raft-term': String(result.term) })
      .send({ index: result.index, members: memberViews(node.membership) });
  };

  const unknownMember = (reply: FastifyReply, id: string): FastifyReply =>
    sendError(
      reply,
      404,
      'unknown_member',
      node.membership.removed.includes(id)
        ? `${id} was removed from the cluster (an id is never used again); see GET /members`
        : `${id} is not a member of the cluster; see GET /members`,
    );

  void app.register(async (plain) => {
    const scope = plain.withTypeProvider<TypeBoxTypeProvider>();
    // Bodies are JSON whatever their content type says (`curl -d` sends a form); an empty one is
    // none at all (null, as Fastify leaves a request without a body).
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'string', bodyLimit: ADMIN_BODY_LIMIT }, (_request, body, done) => {
      const text = String(body);
      if (text.trim() === '') return done(null, null);
      try {
        done(null, JSON.parse(text));
      } catch {
        done(Object.assign(new Error('the body must be JSON, e.g. {"to":"n2"}'), { statusCode: 400 }), undefined);
      }
    });
    scope.setErrorHandler((error: Error & { statusCode?: number; code?: string }, _request, reply) => {
      if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE')
        return sendError(reply, 413, 'body_too_large', `an admin request's body is at most ${ADMIN_BODY_LIMIT} bytes`);
      if (error instanceof SchemaValidationError)
        return sendError(reply, 400, error.errorCode ?? 'bad_request', error.message);
      const status = error.statusCode ?? 500;
      if (status >= 500) log.error({ err: error }, 'admin API error');
      return sendError(reply, status, status >= 500 ? 'internal' : 'bad_request', error.message);
    });

    scope.get('/members', { onRequest: auth }, async (_request, reply) => {
      try {
        await node.readBarrier();
      } catch (error) {
        const answer = readFailureAnswer(error as Error);
        if (answer === undefined) throw error;
        return sendErrorAnswer(reply, answer);
      }
      return reply.send({ members: memberViews(node.membership) });
    });

    scope.post(
      '/members',
      { onRequest: auth, schema: { body: adminSchemas.addMemberBody } },
      async (request, reply) => {
        const { id } = request.body;
        const clientUrl = checkNodeUrl(request.body.clientUrl);
        if ('problem' in clientUrl) return sendError(reply, 400, 'bad_request', `body/clientUrl ${clientUrl.problem}`);
        const peerUrl = checkNodeUrl(request.body.peerUrl);
        if ('problem' in peerUrl) return sendError(reply, 400, 'bad_request', `body/peerUrl ${peerUrl.problem}`);
        if (clientUrl.url === peerUrl.url) {
          return sendError(
            reply,
            400,
            'bad_request',
            `body/peerUrl must differ from body/clientUrl, got "${peerUrl.url}" for both`,
          );
        }
        if (node.softState.role !== 'leader') return toLeader(request, reply);
        return propose(request, reply, {
          type: 'addLearner',
          node: id,
          clientUrl: clientUrl.url,
          peerUrl: peerUrl.url,
        });
      },
    );

    scope.post('/members/:id/promote', { onRequest: auth }, async (request, reply) => {
      const id = (request.params as { id: string }).id;
      if (node.softState.role !== 'leader') return toLeader(request, reply);
      const member = node.membership.members.find((m) => m.id === id);
      if (member === undefined) return unknownMember(reply, id);
      if (member.role !== 'learner') return sendError(reply, 409, 'not_a_learner', `${id} is already a voter`);
      const behind = caughtUp(id);
      if (behind !== null) return sendError(reply, 409, 'not_caught_up', behind, { 'retry-after': '1' });
      return propose(request, reply, { type: 'promote', node: id });
    });

    scope.delete('/members/:id', { onRequest: auth }, async (request, reply) => {
      const id = (request.params as { id: string }).id;
      if (node.softState.role !== 'leader') return toLeader(request, reply);
      if (!node.membership.members.some((m) => m.id === id)) return unknownMember(reply, id);
      const lost = quorumLostWithout(id);
      if (lost !== null) return sendError(reply, 409, 'would_lose_quorum', lost, { 'retry-after': '1' });
      return propose(request, reply, { type: 'remove', node: id });
    });

    scope.post(
      '/leader/transfer',
      {
        onRequest: auth,
        // No body is {}: `curl -X POST .../leader/transfer` asks for the most up-to-date voter.
        preValidation: async (request) => {
          request.body ??= {};
        },
        schema: { body: adminSchemas.transferBody },
      },
      async (request, reply) => {
        if (node.softState.role !== 'leader') return toLeader(request, reply);
        const to = request.body.to;
        let target: string;
        if (to === undefined) {
          const best = mostUpToDateFollower(node.status());
          if (best === null) {
            return sendError(
              reply,
              503,
              'no_transfer_target',
              'no voter but the leader was heard from within the last election timeout: there is no one to hand leadership to',
              { 'retry-after': '1' },
            );
          }
          target = best;
        } else {
          const member = node.membership.members.find((m) => m.id === to);
          if (member === undefined) return unknownMember(reply, to);
          if (member.role !== 'voter')
            return sendError(reply, 409, 'not_a_voter', `${to} is a learner: only a voter can lead (promote it first)`);
          target = to;
        }
        if (target === nodeId) return reply.send({ leader: nodeId, term: node.softState.term });
        const started = node.transferLeadership(target);
        if (!started.ok) {
          if (started.error === 'not-leader') return toLeader(request, reply);
          return sendError(reply, 409, 'not_a_voter', `${target} is not a voter of the configuration in force`);
        }
        log.info({ to: target, remote: request.raw.socket?.remoteAddress }, 'leadership transfer requested');
        const outcome = await awaitTransfer(() => node.softState, nodeId, target, transferWaitMs, options.tickMs);
        switch (outcome.kind) {
          case 'done':
            return reply.send({ leader: target, term: outcome.term });
          case 'other':
            return sendError(
              reply,
              503,
              'transfer_failed',
              `${outcome.leader} became the leader (term ${outcome.term}), not ${target}; retry if it must be ${target}`,
              { 'retry-after': '1', 'x-raft-leader': outcome.leader },
            );
          case 'not-moved':
            return sendError(
              reply,
              503,
              'transfer_failed',
              `${target} did not take over within ${transferWaitMs} ms (is it reachable and caught up?); ${nodeId} is still the leader`,
              { 'retry-after': '1' },
            );
          case 'no-leader':
            return sendError(
              reply,
              504,
              'transfer_unknown',
              `no leader is known ${transferWaitMs} ms after the transfer to ${target} began: an election is under way; see GET /status shortly`,
            );
        }
      },
    );
  });

  app.addHook('onClose', async () => forwarder.close());

  /** Why learner `id` may not be promoted yet (a sentence), or null when it is caught up. */
  /**
   * Why removing `id` would leave a configuration whose live voters are not a majority (null when it
   * would not): the removal itself commits under the old configuration, and then nothing could
   * commit any more until the voters that are down came back. etcd's strict reconfiguration check.
   * Live: this leader, and each voter heard from within the last election timeout.
   */
  function quorumLostWithout(id: string): string | null {
    const voters = node.membership.members.filter((m) => m.role === 'voter' && m.id !== id).map((m) => m.id);
    // A learner (the voters stay), or the only voter (the core refuses that, saying so).
    if (voters.length === 0 || voters.length === node.membership.members.filter((m) => m.role === 'voter').length) {
      return null;
    }
    const progress = node.status().progress ?? {};
    const live = voters.filter((v) => v === options.nodeId || progress[v]?.recentActive === true);
    const majority = Math.floor(voters.length / 2) + 1;
    if (live.length >= majority) return null;
    const down = voters.filter((v) => !live.includes(v));
    return (
      `removing ${id} would leave ${voters.length} voters (${voters.join(', ')}) of which only ${live.length} ` +
      `(${live.join(', ') || 'none'}) were heard from within the last election timeout, fewer than the ${majority} a ` +
      `majority needs: the cluster could commit nothing after it. Bring ${down.join(', ')} back first, or remove a voter that is down`
    );
  }

  function caughtUp(id: string): string | null {
    const lag = node.lagOf(id);
    const progress = node.status().progress?.[id];
    if (lag === null || progress === undefined) return `the leader tracks no replication to ${id} yet; retry shortly`;
    if (!progress.recentActive) {
      return `the leader has not heard from ${id} within the last election timeout: is it running, and can it reach the other nodes' peer ports?`;
    }
    if (progress.match === 0) {
      // Nothing acknowledged yet: a joiner still waiting for (or receiving) its first snapshot,
      // however short the log is.
      return `${id} has not acknowledged any entry yet (it is receiving its first snapshot, or has not started): wait for it to catch up and retry`;
    }
    if (lag > options.promoteMaxLagEntries) {
      return (
        `${id} is ${lag} entries behind the leader's log; a learner is promoted at most ${options.promoteMaxLagEntries} entries behind ` +
        `(limits.promoteMaxLagEntries): wait for it to catch up (GET /status shows its lagEntries) and retry`
      );
    }
    return null;
  }
}
