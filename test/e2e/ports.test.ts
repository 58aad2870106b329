// The harness's port allocation: one cluster's ports are distinct (regression: a chaos test once got
// the same port for two nodes of one cluster, and every node refused the config).
import { describe, expect, it } from 'vitest';
import { freePorts } from '../../scripts/harness/cluster/process-cluster.js';

describe('freePorts', () => {
  it('hands out distinct, usable ports in one call', async () => {
    for (let round = 0; round < 20; round++) {
      const ports = await freePorts(10);
      expect(new Set(ports).size).toBe(10);
      for (const port of ports) expect(port).toBeGreaterThan(0);
    }
  });
});
