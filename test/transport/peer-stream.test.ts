// Message streams (GET /raft/stream upgraded, then frames): what the peer client sends over them,
// what it falls back to, and the POST route's checks applied per frame by the server.
import { once } from 'node:events';
import { connect, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { Pool } from 'undici';
import { describe, expect, it } from 'vitest';
import type { Message, NodeId } from '../../src/raft/types.js';
import { encodeMessages } from '../../src/transport/codec.js';
import { FaultSwitch } from '../../src/transport/faults.js';
import { answerFrame, FrameReader, parseAnswer, framePrefix } from '../../src/transport/frames.js';
import { PeerServer, type PeerServerOptions } from '../../src/transport/peer-server.js';
import { PeerStream } from '../../src/transport/peer-stream.js';
import { PeerTransport, type PeerTransportOptions } from '../../src/transport/peer-transport.js';
import { STREAM_PATH, STREAM_PROTOCOL } from '../../src/transport/protocol.js';
import { captureLog, heartbeat, StubPeer, waitFor, useClosers } from './helpers.js';

const TOKEN = 'test-token';
const CLUSTER = 'test-cluster';

const closers = useClosers();

interface Served {
  server: PeerServer;
  port: number;
  received: Message[][];
}

async function peerServer(options: Partial<PeerServerOptions> = {}, port = 0): Promise<Served> {
  const received: Message[][] = [];
  const server = new PeerServer({
    host: '127.0.0.1',
    port,
    selfId: 'n2',
    peers: ['n1', 'n3'],
    clusterId: CLUSTER,
    token: TOKEN,
    logger: captureLog().logger,
    onMessages: (_from, messages) => void received.push(messages),
    ...options,
  });
  const address = await server.listen();
  closers.push(() => server.close());
  return { server, port: address.port, received };
}

function transport(
  url: string,
  options: Partial<PeerTransportOptions> = {},
): { t: PeerTransport; unreachable: NodeId[] } {
  const unreachable: NodeId[] = [];
  const t = new PeerTransport({
    selfId: 'n1',
    peers: new Map([['n2', url]]),
    clusterId: CLUSTER,
    token: TOKEN,
    logger: captureLog().logger,
    onUnreachable: (peer) => unreachable.push(peer),
    ...options,
  });
  closers.push(() => t.close());
  return { t, unreachable };
}

const rounds = (batches: Message[][]): number[] => batches.flat().map((m) => (m.type === 'heartbeat' ? m.round : -1));

/** A raw stream client: the upgrade by hand, then frames; answers come back parsed. */
class RawStream {
  readonly answers: Array<{ status: number; payload: Buffer }> = [];
  head = '';
  closed = false;
  private readonly reader = new FrameReader(1 << 20);
  private upgraded = false;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('close', () => (this.closed = true));
    socket.on('error', () => {});
  }

  static async open(port: number, headers: Record<string, string>): Promise<RawStream> {
    const socket = connect(port, '127.0.0.1');
    await once(socket, 'connect');
    const stream = new RawStream(socket);
    closers.push(async () => void socket.destroy());
    const lines = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`);
    socket.write(`GET ${STREAM_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\n${lines.join('')}\r\n`);
    await waitFor(() => stream.head.includes('\r\n\r\n') || stream.closed, 2_000, 'the upgrade answer');
    return stream;
  }

  send(body: Uint8Array): void {
    this.socket.write(Buffer.concat([framePrefix(body.byteLength), body]));
  }

  private onData(chunk: Buffer): void {
    if (!this.upgraded) {
      this.head += chunk.toString('latin1');
      const end = this.head.indexOf('\r\n\r\n');
      if (end < 0 || !this.head.startsWith('HTTP/1.1 101')) return;
      this.upgraded = true;
      const rest = Buffer.from(this.head.slice(end + 4), 'latin1');
      this.head = this.head.slice(0, end + 4);
      if (rest.length === 0) return;
      chunk = rest;
    }
    for (const frame of this.reader.push(chunk)) this.answers.push(parseAnswer(frame)!);
  }
}

/**
 * A bare stream peer: answers any upgrade with 101, then each request frame with what `answer`
 * makes of its body (raw bytes: a test may send a broken frame). Returns its port.
 */
async function bareStreamServer(answer: (body: Buffer) => Buffer): Promise<number> {
  const server = createNetServer((socket) => {
    let head = Buffer.alloc(0);
    let upgraded = false;
    const reader = new FrameReader(1 << 20);
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      if (!upgraded) {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        upgraded = true;
        socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${STREAM_PROTOCOL}\r\nConnection: Upgrade\r\n\r\n`);
        chunk = head.subarray(end + 4);
      }
      for (const body of reader.push(chunk)) socket.write(answer(body));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  closers.push(async () => void server.close());
  return (server.address() as AddressInfo).port;
}

const peerHeaders = (overrides: Record<string, string> = {}): Record<string, string> => ({
  Upgrade: STREAM_PROTOCOL,
  Authorization: `Bearer ${TOKEN}`,
  'X-Raftkv-Cluster': CLUSTER,
  'X-Raftkv-From': 'n1',
  'X-Raftkv-Replies': 'heartbeat,append',
  ...overrides,
});

describe('message streams', () => {
  it('batches travel over one stream per lane, in order, and the acknowledgements come back in the answers', async () => {
    const replies: Message[] = [];
    const n2Received: Message[][] = [];
    const n2 = await peerServer({
      onMessages: (_from, messages) => {
        n2Received.push(messages);
        return messages.map((m) => ({
          type: 'heartbeatResp',
          from: 'n2',
          to: 'n1',
          term: 1,
          round: m.type === 'heartbeat' ? m.round : 0,
        }));
      },
    });
    const { t } = transport(`http://127.0.0.1:${n2.port}`, {
      onReplies: (_peer, messages) => replies.push(...messages),
    });
    for (let round = 1; round <= 5; round++) {
      t.send([heartbeat('n1', 'n2', round)]);
      await waitFor(() => replies.length === round, 2_000, `the acknowledgement of round ${round}`);
    }
    expect(rounds(n2Received)).toEqual([1, 2, 3, 4, 5]);
    expect(replies.map((m) => (m.type === 'heartbeatResp' ? m.round : -1))).toEqual([1, 2, 3, 4, 5]);
    // The control lane's one stream carried all five; no POST was made.
    expect(n2.server.openStreams()).toBe(1);
    expect(t.stats()['n2']).toMatchObject({ sentRequests: 5, streamedRequests: 5, failures: 0, replies: 5 });
  });

  it('a peer without streams (an older node: 404) gets POSTs, and the upgrade is tried again later', async () => {
    const peer = new StubPeer();
    await peer.listen();
    closers.push(() => peer.close());
    const { t } = transport(peer.url, { streamRetryMs: 1_000 });
    t.send([heartbeat('n1', 'n2', 1)]);
    await waitFor(() => peer.requests.length === 1, 2_000, 'the POST');
    expect(peer.upgradesRefused).toBe(1);
    t.send([heartbeat('n1', 'n2', 2)]);
    await waitFor(() => peer.requests.length === 2, 2_000, 'the second POST');
    expect(peer.upgradesRefused).toBe(1); // posted without asking again
    await new Promise((resolve) => setTimeout(resolve, 1_050));
    t.send([heartbeat('n1', 'n2', 3)]);
    await waitFor(() => peer.requests.length === 3, 2_000, 'the third POST');
    expect(peer.upgradesRefused).toBe(2);
    expect(peer.messages.map((m) => (m.type === 'heartbeat' ? m.round : -1))).toEqual([1, 2, 3]);
    await waitFor(() => t.stats()['n2']?.sentRequests === 3, 2_000, 'the third answer');
    expect(t.stats()['n2']).toMatchObject({ failures: 0, streamedRequests: 0 });
  });

  it('refuses an upgrade as the POST route refuses the request: token, cluster, a removed or no sender, path', async () => {
    const n2 = await peerServer();
    n2.server.setMembers(['n1', 'n3'], ['n4']);
    const cases: Array<[Record<string, string>, string]> = [
      [{ Authorization: 'Bearer wrong' }, 'HTTP/1.1 401'],
      [{ 'X-Raftkv-Cluster': 'other' }, 'HTTP/1.1 403'],
      [{ 'X-Raftkv-From': 'n4' }, 'HTTP/1.1 403'],
      [{ 'X-Raftkv-From': '' }, 'HTTP/1.1 403'],
      [{ Upgrade: 'websocket' }, 'HTTP/1.1 404'],
    ];
    for (const [overrides, status] of cases) {
      const raw = await RawStream.open(n2.port, peerHeaders(overrides));
      expect(raw.head.startsWith(status), `${JSON.stringify(overrides)}: ${raw.head}`).toBe(true);
      await waitFor(() => raw.closed, 2_000, 'the refused connection to close');
    }
    expect(n2.server.openStreams()).toBe(0);
    expect(n2.received).toEqual([]);
  });

  it('checks every frame as a POST body: bad frames are answered 400 and the stream goes on', async () => {
    const n2 = await peerServer();
    const raw = await RawStream.open(n2.port, peerHeaders());
    expect(raw.head.startsWith('HTTP/1.1 101')).toBe(true);
    raw.send(Buffer.from('not msgpack at all'));
    raw.send(encodeMessages([heartbeat('n3', 'n2', 1)])); // claims another sender
    raw.send(encodeMessages([heartbeat('n1', 'n3', 2)])); // addressed to another node
    raw.send(encodeMessages([heartbeat('n1', 'n2', 3)]));
    await waitFor(() => raw.answers.length === 4, 2_000, 'four answers');
    const codes = raw.answers.map((a) =>
      a.status === 400 ? (JSON.parse(a.payload.toString()) as { error: string }).error : a.status,
    );
    expect(codes.slice(1, 3)).toEqual(['sender-mismatch', 'wrong-recipient']);
    expect(raw.answers[0]?.status).toBe(400);
    expect(raw.answers[3]?.status).toBe(204); // onMessages returned nothing
    expect(rounds(n2.received)).toEqual([3]);
    expect(raw.closed).toBe(false);
  });

  it('a frame over the body limit is answered 413 and the stream closed, before its bytes are read', async () => {
    const n2 = await peerServer({ bodyLimit: 1024 });
    const raw = await RawStream.open(n2.port, peerHeaders());
    raw.socket.write(framePrefix(1025)); // the length alone; no body follows
    await waitFor(() => raw.answers.length === 1 && raw.closed, 2_000, 'the 413 and the close');
    expect(raw.answers[0]?.status).toBe(413);
    expect(n2.received).toEqual([]);
  });

  it('the fault switch and a removal apply to the frames of a stream already open', async () => {
    const n2 = await peerServer();
    const raw = await RawStream.open(n2.port, peerHeaders());
    raw.send(encodeMessages([heartbeat('n1', 'n2', 1)]));
    await waitFor(() => raw.answers.length === 1, 2_000, 'the first answer');
    n2.server.setMembers(['n3'], ['n1']);
    raw.send(encodeMessages([heartbeat('n1', 'n2', 2)]));
    await waitFor(() => raw.answers.length === 2, 2_000, 'the refusal');
    expect(raw.answers[1]?.status).toBe(403);
    expect(JSON.parse(raw.answers[1]!.payload.toString())).toMatchObject({ error: 'removed' });
    await waitFor(() => raw.closed, 2_000, 'a removed node gets no kept connection');
    expect(rounds(n2.received)).toEqual([1]);
  });

  it('a stream whose answer never comes times out, and the next batch opens a fresh one', async () => {
    let hold = true;
    const n2Received: Message[][] = [];
    const n2 = await peerServer({
      onMessages: (_from, messages, mode) => {
        n2Received.push(messages);
        if (hold && mode === 'append') return new Promise<readonly Message[]>(() => {});
        return [];
      },
    });
    const { t, unreachable } = transport(`http://127.0.0.1:${n2.port}`, {
      requestTimeoutMs: 200,
      onReplies: () => {},
    });
    t.send([heartbeat('n1', 'n2', 1)]);
    await waitFor(() => unreachable.length === 1, 2_000, 'the timeout');
    expect(t.stats()['n2']).toMatchObject({ failures: 1 });
    await waitFor(() => n2.server.openStreams() === 0, 2_000, 'the abandoned stream to close');
    hold = false;
    t.send([heartbeat('n1', 'n2', 2)]);
    await waitFor(() => rounds(n2Received).includes(2), 2_000, 'delivery on a fresh stream');
    await waitFor(() => t.stats()['n2']?.sentRequests === 1, 2_000, 'the answer');
    expect(t.stats()['n2']).toMatchObject({ streamedRequests: 1 });
    expect(n2.server.openStreams()).toBe(1);
  });

  it('survives the peer restarting on the same port: the closed stream is replaced', async () => {
    const first = await peerServer();
    const { t, unreachable } = transport(`http://127.0.0.1:${first.port}`);
    t.send([heartbeat('n1', 'n2', 1)]);
    await waitFor(() => first.received.length === 1, 2_000, 'delivery to the first server');
    await first.server.close();
    const second = await peerServer({}, first.port);
    t.send([heartbeat('n1', 'n2', 2)]);
    await waitFor(() => second.received.length === 1, 2_000, 'delivery to the restarted server');
    expect(rounds(second.received)).toEqual([2]);
    expect(unreachable).toEqual([]);
  });

  it("close() ends the server's streams, even one whose answer is held", async () => {
    let held = 0;
    const n2 = await peerServer({ onMessages: () => (held++, new Promise<readonly Message[]>(() => {})) });
    const raw = await RawStream.open(n2.port, peerHeaders());
    raw.send(encodeMessages([heartbeat('n1', 'n2', 1)]));
    await waitFor(() => held === 1, 2_000, 'the frame to be taken and its answer held');
    await n2.server.close();
    await waitFor(() => raw.closed, 2_000, 'the stream to close');
    expect(raw.answers).toEqual([]);
  });

  it('the fault switch cuts a stream already open per frame (dropFrom: 503), and the link heals when it is lifted', async () => {
    const faults = new FaultSwitch();
    const n2 = await peerServer({ faults });
    const raw = await RawStream.open(n2.port, peerHeaders());
    raw.send(encodeMessages([heartbeat('n1', 'n2', 1)]));
    await waitFor(() => raw.answers.length === 1, 2_000, 'the first answer');
    faults.set({ dropFrom: ['n1'] });
    raw.send(encodeMessages([heartbeat('n1', 'n2', 2)]));
    await waitFor(() => raw.answers.length === 2, 2_000, 'the refusal');
    expect(raw.answers[1]?.status).toBe(503);
    faults.set({});
    raw.send(encodeMessages([heartbeat('n1', 'n2', 3)]));
    await waitFor(() => raw.answers.length === 3, 2_000, 'the third answer');
    expect(raw.answers.map((a) => a.status)).toEqual([204, 503, 204]);
    expect(rounds(n2.received)).toEqual([1, 3]);
  });

  it('a fault set before the stream opens does not refuse the upgrade: the lane keeps its stream once the fault is lifted', async () => {
    const faults = new FaultSwitch({ dropFrom: ['n1'] });
    const n2 = await peerServer({ faults });
    const { t, unreachable } = transport(`http://127.0.0.1:${n2.port}`);
    t.send([heartbeat('n1', 'n2', 1)]);
    await waitFor(() => unreachable.length === 1, 2_000, 'the 503');
    faults.set({});
    t.send([heartbeat('n1', 'n2', 2)]);
    await waitFor(() => t.stats()['n2']?.sentRequests === 1, 2_000, 'delivery');
    expect(t.stats()['n2']).toMatchObject({ streamedRequests: 1 });
    expect(rounds(n2.received)).toEqual([2]);
  });

  it('a sender that runs more than 16 frames ahead of their answers is cut off, with no answer overtaking a held one', async () => {
    let held = 0;
    const n2 = await peerServer({ onMessages: () => (held++, new Promise<readonly Message[]>(() => {})) });
    const raw = await RawStream.open(n2.port, peerHeaders());
    const body = encodeMessages([heartbeat('n1', 'n2', 1)]);
    const frame = Buffer.concat([framePrefix(body.length), body]);
    raw.socket.write(frame);
    await waitFor(() => held === 1, 2_000, 'the first frame to be taken and its answer held');
    raw.socket.write(Buffer.concat(Array.from({ length: 17 }, () => frame)));
    await waitFor(() => raw.closed, 2_000, 'the cut-off');
    expect(held).toBe(1);
    expect(raw.answers).toEqual([]);
  });

  it('a refused upgrade holds nothing, even when the caller keeps its side open', async () => {
    const n2 = await peerServer();
    const socket = connect({ port: n2.port, host: '127.0.0.1', allowHalfOpen: true });
    closers.push(async () => void socket.destroy());
    let answer = '';
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString()));
    await once(socket, 'connect');
    socket.write(
      `GET ${STREAM_PATH} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: ${STREAM_PROTOCOL}\r\n` +
        'Authorization: Bearer wrong\r\n\r\n',
    );
    await waitFor(() => answer.startsWith('HTTP/1.1 401'), 2_000, 'the refusal');
    // Tracked from the upgrade until its socket closes: only a destroy closes it while our side is open.
    await waitFor(() => n2.server.openStreams() === 0, 2_000, 'the refused socket to be destroyed');
    // Seen from our side too: a socket the server merely ended would take our bytes; a destroyed
    // one answers them with a reset.
    let reset = false;
    socket.on('error', () => (reset = true));
    socket.on('close', () => (reset = true));
    const deadline = Date.now() + 2_000;
    while (!reset && Date.now() < deadline) {
      socket.write('x');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(reset).toBe(true);
  });

  it('a sender that is not (yet) a member gets its stream, and each of its frames is refused until it is', async () => {
    const n2 = await peerServer();
    const raw = await RawStream.open(n2.port, peerHeaders({ 'X-Raftkv-From': 'n4' }));
    expect(raw.head.startsWith('HTTP/1.1 101')).toBe(true);
    raw.send(encodeMessages([heartbeat('n4', 'n2', 1)]));
    await waitFor(() => raw.answers.length === 1 && raw.closed, 2_000, 'the refusal and the close');
    expect(raw.answers[0]?.status).toBe(403);
    expect(JSON.parse(raw.answers[0]!.payload.toString())).toMatchObject({ error: 'unknown-sender' });
    // Added to the membership this node applied: its next stream carries its messages.
    n2.server.setMembers(['n1', 'n3', 'n4']);
    const next = await RawStream.open(n2.port, peerHeaders({ 'X-Raftkv-From': 'n4' }));
    next.send(encodeMessages([heartbeat('n4', 'n2', 2)]));
    await waitFor(() => next.answers.length === 1, 2_000, 'the answer');
    expect(next.answers[0]?.status).toBe(204);
    expect(rounds(n2.received)).toEqual([2]);
  });

  it('a throwing or failing batch is answered 500, and the stream goes on', async () => {
    let calls = 0;
    const n2Received: Message[][] = [];
    const n2 = await peerServer({
      onMessages: (_from, messages) => {
        calls++;
        if (calls === 1) throw new Error('planted: onMessages throws');
        if (calls === 2) return Promise.reject(new Error('planted: the held answer fails'));
        n2Received.push(messages);
        return [];
      },
    });
    const raw = await RawStream.open(n2.port, peerHeaders());
    for (let round = 1; round <= 3; round++) raw.send(encodeMessages([heartbeat('n1', 'n2', round)]));
    await waitFor(() => raw.answers.length === 3, 2_000, 'three answers');
    expect(raw.answers.map((a) => a.status)).toEqual([500, 500, 204]);
    expect(rounds(n2Received)).toEqual([3]);
    expect(raw.closed).toBe(false);
  });

  it('frames sent ahead are bounded in bytes too: past one body limit the sender is cut off', async () => {
    let held = 0;
    const n2 = await peerServer({
      bodyLimit: 1024,
      onMessages: () => (held++, new Promise<readonly Message[]>(() => {})),
    });
    const raw = await RawStream.open(n2.port, peerHeaders());
    raw.send(encodeMessages([heartbeat('n1', 'n2', 1)]));
    await waitFor(() => held === 1, 2_000, 'the first frame to be taken and its answer held');
    // Three frames of 400 bytes (well under 16 frames, each under the limit): 1,200 bytes queued.
    const filler = Buffer.alloc(400 - 4);
    raw.socket.write(Buffer.concat([0, 1, 2].flatMap(() => [framePrefix(filler.length), filler])));
    await waitFor(() => raw.closed, 2_000, 'the cut-off');
    expect(held).toBe(1);
    expect(raw.answers).toEqual([]);
  });

  it('an upgrade that outlives its deadline never sends its body nor answers a later request', async () => {
    // A bare stream server that echoes each frame's body as a 200 answer, behind connections that
    // take 150 ms to open (a peer that is slow to accept), with a 100 ms deadline per request.
    const echoed: string[] = [];
    const port = await bareStreamServer((body) => {
      echoed.push(body.toString());
      return answerFrame(200, body);
    });
    let slow = true;
    const pool = new Pool(`http://127.0.0.1:${port}`, {
      connections: 1,
      connect: (options, callback) => {
        setTimeout(
          () => {
            const socket = connect(Number(options.port), options.hostname);
            socket.once('connect', () => callback(null, socket));
            socket.once('error', (error) => callback(error, null));
          },
          slow ? 150 : 0,
        );
      },
    });
    const stream = new PeerStream(pool, {});
    closers.push(async () => {
      stream.close();
      await pool.destroy();
    });
    const first = await stream.exchange(Buffer.from('req-0'), 100);
    expect(first.kind).toBe('failed');
    slow = false;
    for (let i = 1; i <= 3; i++) {
      const result = await stream.exchange(Buffer.from(`req-${i}`), 1_000);
      expect(result.kind === 'answered' ? result.body.toString() : result.kind).toBe(`req-${i}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200)); // past the first upgrade's connect
    expect(echoed).toEqual(['req-1', 'req-2', 'req-3']);
  });

  it('an answer frame that breaks the framing fails the request without a retry (a broken peer is not a stale socket)', async () => {
    // Each answer is a frame too short to hold a status: a peer that is not raftkv, or a bug.
    let frames = 0;
    const port = await bareStreamServer(() => {
      frames++;
      const broken = Buffer.alloc(5);
      broken.writeUInt32BE(1, 0);
      return broken;
    });
    const { t, unreachable } = transport(`http://127.0.0.1:${port}`);
    t.send([heartbeat('n1', 'n2', 1)]);
    await waitFor(() => unreachable.length === 1, 2_000, 'the failure');
    expect(t.stats()['n2']).toMatchObject({ failures: 1, retries: 0, sentRequests: 0 });
    expect(frames).toBe(1);
  });
});
