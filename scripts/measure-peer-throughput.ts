// Loopback throughput of the peer transport: one PeerTransport (n1) streaming to one PeerServer (n2)
// as fast as the queue bound allows without drops. Not part of the test suite; run with
//   npx tsx scripts/measure-peer-throughput.ts [seconds] [entryBytes] [perTurn]
// entryBytes 0 (default) sends heartbeats; otherwise appends carrying one entry of that size.
// perTurn (default 500) messages are sent per event-loop turn; 1 measures per-request overhead.

import { pino } from 'pino';
import type { Message } from '../src/raft/types.js';
import { PeerServer } from '../src/transport/peer-server.js';
import { PeerTransport } from '../src/transport/peer-transport.js';

const seconds = Number(process.argv[2] ?? 3);
const entryBytes = Number(process.argv[3] ?? 0);
const perTurn = Number(process.argv[4] ?? 500);
const logger = pino({ level: 'warn' });
let received = 0;
const server = new PeerServer({
  host: '127.0.0.1',
  port: 0,
  selfId: 'n2',
  peers: ['n1'],
  clusterId: 'bench',
  token: 'bench-token',
  logger,
  onMessages: (_from, messages) => {
    received += messages.length;
  },
});
const { port } = await server.listen();
const transport = new PeerTransport({
  selfId: 'n1',
  peers: new Map([['n2', `http://127.0.0.1:${port}`]]),
  clusterId: 'bench',
  token: 'bench-token',
  logger,
  onUnreachable: () => {},
});

const data = new Uint8Array(entryBytes);
let next = 0;
function message(): Message {
  next++;
  return entryBytes === 0
    ? { type: 'heartbeat', from: 'n1', to: 'n2', term: 1, commit: next, round: next }
    : {
        type: 'app',
        from: 'n1',
        to: 'n2',
        term: 1,
        index: next,
        logTerm: 1,
        commit: 0,
        entries: [{ index: next + 1, term: 1, type: 0, data }],
      };
}

const started = Date.now();
const deadline = started + seconds * 1000;
while (Date.now() < deadline) {
  // Closed loop: keep the queue well under its bound so nothing is dropped.
  const queue = transport.stats()['n2'];
  if ((queue?.queued ?? 0) < 5_000 && (queue?.queuedBytes ?? 0) < 4 * 1024 * 1024) {
    for (let i = 0; i < perTurn; i++) transport.send([message()]);
  }
  await new Promise((resolve) => setImmediate(resolve));
}
const elapsed = (Date.now() - started) / 1000;
const stats = transport.stats()['n2'];
console.log(
  JSON.stringify({
    kind: entryBytes === 0 ? 'heartbeat' : `append(${entryBytes} B)`,
    perTurn,
    seconds: elapsed,
    messagesPerSecond: Math.round(received / elapsed),
    requestsPerSecond: Math.round((stats?.sentRequests ?? 0) / elapsed),
    messagesPerRequest: Math.round((stats?.sentMessages ?? 0) / Math.max(1, stats?.sentRequests ?? 0)),
    dropped: stats?.dropped,
    failures: stats?.failures,
  }),
);
await transport.close();
await server.close();
