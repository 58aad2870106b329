// The chaos run's fault-switch network: which switch state each node gets, and how a refusal is
// treated. A node that has not applied a membership change yet refuses the new member's id (400
// bad-faults) until it does: that is retried; any other 4xx is final.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { FaultSwitchNetwork, isolate, switchStates } from '../../scripts/harness/chaos/network.js';

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

/** A fake node's peer port: answers each PUT /raft/faults with the next of `answers` (the last repeats). */
async function fakeSwitch(
  answers: readonly { status: number; body: unknown }[],
): Promise<{ url: string; puts: unknown[] }> {
  const puts: unknown[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      puts.push(JSON.parse(body));
      const answer = answers[Math.min(puts.length - 1, answers.length - 1)]!;
      res.writeHead(answer.status, { 'content-type': 'application/json' }).end(JSON.stringify(answer.body));
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, puts };
}

const AUTH = { token: 't', clusterId: 'c' };
const notYetAPeer = {
  status: 400,
  body: { error: 'bad-faults', message: 'body/dropTo/0 must be the id of a peer of this node (n1, n3), got "n4"' },
};

describe('fault-switch network', () => {
  it('sets dropTo at the sender and dropFrom at the receiver of every cut link', () => {
    const states = switchStates(isolate(['n1'], ['n1', 'n2', 'n3']), ['n1', 'n2', 'n3']);
    expect(Object.fromEntries(states)).toEqual({
      n1: { dropTo: ['n2', 'n3'], dropFrom: ['n2', 'n3'] },
      n2: { dropTo: ['n1'], dropFrom: ['n1'] },
      n3: { dropTo: ['n1'], dropFrom: ['n1'] },
    });
  });

  it('retries a node that does not know a peer yet, until it takes the state', async () => {
    const node = await fakeSwitch([notYetAPeer, notYetAPeer, { status: 200, body: { dropTo: ['n4'], dropFrom: [] } }]);
    const network = new FaultSwitchNetwork(() => [{ id: 'n2', peerUrl: node.url }], AUTH, 5000);
    await network.apply([{ from: 'n2', to: 'n4' }]);
    expect(node.puts).toEqual([
      { dropTo: ['n4'], dropFrom: [] },
      { dropTo: ['n4'], dropFrom: [] },
      { dropTo: ['n4'], dropFrom: [] },
    ]);
  });

  it('gives up on a node that keeps refusing at the deadline, naming its answer', async () => {
    const node = await fakeSwitch([notYetAPeer]);
    const network = new FaultSwitchNetwork(() => [{ id: 'n2', peerUrl: node.url }], AUTH, 300);
    await expect(network.apply([{ from: 'n2', to: 'n4' }])).rejects.toThrow(
      /could not set the fault switch on n2: 400 .*must be the id of a peer/,
    );
  });

  it('does not retry any other 4xx (a wrong token, fault injection off)', async () => {
    const node = await fakeSwitch([{ status: 401, body: { error: 'unauthorized', message: 'wrong token' } }]);
    const network = new FaultSwitchNetwork(() => [{ id: 'n2', peerUrl: node.url }], AUTH, 5000);
    await expect(network.apply([])).rejects.toThrow(/n2: 401/);
    expect(node.puts).toHaveLength(1);
  });
});
