// cluster.config.json's limits: defaults, overrides, and values out of range refused with a message
// that names the field and the range.
import { describe, expect, it } from 'vitest';
import { ConfigError, DEFAULT_LIMITS, parseClusterConfig } from '../../src/config/cluster-config.js';

const base = {
  clusterId: 'c',
  nodes: [{ id: 'n1', clientUrl: 'http://127.0.0.1:7001', peerUrl: 'http://127.0.0.1:7101', dataDir: 'data/n1' }],
};

describe('limits.maxResponseBytes', () => {
  it('defaults to 16 MiB and can be set', () => {
    expect(parseClusterConfig(base, '/tmp').limits.maxResponseBytes).toBe(16 * 1024 * 1024);
    expect(DEFAULT_LIMITS.maxResponseBytes).toBe(16 * 1024 * 1024);
    expect(parseClusterConfig({ ...base, limits: { maxResponseBytes: 65536 } }, '/tmp').limits.maxResponseBytes).toBe(65536);
  });

  it.each([0, 1023, 256 * 1024 * 1024 + 1, 1.5, '16MiB'])('refuses %s, naming the field and the range', (value) => {
    expect(() => parseClusterConfig({ ...base, limits: { maxResponseBytes: value } }, '/tmp')).toThrow(ConfigError);
    expect(() => parseClusterConfig({ ...base, limits: { maxResponseBytes: value } }, '/tmp')).toThrow(/limits\.maxResponseBytes must be an integer in \[1024, 268435456\]/);
  });
});
