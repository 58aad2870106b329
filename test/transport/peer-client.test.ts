import { describe, expect, it } from 'vitest';
import type { AppendMessage, Message, NodeId } from '../../src/raft/types.js';
import { encodeMessages, MAX_ENTRIES_PER_BODY } from '../../src/transport/codec.js';
import { FaultSwitch } from '../../src/transport/faults.js';
import { PeerServer } from '../../src/transport/peer-server.js';
import { PeerTransport, type PeerTransportOptions } from '../../src/transport/peer-transport.js';
import {
  captureLog,
  freePort,
  heartbeat,
  StaleConnectionProxy,
  StubPeer,
  turn,
  waitFor,
  useClosers,
} from './helpers.js';

const TOKEN = 'test-token';
const CLUSTER = 'test-cluster';

const closers = useClosers();

async function stubPeer(): Promise<StubPeer> {
  const peer = new StubPeer();
  await peer.listen();
  closers.push(() => peer.close());
  return peer;
}

interface Received {
  from: NodeId;
  messages: Message[];
}

async function peerServer(
  selfId: NodeId,
  port = 0,
): Promise<{ server: PeerServer; port: number; received: Received[] }> {
  const received: Received[] = [];
  const server = new PeerServer({
    host: '127.0.0.1',
    port,
    selfId,
    peers: ['n1', 'n2', 'n3'].filter((id) => id !== selfId),
    clusterId: CLUSTER,
    token: TOKEN,
    logger: captureLog().logger,
    onMessages: (from, messages) => void received.push({ from, messages }),
  });
  const address = await server.listen();
  closers.push(() => server.close());
  return { server, port: address.port, received };
}

function transport(
  peers: Record<NodeId, string>,
  options: Partial<PeerTransportOptions> = {},
): { transport: PeerTransport; unreachable: NodeId[] } {
  const unreachable: NodeId[] = [];
  const created = new PeerTransport({
    selfId: 'n1',
    peers: new Map(Object.entries(peers)),
    clusterId: CLUSTER,
    token: TOKEN,
    logger: captureLog().logger,
    onUnreachable: (peer) => unreachable.push(peer),
    ...options,
  });
  closers.push(() => created.close());
  return { transport: created, unreachable };
}

const ack = (from: NodeId, round: number): Message => ({ type: 'heartbeatResp', from, to: 'n1', term: 1, round });

function rounds(messages: readonly Message[]): number[] {
  return messages.map((m) => (m.type === 'heartbeat' ? m.round : -1));
}

function append(to: NodeId, index: number, bytes: number): AppendMessage {
  return {
    type: 'app',
    from: 'n1',
    to,
    term: 1,
    index,
    logTerm: 1,
    commit: 0,
    entries: [{ index: index + 1, term: 1, type: 0, data: new Uint8Array(bytes) }],
  };
}

describe('PeerTransport', () => {
  it('routes messages to the peer named in `to`', async () => {
    const n2 = await peerServer('n2');
    const n3 = await peerServer('n3');
    const { transport: t } = transport({
      n1: 'http://127.0.0.1:1',
      n2: `http://127.0.0.1:${n2.port}`,
      n3: `http://127.0.0.1:${n3.port}`,
    });
    t.send([heartbeat('n1', 'n2', 1), heartbeat('n1', 'n3', 2), heartbeat('n1', 'n2', 3)]);
    await waitFor(() => n2.received.length > 0 && n3.received.length > 0, 2_000, 'delivery to both peers');
    expect(n2.received.flatMap((r) => rounds(r.messages))).toEqual([1, 3]);
    expect(n3.received.flatMap((r) => rounds(r.messages))).toEqual([2]);
    expect(n2.received.every((r) => r.from === 'n1')).toBe(true);
    await waitFor(() => t.stats()['n2']?.inFlight === 0, 2_000, 'the request to settle');
    expect(t.stats()['n2']).toMatchObject({
      sentRequests: 1,
      sentMessages: 2,
      dropped: 0,
      failures: 0,
      inFlight: 0,
      queued: 0,
    });
    expect(Object.keys(t.stats()).sort()).toEqual(['n2', 'n3']);
  });

  describe('replies (heartbeat acknowledgements in the answer)', () => {
    it('asks for them only with onReplies, and hands over what a real peer server answers', async () => {
      const replies: Array<{ peer: NodeId; messages: Message[] }> = [];
      const server = new PeerServer({
        host: '127.0.0.1',
        port: 0,
        selfId: 'n2',
        peers: ['n1', 'n3'],
        clusterId: CLUSTER,
        token: TOKEN,
        logger: captureLog().logger,
        onMessages: (_from, messages, wanted) =>
          wanted ? messages.map((m) => ack('n2', (m as { round: number }).round)) : [],
      });
      const { port } = await server.listen();
      closers.push(() => server.close());
      const { transport: t, unreachable } = transport(
        { n2: `http://127.0.0.1:${port}` },
        { onReplies: (peer, messages) => replies.push({ peer, messages }) },
      );
      t.send([heartbeat('n1', 'n2', 1), heartbeat('n1', 'n2', 2)]);
      await waitFor(() => replies.length === 1, 2_000, 'the replies');
      expect(replies).toEqual([{ peer: 'n2', messages: [ack('n2', 1), ack('n2', 2)] }]);
      expect(t.stats()['n2']).toMatchObject({ sentRequests: 1, replies: 2, badReplies: 0 });
      expect(unreachable).toEqual([]);

      const peer = await stubPeer();
      const { transport: plain } = transport({ n3: peer.url });
      plain.send([heartbeat('n1', 'n3', 1)]);
      await waitFor(() => peer.requests.length === 1, 2_000, 'the request');
      expect(peer.repliesHeaders).toEqual([undefined]);
    });

    it('refuses (counts, logs once) answers that are not heartbeat acknowledgements from that peer to us; the request still succeeded', async () => {
      const peer = await stubPeer();
      const log = captureLog();
      const replies: Message[][] = [];
      const { transport: t, unreachable } = transport(
        { n2: peer.url },
        { logger: log.logger, onReplies: (_peer, messages) => replies.push(messages) },
      );
      const bad: Array<{ body: Uint8Array; type: string }> = [
        { body: encodeMessages([heartbeat('n2', 'n1', 1)]), type: 'application/msgpack' }, // not an acknowledgement
        { body: encodeMessages([ack('n3', 1)]), type: 'application/msgpack' }, // not from the peer asked
        { body: encodeMessages([{ ...ack('n2', 1), to: 'n3' }]), type: 'application/msgpack' }, // not to us
        { body: Buffer.from('garbage, not msgpack'), type: 'application/msgpack' },
        { body: Buffer.alloc(1024 * 1024 + 1), type: 'application/msgpack' }, // over 1 MiB: not even decoded
      ];
      for (const [i, answer] of bad.entries()) {
        peer.answerWith = answer;
        t.send([heartbeat('n1', 'n2', i)]);
        await waitFor(() => t.stats()['n2']?.badReplies === i + 1, 2_000, `refusal ${i}`);
      }
      expect(peer.repliesHeaders.every((h) => h === 'heartbeat,append')).toBe(true);
      expect(replies).toEqual([]);
      expect(t.stats()['n2']).toMatchObject({
        sentRequests: bad.length,
        failures: 0,
        replies: 0,
        badReplies: bad.length,
      });
      expect(unreachable).toEqual([]);
      expect(log.matching('refused the messages in a peer answer').length).toBe(1);
      // A 200 of another content type is a plain success.
      peer.answerWith = { body: Buffer.from('{}'), type: 'application/json' };
      t.send([heartbeat('n1', 'n2', 9)]);
      await waitFor(() => t.stats()['n2']?.sentRequests === bad.length + 1, 2_000, 'the JSON answer');
      expect(t.stats()['n2']).toMatchObject({ badReplies: bad.length, failures: 0 });
    });

    it('bad replies do not cost the failure and recovery lines their rate limit', async () => {
      const peer = await stubPeer();
      const log = captureLog();
      const { transport: t } = transport({ n2: peer.url }, { logger: log.logger, onReplies: () => undefined });
      const step = async (answer: StubPeer['answerWith'], requests: number): Promise<void> => {
        peer.answerWith = answer;
        t.send([heartbeat('n1', 'n2', requests)]);
        await waitFor(
          () => peer.requests.length === requests && t.stats()['n2']?.inFlight === 0,
          2_000,
          `request ${requests}`,
        );
      };
      const failing = { body: Buffer.from('{"error":"x","message":"x"}'), type: 'application/json', status: 500 };
      await step(failing, 1); // failure: logged
      await step(null, 2); // recovery: logged
      await step({ body: Buffer.from('not msgpack'), type: 'application/msgpack' }, 3); // bad reply: logged
      await step(failing, 4); // a failure within the interval: suppressed
      expect(t.stats()['n2']).toMatchObject({ failures: 2, badReplies: 1 });
      expect(log.matching('peer unreachable; dropped its queue').length).toBe(1);
    });

    it('the fault switch drops replies from a peer we do not hear from (dropFrom)', async () => {
      const peer = await stubPeer();
      peer.answerWith = { body: encodeMessages([ack('n2', 1)]), type: 'application/msgpack' };
      const replies: Message[][] = [];
      const faults = new FaultSwitch({ dropFrom: ['n2'] });
      const { transport: t } = transport(
        { n2: peer.url },
        { faults, onReplies: (_peer, messages) => replies.push(messages) },
      );
      t.send([heartbeat('n1', 'n2', 1)]);
      await waitFor(() => t.stats()['n2']?.faultDropped === 1, 2_000, 'the dropped reply');
      expect(replies).toEqual([]);
      faults.clear();
      t.send([heartbeat('n1', 'n2', 2)]);
      await waitFor(() => replies.length === 1, 2_000, 'the reply once the link is healed');
    });
  });

  it('appends and everything else travel in two lanes: a heartbeat passes an append whose answer is held for its acknowledgement', async () => {
    let releaseAppend: () => void = () => undefined;
    const modes: string[] = [];
    const appAck: Message = {
      type: 'appResp',
      from: 'n2',
      to: 'n1',
      term: 1,
      index: 2,
      reject: false,
      hintIndex: 0,
      hintTerm: 0,
    };
    const server = new PeerServer({
      host: '127.0.0.1',
      port: 0,
      selfId: 'n2',
      peers: ['n1'],
      clusterId: CLUSTER,
      token: TOKEN,
      logger: captureLog().logger,
      onMessages: (_from, messages, mode) => {
        modes.push(mode);
        if (!messages.some((m) => m.type === 'app')) return [ack('n2', (messages[0] as { round: number }).round)];
        // The node holds the answer until the entries are on disk (held-replies.ts).
        return new Promise<readonly Message[]>((resolve) => (releaseAppend = () => resolve([appAck])));
      },
    });
    const { port } = await server.listen();
    closers.push(() => server.close());
    const replies: Message[][] = [];
    const { transport: t } = transport(
      { n2: `http://127.0.0.1:${port}` },
      { onReplies: (_peer, messages) => replies.push(messages) },
    );
    t.send([append('n2', 1, 10)]);
    await waitFor(() => modes.length === 1, 2_000, 'the append to arrive');
    t.send([heartbeat('n1', 'n2', 4)]);
    await waitFor(() => replies.length === 1, 2_000, 'the heartbeat’s acknowledgement, past the held append');
    expect(replies).toEqual([[ack('n2', 4)]]);
    expect(t.stats()['n2']?.inFlight).toBe(1); // the append's request is still waiting
    releaseAppend();
    await waitFor(() => replies.length === 2, 2_000, 'the append’s acknowledgement in its answer');
    expect(replies[1]).toEqual([appAck]);
    expect(modes).toEqual(['append', 'append']);
  });

  it('drops (and counts) messages for nodes that are not peers', () => {
    const { transport: t } = transport({ n2: 'http://127.0.0.1:1' });
    t.send([heartbeat('n1', 'n9', 1), heartbeat('n1', 'n1', 2)]);
    expect(t.misroutedMessages()).toBe(2);
  });

  it('coalesces everything sent while a request is in flight into one request, in order', async () => {
    const peer = await stubPeer();
    const { transport: t } = transport({ n2: peer.url });
    peer.stall();
    t.send([heartbeat('n1', 'n2', 0)]);
    await waitFor(() => peer.requests.length === 1, 2_000, 'the first request');
    for (let round = 1; round <= 200; round++) {
      t.send([heartbeat('n1', 'n2', round)]);
      if (round % 20 === 0) await turn(); // sends spread over many event-loop turns
    }
    expect(t.stats()['n2']).toMatchObject({ inFlight: 1, queued: 200 });
    peer.release();
    await waitFor(() => peer.messages.length === 201, 2_000, 'all messages');
    expect(peer.requests.length).toBe(2);
    expect(rounds(peer.messages)).toEqual(Array.from({ length: 201 }, (_, i) => i));
  });

  it('bounds the queue of a stalled peer, dropping the oldest messages', async () => {
    const peer = await stubPeer();
    const { transport: t } = transport({ n2: peer.url }, { maxQueueMessages: 10 });
    peer.stall();
    t.send([heartbeat('n1', 'n2', 0)]);
    await waitFor(() => peer.requests.length === 1, 2_000, 'the first request');
    for (let round = 1; round <= 1000; round++) t.send([heartbeat('n1', 'n2', round)]);
    expect(t.stats()['n2']).toMatchObject({ queued: 10, dropped: 990 });
    peer.release();
    await waitFor(() => peer.requests.length === 2, 2_000, 'the second request');
    expect(rounds(peer.requests[1] ?? [])).toEqual(Array.from({ length: 10 }, (_, i) => 991 + i));
  });

  it('splits a backlog of appends into bodies of at most MAX_ENTRIES_PER_BODY entries, in order', async () => {
    const peer = await stubPeer();
    const { transport: t } = transport({ n2: peer.url }, { maxQueueBytes: 64 * 1024 * 1024 });
    peer.stall();
    t.send([heartbeat('n1', 'n2', 0)]);
    await waitFor(() => peer.requests.length === 1, 2_000, 'the first request');
    // Three appends of 30,000 empty entries each (as a leader streams to a slow follower): 90,000
    // entries in all, more than one body may carry.
    const perAppend = 30_000;
    for (let i = 0; i < 3; i++) {
      const entries = Array.from({ length: perAppend }, (_, j) => ({
        index: i * perAppend + j + 1,
        term: 1,
        type: 0 as const,
        data: new Uint8Array(0),
      }));
      t.send([
        {
          type: 'app',
          from: 'n1',
          to: 'n2',
          term: 1,
          index: i * perAppend,
          logTerm: i === 0 ? 0 : 1,
          commit: 0,
          entries,
        },
      ]);
    }
    peer.release();
    await waitFor(() => peer.messages.length === 4, 5_000, 'all messages');
    const entriesPerRequest = peer.requests
      .slice(1)
      .map((batch) => batch.reduce((n, m) => n + (m.type === 'app' ? m.entries.length : 0), 0));
    expect(entriesPerRequest).toEqual([2 * perAppend, perAppend]);
    for (const n of entriesPerRequest) expect(n).toBeLessThanOrEqual(MAX_ENTRIES_PER_BODY);
    expect(peer.messages.slice(1).map((m) => (m.type === 'app' ? m.index : -1))).toEqual([0, perAppend, 2 * perAppend]);
    expect(t.stats()['n2']).toMatchObject({ dropped: 0, failures: 0 });
  });

  it('bounds the queued bytes', async () => {
    const peer = await stubPeer();
    const { transport: t } = transport({ n2: peer.url }, { maxQueueBytes: 64 * 1024 });
    peer.stall();
    t.send([heartbeat('n1', 'n2', 0)]);
    await waitFor(() => peer.requests.length === 1, 2_000, 'the first request');
    for (let i = 0; i < 100; i++) t.send([append('n2', i, 4096)]);
    const stats = t.stats()['n2'];
    expect(stats?.queuedBytes).toBeLessThanOrEqual(64 * 1024);
    expect(stats?.queued).toBeGreaterThan(0);
    expect((stats?.queued ?? 0) + (stats?.dropped ?? 0)).toBe(100);
  });

  it('tells the core when the bounds drop an append it counts in flight (heartbeats drop silently)', async () => {
    const peer = await stubPeer();
    const { transport: t, unreachable } = transport({ n2: peer.url }, { maxQueueMessages: 5 });
    peer.stall();
    t.send([heartbeat('n1', 'n2', 0)]);
    await waitFor(() => peer.requests.length === 1, 2_000, 'the first request');
    for (let round = 1; round <= 10; round++) t.send([heartbeat('n1', 'n2', round)]);
    expect(unreachable).toEqual([]);
    // Appends have a lane of their own (peer-transport.ts): heartbeats never push them out.
    t.send([append('n2', 1, 10)]);
    await waitFor(() => peer.requests.length === 2, 2_000, 'the append lane’s request');
    for (let index = 2; index <= 6; index++) t.send([append('n2', index, 10)]);
    for (let round = 11; round <= 20; round++) t.send([heartbeat('n1', 'n2', round)]);
    expect(unreachable).toEqual([]);
    t.send([append('n2', 7, 10)]);
    // An append fell off the head of its queue: the core must probe rather than wait on it.
    expect(unreachable).toEqual(['n2']);
    peer.release();
  });

  it('reports an unreachable peer and drops its queue instead of growing it', async () => {
    const port = await freePort();
    const { transport: t, unreachable } = transport({ n2: `http://127.0.0.1:${port}` });
    t.send([heartbeat('n1', 'n2', 1)]);
    t.send([heartbeat('n1', 'n2', 2)]);
    await waitFor(() => unreachable.length > 0, 2_000, 'onUnreachable');
    expect(unreachable[0]).toBe('n2');
    await waitFor(() => t.stats()['n2']?.inFlight === 0, 2_000, 'the request to settle');
    expect(t.stats()['n2']).toMatchObject({ failures: 1, dropped: 2, queued: 0, sentRequests: 0 });
  });

  it('a peer that applied our removal refuses us as removed, and the transport says so (only then)', async () => {
    const n2 = await peerServer('n2');
    const removed: NodeId[] = [];
    const { transport: t, unreachable } = transport(
      { n2: `http://127.0.0.1:${n2.port}` },
      { onRemoved: (peer) => removed.push(peer) },
    );
    // A member: delivered, nothing said.
    t.send([heartbeat('n1', 'n2', 1)]);
    await waitFor(() => n2.received.length === 1, 2_000, 'delivery');
    // n2 applied n1's removal: 403 `removed`.
    n2.server.setMembers(['n3'], ['n1']);
    t.send([heartbeat('n1', 'n2', 2)]);
    await waitFor(() => removed.length === 1, 2_000, 'onRemoved');
    expect(removed).toEqual(['n2']);
    expect(unreachable).toEqual(['n2']);
    // Merely unknown (not a member, not removed: a joiner the peer has not heard of yet): no such claim.
    n2.server.setMembers(['n3'], []);
    t.send([heartbeat('n1', 'n2', 3)]);
    await waitFor(() => unreachable.length === 2, 2_000, 'the second failure');
    expect(removed).toEqual(['n2']);
  });

  it('counts a non-2xx answer as a failure, and logs its status', async () => {
    const log = captureLog();
    const n2 = await peerServer('n2');
    const { transport: t, unreachable } = transport(
      { n2: `http://127.0.0.1:${n2.port}` },
      { token: 'wrong-token', logger: log.logger },
    );
    t.send([heartbeat('n1', 'n2', 1)]);
    await waitFor(() => unreachable.length === 1, 2_000, 'onUnreachable');
    expect(n2.received).toEqual([]);
    expect(log.matching('peer unreachable')[0]?.['reason']).toMatch(/^HTTP 401 .*unauthorized/);
  });

  it('times out a peer that accepts connections but never answers (SIGSTOP)', async () => {
    const peer = await stubPeer();
    const { transport: t, unreachable } = transport({ n2: peer.url }, { requestTimeoutMs: 200 });
    peer.stall();
    const started = Date.now();
    t.send([heartbeat('n1', 'n2', 1)]);
    await waitFor(() => unreachable.length > 0, 2_000, 'onUnreachable after the timeout');
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(150);
    expect(elapsed).toBeLessThan(1_000); // a precise deadline, not undici's ~1 s timer resolution
    expect(t.stats()['n2']).toMatchObject({ failures: 1, queued: 0 });
    // Once the peer answers again, messages flow.
    peer.release();
    t.send([heartbeat('n1', 'n2', 2)]);
    await waitFor(
      () => peer.messages.some((m) => m.type === 'heartbeat' && m.round === 2),
      2_000,
      'delivery after recovery',
    );
  });

  it('logs repeated failures once per interval, and the recovery', async () => {
    const log = captureLog();
    const peer = await stubPeer();
    const url = peer.url;
    const port = peer.port;
    await peer.close();
    const { transport: t, unreachable } = transport({ n2: url }, { logger: log.logger });
    for (let i = 1; i <= 5; i++) {
      t.send([heartbeat('n1', 'n2', i)]);
      await waitFor(() => unreachable.length === i, 2_000, `failure ${i}`);
    }
    expect(log.matching('peer unreachable')).toHaveLength(1);
    const revived = new StubPeer();
    await revived.listen(port);
    closers.push(() => revived.close());
    t.send([heartbeat('n1', 'n2', 6)]);
    await waitFor(() => revived.messages.length === 1, 2_000, 'delivery after the peer came back');
    await waitFor(() => log.matching('peer reachable again').length === 1, 2_000, 'the recovery line');
  });

  it('recovers when the peer restarts on the same port (keep-alive sockets)', async () => {
    const first = await peerServer('n2');
    const { transport: t, unreachable } = transport({ n2: `http://127.0.0.1:${first.port}` });
    t.send([heartbeat('n1', 'n2', 1)]);
    await waitFor(() => first.received.length === 1, 2_000, 'delivery before the restart');
    await first.server.close();
    const second = await peerServer('n2', first.port);
    // The first message after the restart gets through: the client notices the closed socket, or
    // trips over it and retries on a fresh one, but never loses the message or wedges.
    const sentAt = Date.now();
    t.send([heartbeat('n1', 'n2', 2)]);
    await waitFor(() => second.received.length === 1, 2_000, 'delivery after the restart');
    expect(Date.now() - sentAt).toBeLessThan(1_000);
    expect(second.received[0]?.messages).toEqual([heartbeat('n1', 'n2', 2)]);
    expect(unreachable).toEqual([]);
  });

  it('retries once on a fresh connection when a kept-alive socket turns out to be dead', async () => {
    const peer = await stubPeer();
    const proxy = new StaleConnectionProxy(peer.port);
    await proxy.listen();
    closers.push(() => proxy.close());
    const { transport: t, unreachable } = transport({ n2: proxy.url });
    t.send([heartbeat('n1', 'n2', 1)]);
    await waitFor(() => t.stats()['n2']?.sentRequests === 1, 2_000, 'the first request');
    // The peer's host "restarts": the kept-alive socket is dead, but nothing tells the client until
    // it writes the next request on it and gets a reset.
    expect(proxy.makeConnectionsStale()).toBe(1);
    t.send([heartbeat('n1', 'n2', 2)]);
    await waitFor(
      () => t.stats()['n2']?.sentRequests === 2 || t.stats()['n2']?.failures !== 0,
      2_000,
      'the second request',
    );
    expect(t.stats()['n2']).toMatchObject({ sentRequests: 2, failures: 0, retries: 1 });
    expect(rounds(peer.messages)).toEqual([1, 2]);
    expect(unreachable).toEqual([]);
  });

  it('does not retry when the previous request failed too (a dead peer is not hammered)', async () => {
    const peer = await stubPeer();
    const proxy = new StaleConnectionProxy(peer.port);
    await proxy.listen();
    closers.push(() => proxy.close());
    const { transport: t, unreachable } = transport({ n2: proxy.url }, { requestTimeoutMs: 200 });
    peer.stall();
    t.send([heartbeat('n1', 'n2', 1)]);
    await waitFor(() => unreachable.length === 1, 2_000, 'the timeout');
    peer.release();
    t.send([heartbeat('n1', 'n2', 2)]);
    await waitFor(() => t.stats()['n2']?.sentRequests === 1, 2_000, 'a request on a fresh connection');
    expect(t.stats()['n2']).toMatchObject({ failures: 1, retries: 0 });
  });

  it('close() aborts a request in flight, drops the queue and reports nothing', async () => {
    const peer = await stubPeer();
    const { transport: t, unreachable } = transport({ n2: peer.url });
    peer.stall();
    t.send([heartbeat('n1', 'n2', 1)]);
    await waitFor(() => peer.requests.length === 1, 2_000, 'the first request');
    t.send([heartbeat('n1', 'n2', 2)]);
    await t.close();
    t.send([heartbeat('n1', 'n2', 3)]);
    expect(t.stats()['n2']).toMatchObject({ queued: 0 });
    await turn();
    expect(unreachable).toEqual([]);
  });
});
