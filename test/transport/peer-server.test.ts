import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect } from 'node:net';
import { Packr } from 'msgpackr';
import { Client } from 'undici';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EntryType, type Message, type NodeId } from '../../src/raft/types.js';
import { decodeMessages, encodeMessages } from '../../src/transport/codec.js';
import { FaultSwitch } from '../../src/transport/faults.js';
import { PeerServer, type PeerServerOptions } from '../../src/transport/peer-server.js';
import type { ReplyMode } from '../../src/transport/protocol.js';
import { captureLog, heartbeat, waitFor, type CapturedLog } from './helpers.js';

const TOKEN = 'test-token';
const CLUSTER = 'test-cluster';

interface Answer {
  status: number;
  body: unknown;
}

let server: PeerServer | undefined;
let client: Client | undefined;
let port = 0;
let log: CapturedLog;
let delivered: Array<{ from: NodeId; messages: Message[] }>;

async function start(options: Partial<PeerServerOptions> = {}): Promise<void> {
  await server?.close();
  await client?.close();
  server = new PeerServer({
    host: '127.0.0.1',
    port: 0,
    selfId: 'n1',
    peers: ['n2', 'n3'],
    clusterId: CLUSTER,
    token: TOKEN,
    logger: log.logger,
    onMessages: (from, messages) => void delivered.push({ from, messages }),
    ...options,
  });
  ({ port } = await server.listen());
  client = new Client(`http://127.0.0.1:${port}`);
}

function peerHeaders(from = 'n2'): Record<string, string> {
  return {
    authorization: `Bearer ${TOKEN}`,
    'x-raftkv-cluster': CLUSTER,
    'x-raftkv-from': from,
    'content-type': 'application/msgpack',
  };
}

async function request(
  method: 'GET' | 'POST' | 'PUT',
  path: string,
  headers: Record<string, string>,
  body?: Uint8Array | string,
): Promise<Answer> {
  if (client === undefined) throw new Error('not started');
  const response = await client.request({ method, path, headers, ...(body === undefined ? {} : { body }) });
  const text = await response.body.text();
  return { status: response.statusCode, body: text === '' ? null : JSON.parse(text) };
}

const postMessages = (body: Uint8Array, headers = peerHeaders()): Promise<Answer> =>
  request('POST', '/raft/messages', headers, body);

function errorCode(answer: Answer): unknown {
  return (answer.body as { error?: unknown } | null)?.error;
}

beforeEach(async () => {
  log = captureLog();
  delivered = [];
  await start();
});

afterEach(async () => {
  await client?.close();
  await server?.close();
  client = undefined;
  server = undefined;
});

describe('POST /raft/messages', () => {
  it('delivers a valid batch synchronously and answers 204', async () => {
    const messages = [heartbeat('n2', 'n1', 1), heartbeat('n2', 'n1', 2)];
    const answer = await postMessages(encodeMessages(messages));
    expect(answer).toEqual({ status: 204, body: null });
    expect(delivered).toEqual([{ from: 'n2', messages }]);
  });

  describe('replies (heartbeat acknowledgements in the answer)', () => {
    const ack = (round: number): Message => ({ type: 'heartbeatResp', from: 'n1', to: 'n2', term: 1, round });
    const asked: ReplyMode[] = [];
    const replying = (options: Partial<PeerServerOptions> = {}): Promise<void> =>
      start({
        onMessages: (from, messages, replies) => {
          delivered.push({ from, messages });
          asked.push(replies);
          return replies === 'none' ? [] : messages.map((m) => ack((m as { round: number }).round));
        },
        ...options,
      });
    const postRaw = async (
      headers: Record<string, string>,
    ): Promise<{ status: number; type: unknown; body: Buffer }> => {
      if (client === undefined) throw new Error('not started');
      const response = await client.request({
        method: 'POST',
        path: '/raft/messages',
        headers,
        body: encodeMessages([heartbeat('n2', 'n1', 7)]),
      });
      const body = Buffer.from(await response.body.arrayBuffer());
      return { status: response.statusCode, type: response.headers['content-type'], body };
    };

    beforeEach(() => {
      asked.length = 0;
    });

    it('a sender that takes replies gets them in a 200 msgpack answer', async () => {
      await replying();
      const answer = await postRaw({ ...peerHeaders(), 'x-raftkv-replies': 'heartbeat' });
      expect(answer.status).toBe(200);
      expect(answer.type).toBe('application/msgpack');
      expect(decodeMessages(answer.body)).toEqual([ack(7)]);
      expect(asked).toEqual(['heartbeat']);
    });

    it('a sender that does not say so gets 204, and the node is told not to hold its acknowledgements back', async () => {
      await replying();
      const answer = await postRaw(peerHeaders());
      expect(answer.status).toBe(204);
      expect(asked).toEqual(['none']);
    });

    it('204 when the node has nothing to reply', async () => {
      await start({ onMessages: () => [] });
      expect((await postRaw({ ...peerHeaders(), 'x-raftkv-replies': 'heartbeat' })).status).toBe(204);
    });

    it('a sender that takes append acknowledgements too gets the answer the node resolves later', async () => {
      let resolveHeld: (replies: readonly Message[]) => void = () => undefined;
      const faults = new FaultSwitch();
      await start({
        faults,
        onMessages: (_from, _messages, replies) => {
          asked.push(replies);
          return new Promise<readonly Message[]>((resolve) => (resolveHeld = resolve));
        },
      });
      const answering = postRaw({ ...peerHeaders(), 'x-raftkv-replies': 'heartbeat,append' });
      await waitFor(() => asked.length === 1, 2_000, 'the batch to arrive');
      resolveHeld([ack(7)]);
      const answer = await answering;
      expect(answer.status).toBe(200);
      expect(decodeMessages(answer.body)).toEqual([ack(7)]);
      expect(asked).toEqual(['append']);

      // The link is cut while the answer is held: the acknowledgements are lost, like any message on it.
      const cutLater = postRaw({ ...peerHeaders(), 'x-raftkv-replies': 'heartbeat,append' });
      await waitFor(() => asked.length === 2, 2_000, 'the batch to arrive');
      faults.set({ dropTo: ['n2'] });
      resolveHeld([ack(8)]);
      expect((await cutLater).status).toBe(204);
    });

    it('no replies while the fault switch cuts our link to the sender (dropTo): they must be lost like the rest', async () => {
      await replying({ faults: new FaultSwitch({ dropTo: ['n2'] }) });
      const answer = await postRaw({ ...peerHeaders(), 'x-raftkv-replies': 'heartbeat' });
      expect(answer.status).toBe(204);
      expect(asked).toEqual(['none']);
    });
  });

  it('401 without a token or with a wrong one, with a JSON error body', async () => {
    const body = encodeMessages([heartbeat('n2', 'n1', 1)]);
    const { authorization: _omitted, ...noToken } = peerHeaders();
    for (const headers of [
      noToken,
      { ...noToken, authorization: 'Bearer wrong' },
      { ...noToken, authorization: TOKEN },
      { ...noToken, authorization: `Basic ${TOKEN}` },
    ]) {
      const answer = await postMessages(body, headers);
      expect(answer.status).toBe(401);
      expect(answer.body).toEqual({ error: 'unauthorized', message: expect.any(String) });
    }
    expect(delivered).toEqual([]);
  });

  it('403 for a wrong cluster or an unknown sender', async () => {
    const body = encodeMessages([heartbeat('n2', 'n1', 1)]);
    expect(errorCode(await postMessages(body, { ...peerHeaders(), 'x-raftkv-cluster': 'other' }))).toBe(
      'wrong-cluster',
    );
    const { 'x-raftkv-cluster': _c, ...noCluster } = peerHeaders();
    expect((await postMessages(body, noCluster)).status).toBe(403);
    const unknown = await postMessages(encodeMessages([heartbeat('n9', 'n1', 1)]), peerHeaders('n9'));
    expect(unknown.status).toBe(403);
    expect(errorCode(unknown)).toBe('unknown-sender');
    const { 'x-raftkv-from': _f, ...noFrom } = peerHeaders();
    expect((await postMessages(body, noFrom)).status).toBe(403);
    expect(delivered).toEqual([]);
  });

  it('400 for garbage, ill-shaped messages, a sender mismatch or a wrong recipient', async () => {
    const cases: Array<[Uint8Array, string]> = [
      [randomBytes(64), 'bad-message'],
      [
        new Packr({ useRecords: true }).pack([
          { type: 'heartbeat', from: 'n2', to: 'n1', term: -1, commit: 0, round: 0 },
        ]),
        'bad-message',
      ],
      [new Packr({ useRecords: true }).pack([{ type: 'heartbeat', from: 'n2', to: 'n1' }]), 'bad-message'],
      [encodeMessages([heartbeat('n2', 'n1', 1), heartbeat('n3', 'n1', 2)]), 'sender-mismatch'],
      [encodeMessages([heartbeat('n2', 'n3', 1)]), 'wrong-recipient'],
    ];
    for (const [body, code] of cases) {
      const answer = await postMessages(body);
      expect(answer.status).toBe(400);
      expect(errorCode(answer)).toBe(code);
    }
    expect(delivered).toEqual([]);
  });

  it('400 unsupported-entry-type for an append carrying an entry type from a newer build', async () => {
    const append: Message = {
      type: 'app',
      from: 'n2',
      to: 'n1',
      term: 2,
      index: 6,
      logTerm: 2,
      commit: 6,
      entries: [
        { index: 7, term: 2, type: EntryType.Normal, data: new Uint8Array([1]) },
        { index: 8, term: 2, type: 7 as EntryType, data: new Uint8Array([2]) },
      ],
    };
    const answer = await postMessages(encodeMessages([heartbeat('n2', 'n1', 1), append]));
    expect(answer.status).toBe(400);
    expect(answer.body).toEqual({
      error: 'unsupported-entry-type',
      message:
        'message 1 (app) entry 1 (index 8) has entry type 7, which this build cannot apply (it applies 0, 1): upgrade this node',
    });
    // Nothing of the batch reaches the node, not even the heartbeat before it.
    expect(delivered).toEqual([]);
    expect(log.matching('which this build cannot apply')).toHaveLength(1);
  });

  it('400 bad-message for a body that would decode into millions of values, refused before decoding, and serves on', async () => {
    // [ [ {}, {}, ... ] ]: 8 MiB of one-byte empty maps, each of which msgpackr would make an object.
    const size = 8 * 1024 * 1024;
    const flood = Buffer.alloc(size, 0x80);
    flood.set([0x91, 0xdd], 0);
    flood.writeUInt32BE(size - 6, 2);
    const answer = await postMessages(flood);
    expect(answer.status).toBe(400);
    expect(answer.body).toEqual({
      error: 'bad-message',
      message: expect.stringMatching(/^body refused before decoding: more than 1000000 values/),
    });
    expect(delivered).toEqual([]);
    expect((await postMessages(encodeMessages([heartbeat('n2', 'n1', 1)]))).status).toBe(204);
  });

  it('413 for a body over the limit, but only once authenticated', async () => {
    await start({ bodyLimit: 1024 });
    const big = new Uint8Array(4096);
    const answer = await postMessages(big);
    expect(answer.status).toBe(413);
    expect(errorCode(answer)).toBe('body-too-large');
    const { authorization: _a, ...noToken } = peerHeaders();
    expect((await postMessages(big, noToken)).status).toBe(401);
  });

  it('415 for a body that is not msgpack', async () => {
    const answer = await request(
      'POST',
      '/raft/messages',
      { ...peerHeaders(), 'content-type': 'application/json' },
      '[]',
    );
    expect(answer.status).toBe(415);
    expect(errorCode(answer)).toBe('unsupported-media-type');
  });

  it('404 with a JSON body for any other route or method', async () => {
    for (const [method, path] of [
      ['GET', '/raft/messages'],
      ['POST', '/kv/x'],
      ['GET', '/'],
      ['PUT', '/raft/faults'],
    ] as const) {
      const answer = await request(method, path, peerHeaders(), method === 'GET' ? undefined : '{}');
      expect(answer.status).toBe(404);
      expect(answer.body).toEqual({ error: 'not-found', message: expect.any(String) });
    }
  });

  it('500 when onMessages throws, and the server lives on', async () => {
    let throwing = true;
    await start({
      onMessages: (from, messages) => {
        if (throwing) throw new Error('driver bug');
        delivered.push({ from, messages });
      },
    });
    const body = encodeMessages([heartbeat('n2', 'n1', 1)]);
    const failed = await postMessages(body);
    expect(failed.status).toBe(500);
    expect(errorCode(failed)).toBe('internal');
    throwing = false;
    expect((await postMessages(body)).status).toBe(204);
    expect(delivered).toHaveLength(1);
  });

  it('survives non-HTTP garbage on a raw socket and keeps serving', async () => {
    for (const garbage of [
      Buffer.concat([Buffer.from([0]), randomBytes(4095)]),
      Buffer.from('GET / HTTP/1.1\r\nContent-Length: abc\r\n\r\n'),
      Buffer.from('\x00\x01\x02 HTTP/9.9\r\n\r\n'),
    ]) {
      const socket = connect(port, '127.0.0.1');
      socket.on('error', () => {}); // the server may reset us; that is the point
      await once(socket, 'connect');
      socket.write(garbage);
      await once(socket, 'close'); // the server dropped the connection
    }
    expect(log.matching('malformed HTTP')).toHaveLength(1); // three bad connections, one line
    expect((await postMessages(encodeMessages([heartbeat('n2', 'n1', 1)]))).status).toBe(204);
    expect(delivered).toHaveLength(1);
  });

  it('rate-limits the log lines of a flood of bad requests', async () => {
    const body = encodeMessages([heartbeat('n2', 'n1', 1)]);
    const headers = { ...peerHeaders(), authorization: 'Bearer wrong' };
    for (let i = 0; i < 50; i++) expect((await postMessages(body, headers)).status).toBe(401);
    expect(log.matching('rejected peer request')).toHaveLength(1);
  });
});
