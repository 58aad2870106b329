// GET /cluster/join-info (src/api/join-info.ts): what a joining node needs, behind the cluster's peer
// token (not the admin token); never the token itself.
import { afterEach, describe, expect, it } from 'vitest';
import type { ClientApi } from '../../src/api/client-api.js';
import { DEFAULT_LIMITS, DEFAULT_TIMING } from '../../src/config/cluster-config.js';
import { NotLeaderError } from '../../src/node/errors.js';
import { buildTestAdminApi, FakeNode, TEST_PEER_TOKEN, threeVoters } from './fakes.js';

const ADMIN_TOKEN = 'admin-token-not-for-join-info';

let app: ClientApi | undefined;
let node: FakeNode;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

function build(isDevToken = false): ClientApi {
  node = new FakeNode();
  app = buildTestAdminApi(node, { adminToken: ADMIN_TOKEN, peerToken: { token: TEST_PEER_TOKEN, isDevToken } });
  return app;
}

describe('GET /cluster/join-info', () => {
  it('answers the cluster id, the members, the raft section and the limits after a read barrier, to the peer token', async () => {
    const api = build();
    node.membership = { ...threeVoters(), removed: ['n0'] };
    const res = await api.inject({
      method: 'GET',
      url: '/cluster/join-info',
      remoteAddress: '10.0.0.4',
      headers: { authorization: `Bearer ${TEST_PEER_TOKEN}` },
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      clusterId: 'c',
      members: threeVoters().members,
      raft: { ...DEFAULT_TIMING },
      limits: { ...DEFAULT_LIMITS },
    });
    expect(res.body).not.toContain(TEST_PEER_TOKEN);
    expect(node.barriers).toBe(1);
  });

  it('refuses with 401 (and a challenge) without the peer token, with another token, or with the admin token', async () => {
    const api = build();
    for (const authorization of [
      undefined,
      `Bearer ${TEST_PEER_TOKEN}x`,
      `Basic ${TEST_PEER_TOKEN}`,
      `Bearer ${ADMIN_TOKEN}`,
    ]) {
      const res = await api.inject({
        method: 'GET',
        url: '/cluster/join-info',
        ...(authorization === undefined ? {} : { headers: { authorization } }),
      });
      expect(res.statusCode, String(authorization)).toBe(401);
      expect(res.headers['www-authenticate']).toMatch(/^Bearer /);
      expect(res.json()).toEqual({
        error: 'unauthorized',
        message: expect.stringContaining("the cluster's peer token"),
      });
    }
    expect(node.barriers).toBe(0);
  });

  it('with the public development peer token, answers this machine only (403 from elsewhere)', async () => {
    const api = build(true);
    const headers = { authorization: `Bearer ${TEST_PEER_TOKEN}` };
    const far = await api.inject({ method: 'GET', url: '/cluster/join-info', remoteAddress: '10.0.0.4', headers });
    expect(far.statusCode).toBe(403);
    expect(far.json()).toMatchObject({ error: 'forbidden' });
    const near = await api.inject({ method: 'GET', url: '/cluster/join-info', headers });
    expect(near.statusCode).toBe(200);
  });

  it('503 when the read barrier fails (no leader: nobody could add the node anyway)', async () => {
    const api = build();
    node.readOutcome = () => Promise.reject(new NotLeaderError(''));
    const res = await api.inject({
      method: 'GET',
      url: '/cluster/join-info',
      headers: { authorization: `Bearer ${TEST_PEER_TOKEN}` },
    });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ error: 'no_leader' });
  });
});
