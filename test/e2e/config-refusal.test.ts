// End-to-end: a node whose cluster.config.json holds a misspelt key refuses to start (exit code 2)
// with a message that names the key and the known ones, before it opens its data dir or binds a
// port. It used to ignore the key and run with the default (a typo'd "tickMS" meant tickMs = 50).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ProcessCluster, waitFor } from '../../scripts/harness/cluster/process-cluster.js';

describe('a cluster config with an unknown key', () => {
  let cluster: ProcessCluster;

  beforeEach(async () => {
    cluster = await ProcessCluster.create({ nodes: 1 });
  });
  afterEach(async () => {
    await cluster?.destroy();
  });

  it('is refused with exit code 2, naming the key and the known ones', async () => {
    const config = JSON.parse(readFileSync(cluster.configPath, 'utf8')) as { raft: Record<string, number> };
    config.raft['tickMS'] = 5;
    writeFileSync(cluster.configPath, JSON.stringify(config, null, 2));

    const n1 = cluster.start('n1');
    const exit = await waitFor('n1 to exit', () => n1.exit ?? undefined, 15_000);
    expect(exit.code).toBe(2);
    const log = readFileSync(n1.logFile, 'utf8');
    expect(log).toContain(`${cluster.configPath}: raft: unknown key "tickMS" (known: tickMs, electionTicks,`);
    // Refused before anything was opened or bound.
    expect(existsSync(n1.dataDir)).toBe(false);
    expect(await cluster.status('n1')).toBeNull();
  });
});
