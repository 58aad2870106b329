// The admin API (src/api/admin.ts) over a fake node: every route's success and every refusal, the
// answers' shapes, and what reaches the node. Forwarding between nodes: admin-forwarding.test.ts.
import { afterEach, describe, expect, it } from 'vitest';
import type { ClientApi } from '../../src/api/client-api.js';
import { ADMIN_BODY_LIMIT } from '../../src/api/admin.js';
import {
  LeaderTransferError,
  MembershipChangeError,
  NotLeaderError,
  ReadTimeoutError,
  WriteUnknownError,
} from '../../src/node/errors.js';
import { NodeMetrics } from '../../src/node/metrics.js';
import { buildTestAdminApi, FakeNode, progressOf, threeVoters } from './fakes.js';

const N4 = { id: 'n4', clientUrl: 'http://127.0.0.1:7004', peerUrl: 'http://127.0.0.1:7104' };
const N4_LEARNER = { ...N4, role: 'learner' as const };
const VOTERS = threeVoters().members;

let app: ClientApi | undefined;
let node: FakeNode;

function build(options: Parameters<typeof buildTestAdminApi>[1] = {}): ClientApi {
  node = new FakeNode();
  app = buildTestAdminApi(node, options);
  return app;
}

/** n1 leads; n4 is a learner `lag` entries behind (the fake's log ends at 7), heard from unless told otherwise. */
function withLearner(lag: number, recentActive = true): void {
  node.membership = { members: [...VOTERS, N4_LEARNER], removed: [] };
  node.progress = { ...node.progress, n4: progressOf(7 - lag, { learner: true, recentActive }) };
}

afterEach(async () => {
  await app?.close();
  app = undefined;
});

describe('GET /members', () => {
  it('answers the membership after a linearizable read barrier', async () => {
    const api = build();
    const res = await api.inject({ method: 'GET', url: '/members' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ members: VOTERS });
    expect(node.barriers).toBe(1);
  });

  it('answers a follower too, without forwarding; a failed barrier is the read error', async () => {
    const api = build();
    node.softState = { role: 'follower', leader: 'n2', term: 2 };
    expect((await api.inject({ method: 'GET', url: '/members' })).statusCode).toBe(200);
    node.readOutcome = () => Promise.reject(new ReadTimeoutError('no read index was confirmed in time'));
    const res = await api.inject({ method: 'GET', url: '/members' });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toEqual({ error: 'read_timeout', message: 'no read index was confirmed in time' });
    node.readOutcome = () => Promise.reject(new NotLeaderError(''));
    expect((await api.inject({ method: 'GET', url: '/members' })).json()).toMatchObject({ error: 'no_leader' });
  });

  it('is admin-only: 403 from another machine without a token, 401 without the token when one is set', async () => {
    let api = build();
    let res = await api.inject({ method: 'GET', url: '/members', remoteAddress: '10.0.0.9' });
    expect(res.statusCode).toBe(403);
    expect(res.json()).toMatchObject({ error: 'forbidden' });
    await api.close();
    api = build({ adminToken: 'admin-secret' });
    res = await api.inject({ method: 'GET', url: '/members' });
    expect(res.statusCode).toBe(401);
    expect(res.json()).toMatchObject({ error: 'unauthorized' });
    res = await api.inject({
      method: 'GET',
      url: '/members',
      remoteAddress: '10.0.0.9',
      headers: { authorization: 'Bearer admin-secret' },
    });
    expect(res.statusCode).toBe(200);
    expect(node.barriers).toBe(1);
  });
});

describe('POST /members', () => {
  it('adds a learner with normalised URLs and answers the index and the new membership once applied', async () => {
    const api = build();
    const res = await api.inject({
      method: 'POST',
      url: '/members',
      payload: { id: 'n4', clientUrl: 'http://127.0.0.1:7004/', peerUrl: 'http://127.0.0.1:7104' },
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ index: 8, members: [...VOTERS, N4_LEARNER] });
    expect(res.headers['x-raft-index']).toBe('8');
    expect(node.changes).toEqual([
      { type: 'addLearner', node: 'n4', clientUrl: 'http://127.0.0.1:7004', peerUrl: 'http://127.0.0.1:7104' },
    ]);
  });

  it('takes a JSON body whatever its content type says (curl -d sends a form)', async () => {
    const api = build();
    const res = await api.inject({
      method: 'POST',
      url: '/members',
      payload: JSON.stringify(N4),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(res.statusCode).toBe(200);
  });

  it.each([
    ['no body', undefined, 'body must be a JSON object {"id", "clientUrl", "peerUrl"}'],
    ['not JSON', 'id=n4', 'the body must be JSON'],
    ['a missing field', { id: 'n4', clientUrl: N4.clientUrl }, 'body/peerUrl is missing'],
    ['an unknown field', { ...N4, dataDir: 'x' }, 'body: unknown key "dataDir"'],
    ['an id with a space', { ...N4, id: 'n 4' }, 'body/id must be a node id: 1 to 64 letters, digits'],
    ['an id of dots', { ...N4, id: '..' }, 'body/id must be a node id'],
    ['an id with a slash', { ...N4, id: 'a/b' }, 'body/id must be a node id'],
    ['an empty id', { ...N4, id: '' }, 'body/id must be a node id'],
    ['a too long id', { ...N4, id: 'n'.repeat(65) }, 'body/id must be a node id'],
    ['an id that is no string', { ...N4, id: 4 }, 'body/id must be a node id'],
    ['no URL', { ...N4, clientUrl: '127.0.0.1 port 7004' }, 'body/clientUrl must be a URL like'],
    ['https', { ...N4, peerUrl: 'https://127.0.0.1:7104' }, 'body/peerUrl must be an http:// URL'],
    ['no port', { ...N4, clientUrl: 'http://127.0.0.1' }, 'body/clientUrl must name a port'],
    [
      'a path',
      { ...N4, clientUrl: 'http://127.0.0.1:7004/kv' },
      'body/clientUrl must be http://host:port and nothing more',
    ],
    [
      'a query',
      { ...N4, peerUrl: 'http://127.0.0.1:7104?x=1' },
      'body/peerUrl must be http://host:port and nothing more',
    ],
    [
      'credentials',
      { ...N4, peerUrl: 'http://u:p@127.0.0.1:7104' },
      'body/peerUrl must be http://host:port and nothing more',
    ],
    ['one URL twice', { ...N4, peerUrl: 'http://127.0.0.1:7004/' }, 'body/peerUrl must differ from body/clientUrl'],
  ])('refuses %s with 400 naming the field, and proposes nothing', async (_what, payload, message) => {
    const api = build();
    const res = await api.inject({
      method: 'POST',
      url: '/members',
      ...(payload === undefined ? {} : { payload: typeof payload === 'string' ? payload : JSON.stringify(payload) }),
    });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({ error: 'bad_request', message: expect.stringContaining(message) });
    expect(node.changes).toEqual([]);
  });

  it(`refuses a body over ${ADMIN_BODY_LIMIT} bytes with 413, whatever limits.maxValueBytes is`, async () => {
    const api = build();
    const res = await api.inject({
      method: 'POST',
      url: '/members',
      payload: JSON.stringify({ ...N4, pad: 'x'.repeat(ADMIN_BODY_LIMIT) }),
    });
    expect(res.statusCode).toBe(413);
    expect(res.json()).toMatchObject({ error: 'body_too_large' });
    // The test API's maxValueBytes is 64: an ordinary body passes far beyond it.
    expect(
      (await api.inject({ method: 'POST', url: '/members', payload: { ...N4, id: 'n'.repeat(64) } })).statusCode,
    ).toBe(200);
  });

  it.each([
    ['an id in use', { ...N4, id: 'n3' }, 'n3 is already a member'],
    ['a client URL in use', { ...N4, clientUrl: 'http://127.0.0.1:7002' }, "an address of n4 is already n2's"],
    [
      'a peer URL in use as a client URL',
      { ...N4, peerUrl: 'http://127.0.0.1:7001' },
      "an address of n4 is already n1's",
    ],
  ])('refuses %s with 409 conflict, saying why', async (_what, payload, message) => {
    const api = build();
    const res = await api.inject({ method: 'POST', url: '/members', payload });
    expect(res.statusCode).toBe(409);
    expect(res.json()).toEqual({ error: 'conflict', message });
  });

  it('refuses an id removed before with 409 conflict: an id is never used again', async () => {
    const api = build();
    node.membership = { ...node.membership, removed: ['n4'] };
    const res = await api.inject({ method: 'POST', url: '/members', payload: N4 });
    expect(res.statusCode).toBe(409);
    expect(res.json()).toEqual({
      error: 'conflict',
      message: expect.stringContaining('n4 was removed from this cluster'),
    });
  });

  it('answers 409 change_in_progress with Retry-After while another change is not applied', async () => {
    const api = build();
    node.changeOutcome = () =>
      Promise.reject(new MembershipChangeError('conflict', 'another membership change is not applied yet'));
    const res = await api.inject({ method: 'POST', url: '/members', payload: N4 });
    expect(res.statusCode).toBe(409);
    expect(res.headers['retry-after']).toBe('1');
    expect(res.json()).toEqual({
      error: 'change_in_progress',
      message: 'another membership change is not applied yet',
    });
  });

  it('maps the failures a write has: leader transfer 503, unknown outcome 504', async () => {
    const api = build();
    node.changeOutcome = () => Promise.reject(new LeaderTransferError());
    let res = await api.inject({ method: 'POST', url: '/members', payload: N4 });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ error: 'leader_transfer' });
    node.changeOutcome = () => Promise.reject(new WriteUnknownError(8, 'was not applied in time'));
    res = await api.inject({ method: 'POST', url: '/members', payload: N4 });
    expect(res.statusCode).toBe(504);
    expect(res.json()).toMatchObject({ error: 'outcome_unknown' });
  });

  it('on a follower that knows no leader: 503 no_leader, nothing proposed', async () => {
    const api = build();
    node.softState = { role: 'follower', leader: '', term: 2 };
    const res = await api.inject({ method: 'POST', url: '/members', payload: N4 });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ error: 'no_leader' });
    expect(node.changes).toEqual([]);
  });
});

describe('POST /members/<id>/promote', () => {
  it('promotes a learner that is caught up and heard from, and answers the new membership', async () => {
    const api = build();
    withLearner(1000);
    const res = await api.inject({ method: 'POST', url: '/members/n4/promote' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ index: 8, members: [...VOTERS, { ...N4, role: 'voter' }] });
    expect(node.changes).toEqual([{ type: 'promote', node: 'n4' }]);
  });

  it('refuses a learner further behind than promoteMaxLagEntries with 409 not_caught_up, saying by how much', async () => {
    const api = build({ promoteMaxLagEntries: 1000 });
    withLearner(1001);
    const res = await api.inject({ method: 'POST', url: '/members/n4/promote' });
    expect(res.statusCode).toBe(409);
    expect(res.headers['retry-after']).toBe('1');
    const body = res.json<{ error: string; message: string }>();
    expect(body.error).toBe('not_caught_up');
    expect(body.message).toContain('n4 is 1001 entries behind');
    expect(body.message).toContain('at most 1000 entries behind (limits.promoteMaxLagEntries)');
    expect(node.changes).toEqual([]);
  });

  it('refuses a learner the leader has not heard from lately, however close its match', async () => {
    const api = build();
    withLearner(0, false);
    const res = await api.inject({ method: 'POST', url: '/members/n4/promote' });
    expect(res.statusCode).toBe(409);
    expect(res.json()).toEqual({ error: 'not_caught_up', message: expect.stringContaining('has not heard from n4') });
    expect(node.changes).toEqual([]);
  });

  it('refuses a learner the leader tracks no progress for', async () => {
    const api = build();
    withLearner(0);
    delete node.progress['n4'];
    const res = await api.inject({ method: 'POST', url: '/members/n4/promote' });
    expect(res.statusCode).toBe(409);
    expect(res.json()).toMatchObject({ error: 'not_caught_up' });
  });

  it('404 unknown_member for an id that is not a member (or was removed); 409 not_a_learner for a voter', async () => {
    const api = build();
    node.membership = { ...node.membership, removed: ['n9'] };
    let res = await api.inject({ method: 'POST', url: '/members/n5/promote' });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({
      error: 'unknown_member',
      message: 'n5 is not a member of the cluster; see GET /members',
    });
    res = await api.inject({ method: 'POST', url: '/members/n9/promote' });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ error: 'unknown_member', message: expect.stringContaining('n9 was removed') });
    res = await api.inject({ method: 'POST', url: '/members/n2/promote' });
    expect(res.statusCode).toBe(409);
    expect(res.json()).toEqual({ error: 'not_a_learner', message: 'n2 is already a voter' });
    expect(node.changes).toEqual([]);
  });
});

describe('DELETE /members/<id>', () => {
  it('removes a member and answers the membership without it', async () => {
    const api = build();
    const res = await api.inject({ method: 'DELETE', url: '/members/n3' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ index: 8, members: VOTERS.slice(0, 2) });
    expect(node.changes).toEqual([{ type: 'remove', node: 'n3' }]);
    expect(node.membership.removed).toEqual(['n3']);
  });

  it('404 for a non-member; 409 conflict for the only voter (the core refuses: no one would be left to decide)', async () => {
    const api = build();
    let res = await api.inject({ method: 'DELETE', url: '/members/n7' });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ error: 'unknown_member' });
    node.membership = { members: [VOTERS[0]!, N4_LEARNER], removed: [] };
    res = await api.inject({ method: 'DELETE', url: '/members/n1' });
    expect(res.statusCode).toBe(409);
    expect(res.json()).toEqual({ error: 'conflict', message: expect.stringContaining('n1 is the only voter') });
    expect(node.membership.members.map((m) => m.id)).toEqual(['n1', 'n4']);
  });
});

describe('DELETE /members/<id>: the live voters left must be a majority', () => {
  it('409 would_lose_quorum when the voters left that were heard from lately are not a majority', async () => {
    const api = build();
    // n3 is down: removing n2 would leave n1 and n3, and n1 alone is not a majority of two.
    node.progress = { ...node.progress, n3: progressOf(5, { recentActive: false }) };
    const res = await api.inject({ method: 'DELETE', url: '/members/n2' });
    expect(res.statusCode).toBe(409);
    expect(res.headers['retry-after']).toBe('1');
    expect(res.json()).toEqual({
      error: 'would_lose_quorum',
      message: expect.stringContaining('Bring n3 back first, or remove a voter that is down'),
    });
    expect(node.changes).toEqual([]);
    // Removing the voter that is down is what the replacement procedure does: allowed.
    const ok = await api.inject({ method: 'DELETE', url: '/members/n3' });
    expect(ok.statusCode).toBe(200);
    expect(node.changes).toEqual([{ type: 'remove', node: 'n3' }]);
  });

  it('a learner is removed whatever the voters do', async () => {
    const api = build();
    withLearner(0);
    node.progress = {
      ...node.progress,
      n2: progressOf(5, { recentActive: false }),
      n3: progressOf(5, { recentActive: false }),
    };
    expect((await api.inject({ method: 'DELETE', url: '/members/n4' })).statusCode).toBe(200);
  });
});

describe('POST /leader/transfer', () => {
  it('hands leadership to the voter named and answers once it leads', async () => {
    const api = build();
    const res = await api.inject({ method: 'POST', url: '/leader/transfer', payload: { to: 'n2' } });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ leader: 'n2', term: 3 });
    expect(node.transfers).toEqual(['n2']);
  });

  it('with {} or no body, picks the most up-to-date voter heard from lately (never a learner)', async () => {
    const api = build();
    withLearner(0);
    node.progress = { ...node.progress, n2: progressOf(5), n3: progressOf(6) };
    let res = await api.inject({ method: 'POST', url: '/leader/transfer', payload: {} });
    expect(res.json()).toEqual({ leader: 'n3', term: 3 });
    node.softState = { role: 'leader', leader: 'n1', term: 3 };
    node.progress = { ...node.progress, n3: progressOf(7, { recentActive: false }) };
    res = await api.inject({ method: 'POST', url: '/leader/transfer' });
    expect(res.statusCode).toBe(200);
    expect(node.transfers).toEqual(['n3', 'n2']);
  });

  it('the leader itself: 200 at once, nothing started', async () => {
    const api = build();
    const res = await api.inject({ method: 'POST', url: '/leader/transfer', payload: { to: 'n1' } });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ leader: 'n1', term: 2 });
    expect(node.transfers).toEqual([]);
  });

  it('refuses a learner (409), a non-member (404), a malformed body (400), and no voter to pick (503)', async () => {
    const api = build();
    withLearner(0);
    let res = await api.inject({ method: 'POST', url: '/leader/transfer', payload: { to: 'n4' } });
    expect(res.statusCode).toBe(409);
    expect(res.json()).toMatchObject({ error: 'not_a_voter' });
    res = await api.inject({ method: 'POST', url: '/leader/transfer', payload: { to: 'n8' } });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ error: 'unknown_member' });
    for (const payload of [{ to: 2 }, { target: 'n2' }, []]) {
      res = await api.inject({ method: 'POST', url: '/leader/transfer', payload });
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
      expect(res.json()).toMatchObject({ error: 'bad_request' });
    }
    node.progress = {
      n1: progressOf(7),
      n2: progressOf(7, { recentActive: false }),
      n3: progressOf(7, { recentActive: false }),
    };
    res = await api.inject({ method: 'POST', url: '/leader/transfer', payload: {} });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ error: 'no_transfer_target' });
    expect(node.transfers).toEqual([]);
  });

  it('503 transfer_failed when the target does not take over within two election timeouts', async () => {
    const api = build({ electionTimeoutMs: 50 });
    node.transferOutcome = () => ({ ok: true });
    const started = Date.now();
    const res = await api.inject({ method: 'POST', url: '/leader/transfer', payload: { to: 'n2' } });
    expect(Date.now() - started).toBeGreaterThanOrEqual(100);
    expect(res.statusCode).toBe(503);
    expect(res.json()).toEqual({
      error: 'transfer_failed',
      message: 'n2 did not take over within 100 ms (is it reachable and caught up?); n1 is still the leader',
    });
  });

  it('503 transfer_failed when another node took over; 504 transfer_unknown when no leader is known in time', async () => {
    const api = build({ electionTimeoutMs: 50 });
    node.transferOutcome = () => {
      node.softState = { role: 'follower', leader: 'n3', term: 3 };
      return { ok: true };
    };
    let res = await api.inject({ method: 'POST', url: '/leader/transfer', payload: { to: 'n2' } });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({
      error: 'transfer_failed',
      message: expect.stringContaining('n3 became the leader'),
    });
    node.softState = { role: 'leader', leader: 'n1', term: 3 };
    node.transferOutcome = () => {
      node.softState = { role: 'follower', leader: '', term: 4 };
      return { ok: true };
    };
    res = await api.inject({ method: 'POST', url: '/leader/transfer', payload: { to: 'n2' } });
    expect(res.statusCode).toBe(504);
    expect(res.json()).toMatchObject({ error: 'transfer_unknown' });
  });
});

describe('/status and /metrics show the membership', () => {
  it('/status lists the members with roles, and on the leader how far behind each other member is', async () => {
    const api = build();
    withLearner(3);
    let status = (await api.inject({ method: 'GET', url: '/status' })).json<{ members: unknown }>();
    expect(status.members).toEqual([
      VOTERS[0],
      { ...VOTERS[1], lagEntries: 0 },
      { ...VOTERS[2], lagEntries: 0 },
      { ...N4_LEARNER, lagEntries: 3 },
    ]);
    node.softState = { role: 'follower', leader: 'n2', term: 2 };
    status = (await api.inject({ method: 'GET', url: '/status' })).json<{ members: unknown }>();
    expect(status.members).toEqual([...VOTERS, N4_LEARNER]);
  });

  it('/metrics has raftkv_members{role}, and raftkv_member_lag_entries{member} on the leader only', async () => {
    const api = build({ metrics: new NodeMetrics('n1') });
    withLearner(3);
    let text = (await api.inject({ method: 'GET', url: '/metrics' })).body;
    expect(text).toContain('raftkv_members{role="voter",node="n1"} 3');
    expect(text).toContain('raftkv_members{role="learner",node="n1"} 1');
    expect(text).toContain('raftkv_member_lag_entries{member="n4",node="n1"} 3');
    expect(text).toContain('raftkv_member_lag_entries{member="n2",node="n1"} 0');
    expect(text).not.toContain('raftkv_member_lag_entries{member="n1"');
    node.softState = { role: 'follower', leader: 'n2', term: 2 };
    text = (await api.inject({ method: 'GET', url: '/metrics' })).body;
    expect(text).not.toMatch(/^raftkv_member_lag_entries\{/m);
    expect(text).toContain('raftkv_members{role="learner",node="n1"} 1');
  });
});
