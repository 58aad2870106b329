// Admin requests on a follower go to the leader (src/api/admin.ts, forward.ts), and the leader takes
// them on the follower's word only when it vouches with the cluster's peer token (admin-auth.ts):
// two client APIs over fake nodes on real loopback listeners, and inject() for what a socket on
// loopback cannot show (a forwarded request from another machine).
import { afterEach, describe, expect, it } from 'vitest';
import type { ClientApi } from '../../src/api/client-api.js';
import { ADMIN_VOUCH_HEADER, FORWARDED_HEADER } from '../../src/api/forward.js';
import { buildTestAdminApi, FakeNode, progressOf, TEST_PEER_TOKEN, threeVoters } from './fakes.js';

const ADMIN_TOKEN = 'admin-token-for-forwarding-tests';
const N4 = { id: 'n4', clientUrl: 'http://127.0.0.1:7004', peerUrl: 'http://127.0.0.1:7104' };

const apps: ClientApi[] = [];
afterEach(async () => {
  for (const app of apps.splice(0)) await app.close();
});

interface Pair {
  readonly leader: FakeNode;
  readonly follower: FakeNode;
  /** The headers of every request that reached the leader's listener. */
  readonly seen: Record<string, string | string[] | undefined>[];
  readonly followerUrl: string;
}

/**
 * n1 leads on a real listener; n2 follows on another and knows n1's client URL from its membership.
 * `leaderPeerToken`: the peer token n1 believes in (another one than n2's, to show the vouching is checked).
 */
async function pair(options: { adminToken?: string; leaderPeerToken?: string } = {}): Promise<Pair> {
  const leader = new FakeNode();
  const leaderApp = buildTestAdminApi(leader, {
    nodeId: 'n1',
    ...(options.adminToken === undefined ? {} : { adminToken: options.adminToken }),
    peerToken: { token: options.leaderPeerToken ?? TEST_PEER_TOKEN, isDevToken: false },
  });
  apps.push(leaderApp);
  const seen: Pair['seen'] = [];
  leaderApp.addHook('onRequest', async (request) => {
    seen.push({ ...request.headers });
  });
  const leaderUrl = await leaderApp.listen({ host: '127.0.0.1', port: 0 });

  const follower = new FakeNode();
  follower.softState = { role: 'follower', leader: 'n1', term: 2 };
  const members = threeVoters().members.map((m) => (m.id === 'n1' ? { ...m, clientUrl: leaderUrl } : m));
  follower.membership = { members, removed: [] };
  const followerApp = buildTestAdminApi(follower, {
    nodeId: 'n2',
    ...(options.adminToken === undefined ? {} : { adminToken: options.adminToken }),
  });
  apps.push(followerApp);
  const followerUrl = await followerApp.listen({ host: '127.0.0.1', port: 0 });
  return { leader, follower, seen, followerUrl };
}

async function call(
  url: string,
  method: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: unknown }> {
  const res = await fetch(url, {
    method,
    headers,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, json: await res.json() };
}

describe('a follower forwards admin requests to the leader, vouching for them', () => {
  it('POST /members: the leader makes the change; the answer comes back through the follower', async () => {
    const { leader, follower, seen, followerUrl } = await pair();
    const res = await call(`${followerUrl}/members`, 'POST', N4);
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ index: 8, members: [...threeVoters().members, { ...N4, role: 'learner' }] });
    expect(leader.changes).toEqual([{ type: 'addLearner', node: 'n4', clientUrl: N4.clientUrl, peerUrl: N4.peerUrl }]);
    expect(follower.changes).toEqual([]);
    expect(seen).toHaveLength(1);
    expect(seen[0]?.[FORWARDED_HEADER]).toBe('n2');
    expect(seen[0]?.[ADMIN_VOUCH_HEADER]).toBe(TEST_PEER_TOKEN);
    expect(seen[0]?.['content-type']).toBe('application/json');
  });

  it('promote, remove and leader transfer go to the leader too; GET /members is answered where it is asked', async () => {
    const { leader, follower, seen, followerUrl } = await pair();
    leader.membership = { members: [...threeVoters().members, { ...N4, role: 'learner' }], removed: [] };
    leader.progress = { ...leader.progress, n4: progressOf(7, { learner: true }) };
    expect((await call(`${followerUrl}/members/n4/promote`, 'POST')).status).toBe(200);
    expect((await call(`${followerUrl}/members/n3`, 'DELETE')).status).toBe(200);
    const transfer = await call(`${followerUrl}/leader/transfer`, 'POST', { to: 'n2' });
    expect(transfer).toEqual({ status: 200, json: { leader: 'n2', term: 3 } });
    expect(leader.changes).toEqual([
      { type: 'promote', node: 'n4' },
      { type: 'remove', node: 'n3' },
    ]);
    expect(leader.transfers).toEqual(['n2']);
    expect(seen).toHaveLength(3);
    const members = await call(`${followerUrl}/members`, 'GET');
    expect(members).toEqual({ status: 200, json: { members: follower.membership.members } });
    expect(follower.barriers).toBe(1);
    expect(seen).toHaveLength(3);
  });

  it("a refusal of the leader's comes back as it is", async () => {
    const { followerUrl } = await pair();
    const res = await call(`${followerUrl}/members/n7/promote`, 'POST');
    expect(res).toEqual({
      status: 404,
      json: { error: 'unknown_member', message: 'n7 is not a member of the cluster; see GET /members' },
    });
  });

  it("passes the client's Authorization through: with an admin token on both nodes, the leader checks it too", async () => {
    const { leader, seen, followerUrl } = await pair({ adminToken: ADMIN_TOKEN });
    const refused = await call(`${followerUrl}/members`, 'POST', N4);
    expect(refused.status).toBe(401);
    expect(seen).toHaveLength(0); // the follower refused it: nothing was forwarded
    const res = await call(`${followerUrl}/members`, 'POST', N4, { authorization: `Bearer ${ADMIN_TOKEN}` });
    expect(res.status).toBe(200);
    expect(seen[0]?.['authorization']).toBe(`Bearer ${ADMIN_TOKEN}`);
    expect(leader.changes).toHaveLength(1);
  });

  it('the leader refuses a forwarded request whose vouching is not its peer token (403), and changes nothing', async () => {
    const { leader, seen, followerUrl } = await pair({ leaderPeerToken: 'another-cluster-peer-token' });
    const res = await call(`${followerUrl}/members`, 'POST', N4);
    expect(res.status).toBe(403);
    expect(res.json).toMatchObject({ error: 'forbidden', message: expect.stringContaining(ADMIN_VOUCH_HEADER) });
    expect(seen).toHaveLength(1);
    expect(leader.changes).toEqual([]);
  });

  it("never passes a client's own vouching header on: only the forwarding node writes it", async () => {
    const { seen, followerUrl } = await pair();
    const res = await call(`${followerUrl}/members`, 'POST', N4, { [ADMIN_VOUCH_HEADER]: 'forged' });
    expect(res.status).toBe(200);
    expect(seen[0]?.[ADMIN_VOUCH_HEADER]).toBe(TEST_PEER_TOKEN);
  });

  it('a node that applied its own removal forwards nothing: 503 removed', async () => {
    const { follower, seen, followerUrl } = await pair();
    follower.isRemoved = true;
    for (const [method, path] of [
      ['POST', '/members/n4/promote'],
      ['DELETE', '/members/n3'],
      ['POST', '/leader/transfer'],
    ] as const) {
      const res = await call(`${followerUrl}${path}`, method);
      expect(res.status, `${method} ${path}`).toBe(503);
      expect(res.json).toMatchObject({ error: 'removed' });
    }
    expect(seen).toHaveLength(0);
  });

  it('a leader that cannot be reached: 503 leader_unreachable for a change that never left', async () => {
    const follower = new FakeNode();
    follower.softState = { role: 'follower', leader: 'n1', term: 2 };
    // Port 1 on loopback: nothing listens there, the connection is refused.
    follower.membership = {
      members: threeVoters().members.map((m) => (m.id === 'n1' ? { ...m, clientUrl: 'http://127.0.0.1:1' } : m)),
      removed: [],
    };
    const app = buildTestAdminApi(follower, { nodeId: 'n2' });
    apps.push(app);
    const res = await app.inject({ method: 'POST', url: '/members', payload: N4 });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ error: 'leader_unreachable' });
  });
});

describe('the leader accepts a forwarded admin request only with a valid vouching', () => {
  function leaderApi(options: { adminToken?: string; isDevToken?: boolean } = {}): {
    app: ClientApi;
    node: FakeNode;
  } {
    const node = new FakeNode();
    const app = buildTestAdminApi(node, {
      ...(options.adminToken === undefined ? {} : { adminToken: options.adminToken }),
      peerToken: { token: TEST_PEER_TOKEN, isDevToken: options.isDevToken ?? false },
    });
    apps.push(app);
    return { app, node };
  }
  const forwarded = (vouch?: string, extra: Record<string, string> = {}) => ({
    [FORWARDED_HEADER]: 'n2',
    ...(vouch === undefined ? {} : { [ADMIN_VOUCH_HEADER]: vouch }),
    ...extra,
  });

  it('from another machine: accepted with the peer token, refused (403) without it or with another', async () => {
    const { app, node } = leaderApi();
    const from = '10.0.0.2';
    for (const headers of [forwarded(), forwarded('wrong-token'), forwarded(`${TEST_PEER_TOKEN}x`)]) {
      const res = await app.inject({ method: 'POST', url: '/members', payload: N4, remoteAddress: from, headers });
      expect(res.statusCode, JSON.stringify(headers)).toBe(403);
      expect(res.json()).toMatchObject({ error: 'forbidden' });
    }
    expect(node.changes).toEqual([]);
    const res = await app.inject({
      method: 'POST',
      url: '/members',
      payload: N4,
      remoteAddress: from,
      headers: forwarded(TEST_PEER_TOKEN),
    });
    expect(res.statusCode).toBe(200);
    expect(node.changes).toHaveLength(1);
  });

  it('never without it, even from loopback: the claim to be forwarded alone proves nothing', async () => {
    const { app, node } = leaderApi();
    const res = await app.inject({ method: 'DELETE', url: '/members/n3', headers: forwarded() });
    expect(res.statusCode).toBe(403);
    const members = await app.inject({ method: 'GET', url: '/members', headers: forwarded('nope') });
    expect(members.statusCode).toBe(403);
    expect(node.changes).toEqual([]);
    expect(node.barriers).toBe(0);
  });

  it("a vouching does not replace the leader's own admin token", async () => {
    const { app, node } = leaderApi({ adminToken: ADMIN_TOKEN });
    const from = '10.0.0.2';
    let res = await app.inject({
      method: 'DELETE',
      url: '/members/n3',
      remoteAddress: from,
      headers: forwarded(TEST_PEER_TOKEN),
    });
    expect(res.statusCode).toBe(401);
    res = await app.inject({
      method: 'DELETE',
      url: '/members/n3',
      remoteAddress: from,
      headers: forwarded(TEST_PEER_TOKEN, { authorization: `Bearer ${ADMIN_TOKEN}` }),
    });
    expect(res.statusCode).toBe(200);
    expect(node.changes).toEqual([{ type: 'remove', node: 'n3' }]);
  });

  it('the public development peer token vouches for nothing: the loopback check still applies', async () => {
    const { app, node } = leaderApi({ isDevToken: true });
    let res = await app.inject({
      method: 'DELETE',
      url: '/members/n3',
      remoteAddress: '10.0.0.2',
      headers: forwarded(TEST_PEER_TOKEN),
    });
    expect(res.statusCode).toBe(403);
    expect(node.changes).toEqual([]);
    res = await app.inject({ method: 'DELETE', url: '/members/n3', headers: forwarded(TEST_PEER_TOKEN) });
    expect(res.statusCode).toBe(200);
  });

  it('a forwarded request that reaches a node which is not the leader is answered 503 there, never forwarded again', async () => {
    const { app, node } = leaderApi();
    node.softState = { role: 'follower', leader: 'n3', term: 3 };
    const res = await app.inject({ method: 'POST', url: '/members', payload: N4, headers: forwarded(TEST_PEER_TOKEN) });
    expect(res.statusCode).toBe(503);
    expect(res.headers['x-raft-leader']).toBe('n3');
    expect(res.json()).toMatchObject({
      error: 'not_leader',
      message: expect.stringContaining('already forwarded once'),
    });
  });
});
