import { describe, expect, it } from 'vitest';
import { FAULT_KINDS } from '../../scripts/harness/chaos/nemesis-kinds.js';
import { DEFAULTS, parseChaosArgs, secondsRange, USAGE, UsageError } from '../../scripts/harness/chaos/options.js';

const parse = (...args: string[]) => parseChaosArgs(args, () => 777);

describe('the chaos command line', () => {
  it('has the documented defaults, with a random seed', () => {
    expect(parse()).toEqual({ ...DEFAULTS, seed: 777, kinds: [...DEFAULTS.kinds] });
  });

  it('parses every option', () => {
    const options = parse(
      '--nodes',
      '5',
      '--clients',
      '4',
      '--duration',
      '20',
      '--seed',
      '9',
      '--nemesis',
      'kill,partition-link',
      '--fault-seconds',
      '1-2.5',
      '--gap-seconds',
      '3',
      '--keys',
      '5',
      '--timeout',
      '1500',
      '--unsafe',
      'early-ack',
      '--max-ops',
      '1000',
      '--checker-steps',
      '99',
      '--out',
      '/tmp/x',
      '--network',
      'netns',
    );
    expect(options).toMatchObject({
      nodes: 5,
      clients: 4,
      durationMs: 20_000,
      seed: 9,
      kinds: ['kill-random', 'kill-leader', 'kill-all', 'partition-link'],
      faultMs: { min: 1000, max: 2500 },
      gapMs: { min: 3000, max: 3000 },
      keys: 5,
      requestTimeoutMs: 1500,
      unsafeMode: 'early-ack',
      maxOps: 1000,
      checkerSteps: 99,
      outDir: '/tmp/x',
      network: 'netns',
    });
  });

  it('takes the log compaction of the nodes: --snapshot-every N [--snapshot-keep M], keep defaulting to N/5', () => {
    expect(parse()!.snapshot).toBeNull();
    expect(parse('--snapshot-every', '50', '--snapshot-keep', '10')!.snapshot).toEqual({
      everyEntries: 50,
      keepEntries: 10,
    });
    expect(parse('--snapshot-every', '50')!.snapshot).toEqual({ everyEntries: 50, keepEntries: 10 });
    expect(parse('--snapshot-every', '3')!.snapshot).toEqual({ everyEntries: 3, keepEntries: 0 });
    expect(parse('--snapshot-every', '20', '--snapshot-keep', '0')!.snapshot).toEqual({
      everyEntries: 20,
      keepEntries: 0,
    });
    expect(() => parse('--snapshot-keep', '10')).toThrow(/--snapshot-keep needs --snapshot-every/);
    expect(() => parse('--snapshot-every', '0')).toThrow(/--snapshot-every must be an integer from 1/);
    expect(() => parse('--snapshot-every', 'tiny')).toThrow(UsageError);
    expect(() => parse('--snapshot-every', '50', '--snapshot-keep=-1')).toThrow(
      /--snapshot-keep must be an integer from 0/,
    );
    expect(() => parse('--snapshot-every')).toThrow(UsageError);
  });

  it('runs the versioned workload unless told --workload plain', () => {
    expect(DEFAULTS.workload).toBe('versioned');
    expect(parse()!.workload).toBe('versioned');
    expect(parse('--workload', 'plain')!.workload).toBe('plain');
    expect(parse('--workload', 'versioned')!.workload).toBe('versioned');
    expect(() => parse('--workload', 'cas')).toThrow(/--workload must be versioned or plain, not "cas"/);
  });

  it('runs every fault by default; membership changes only when asked for, and not with netns', () => {
    expect(parse()!.kinds).toEqual([...FAULT_KINDS]);
    expect(parse('--nemesis', 'all,membership')!.kinds).toEqual([...FAULT_KINDS, 'membership']);
    expect(parse('--nemesis', 'membership')!.kinds).toEqual(['membership']);
    expect(() => parse('--nemesis', 'all,membership', '--network', 'netns')).toThrow(
      /--nemesis membership works with --network fault-switch only/,
    );
    expect(USAGE).toContain('--nemesis all,membership');
  });

  it('returns null for --help and explains bad input', () => {
    expect(parse('--help')).toBeNull();
    expect(() => parse('--nodes', '4')).toThrow(UsageError);
    expect(() => parse('--duration', 'long')).toThrow(/--duration must be an integer/);
    expect(() => parse('--nemesis', 'bogus')).toThrow(/unknown nemesis/);
    expect(() => parse('--network', 'tc')).toThrow(/--network/);
    expect(() => parse('--frobnicate')).toThrow(UsageError);
    expect(() => secondsRange('6-2', 'x', DEFAULTS.faultMs)).toThrow(/empty range/);
  });
});
