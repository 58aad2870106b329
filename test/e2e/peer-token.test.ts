// End-to-end: the built-in development peer token only ever guards a loopback-only cluster. A node
// whose cluster config puts any peer port on another address refuses to start with it (exit 2, a
// message that says what to do) before it opens its data dir or binds a port.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ProcessCluster, waitFor } from '../../scripts/harness/cluster/process-cluster.js';

/** ProcessCluster always sets RAFTKV_PEER_TOKEN; an empty value counts as unset (token.ts). */
const DEV_TOKEN_ENV = { RAFTKV_PEER_TOKEN: '' };
/** TEST-NET-1 (RFC 5737): not loopback, and never needs to be reachable: the node refuses first. */
const EXPOSED_HOST = '192.0.2.1';

describe('the development peer token', () => {
  let cluster: ProcessCluster;

  beforeEach(async () => {
    cluster = await ProcessCluster.create();
  });
  afterEach(async () => {
    await cluster?.destroy();
  });

  /** Rewrites the config so that n3's peer URL is on a non-loopback address. */
  function exposeN3(): void {
    const config = JSON.parse(readFileSync(cluster.configPath, 'utf8')) as {
      nodes: Array<{ id: string; peerUrl: string }>;
    };
    const n3 = config.nodes.find((n) => n.id === 'n3');
    if (n3 === undefined) throw new Error('no n3 in the config');
    n3.peerUrl = `http://${EXPOSED_HOST}:${new URL(n3.peerUrl).port}`;
    writeFileSync(cluster.configPath, JSON.stringify(config, null, 2));
  }

  it('is refused, with exit code 2 and what to do, when any peer URL is not loopback', async () => {
    exposeN3();
    // n1's own addresses are loopback: it refuses because it would talk to n3 with the public token.
    const n1 = cluster.start('n1', DEV_TOKEN_ENV);
    const exit = await waitFor('n1 to exit', () => n1.exit ?? undefined, 15_000);
    expect(exit.code).toBe(2);
    const log = readFileSync(n1.logFile, 'utf8');
    expect(log).toMatch(/refusing to start with the built-in development peer token/);
    expect(log).toContain(`n3 at http://${EXPOSED_HOST}:`);
    expect(log).toMatch(/Set RAFTKV_PEER_TOKEN to the same long random secret on every node/);
    // Refused before anything was opened or bound: no data dir, and nothing answers on its ports.
    expect(existsSync(n1.dataDir)).toBe(false);
    expect(await cluster.status('n1')).toBeNull();
  });

  it('with a real secret, the same config starts', async () => {
    exposeN3();
    cluster.start('n1');
    const status = await waitFor('n1 to be up', () => cluster.status('n1').then((s) => s ?? undefined), 15_000);
    expect(status.id).toBe('n1');
    expect(readFileSync(cluster.node('n1').logFile, 'utf8')).not.toMatch(/development peer token/);
  });

  it('a loopback-only cluster still runs with it, and says so loudly', async () => {
    cluster.start('n1', DEV_TOKEN_ENV);
    const status = await waitFor('n1 to be up', () => cluster.status('n1').then((s) => s ?? undefined), 15_000);
    expect(status.id).toBe('n1');
    expect(readFileSync(cluster.node('n1').logFile, 'utf8')).toMatch(/!!! using the built-in development peer token/);
  });
});
