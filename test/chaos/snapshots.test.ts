import { describe, expect, it } from 'vitest';
import { MAX_LISTED, snapshotActivityFromLogs, totalInstalls } from '../../scripts/harness/chaos/snapshots.js';

const T0 = 1_700_000_000_000;

/** A pino JSON line as a node writes it (src/log.ts): level, time, pid, hostname, node, fields, msg. */
function line(node: string, atMs: number, msg: string, fields: Record<string, unknown> = {}): string {
  return JSON.stringify({ level: 30, time: T0 + atMs, pid: 4242, hostname: 'h', node, ...fields, msg });
}

const toRunClock = (epochMs: number): number => epochMs - T0;

describe('snapshot transfers from the node logs', () => {
  it("pairs a leader's sends with their ends and a follower's installs with the transfer they came from", () => {
    const n1 = [
      line('n1', 100, 'leader is n1', { term: 2, leader: 'n1' }),
      line('n1', 1000, 'sending a snapshot', { to: 'n2', index: 120, term: 2 }),
      line('n1', 1010, 'sending a snapshot', { to: 'n3', index: 120, term: 2 }),
      line('n1', 1050, 'snapshot sent', { to: 'n2', index: 120, bytes: 900, pairs: 10, ms: 50 }),
      line('n1', 1200, 'snapshot transfer failed', { to: 'n3', err: 'no answer within 30000 ms', bytes: 0 }),
      // Superseded (a transfer aborted by the sender logs nothing), then a new one that completes.
      line('n1', 5000, 'sending a snapshot', { to: 'n3', index: 300, term: 2 }),
      line('n1', 5500, 'sending a snapshot', { to: 'n3', index: 350, term: 2 }),
      line('n1', 5600, 'snapshot sent', { to: 'n3', index: 350, bytes: 1000, pairs: 10, ms: 100 }),
      // Killed while sending: no end.
      line('n1', 9000, 'sending a snapshot', { to: 'n2', index: 500, term: 2 }),
    ].join('\n');
    const n2 = [
      'not json: a stderr line about a snapshot',
      line('n2', 1002, 'receiving a snapshot', { from: 'n1', index: 120, term: 2 }),
      line('n2', 1049, 'snapshot received: installing it', { from: 'n1', index: 120, bytes: 900 }),
      line('n2', 1060, 'installed a snapshot from the leader', { index: 120, term: 2 }),
      line('n2', 7000, 'snapshot received but not needed (stale, or the log already has it)', {
        from: 'n1',
        index: 400,
      }),
    ].join('\n');
    const n3 = [
      line('n3', 5501, 'receiving a snapshot', { from: 'n1', index: 350, term: 2 }),
      line('n3', 5599, 'snapshot received: installing it', { from: 'n1', index: 350, bytes: 1000 }),
      line('n3', 5610, 'installed a snapshot from the leader', { index: 350, term: 2 }),
    ].join('\n');
    const activity = snapshotActivityFromLogs(
      new Map([
        ['n1', n1],
        ['n2', n2],
        ['n3', n3],
      ]),
      toRunClock,
    );

    expect(activity.sends).toEqual([
      { from: 'n1', to: 'n2', index: 120, term: 2, start: 1000, end: 1050, outcome: 'sent', bytes: 900 },
      {
        from: 'n1',
        to: 'n3',
        index: 120,
        term: 2,
        start: 1010,
        end: 1200,
        outcome: 'failed',
        bytes: 0,
        error: 'no answer within 30000 ms',
      },
      { from: 'n1', to: 'n3', index: 300, term: 2, start: 5000, end: null, outcome: 'unfinished', bytes: null },
      { from: 'n1', to: 'n3', index: 350, term: 2, start: 5500, end: 5600, outcome: 'sent', bytes: 1000 },
      { from: 'n1', to: 'n2', index: 500, term: 2, start: 9000, end: null, outcome: 'unfinished', bytes: null },
    ]);
    expect(activity.installs).toEqual([
      { node: 'n2', from: 'n1', index: 120, term: 2, receiveStart: 1002, at: 1060, bytes: 900 },
      { node: 'n3', from: 'n1', index: 350, term: 2, receiveStart: 5501, at: 5610, bytes: 1000 },
    ]);
    expect(activity.perNode).toEqual({
      n1: { installed: 0, notNeeded: 0, sent: 2, failed: 1 },
      n2: { installed: 1, notNeeded: 1, sent: 0, failed: 0 },
      n3: { installed: 1, notNeeded: 0, sent: 0, failed: 0 },
    });
    expect(totalInstalls(activity)).toBe(2);
    expect(activity.truncated).toBe(false);
  });

  it('an install without the lines before it (another incarnation wrote them, or none) still counts', () => {
    const n2 = [
      line('n2', 10, 'receiving a snapshot', { from: 'n1', index: 70, term: 3 }),
      // killed -9 here; the restarted node installs a later snapshot
      line('n2', 900, 'receiving a snapshot', { from: 'n3', index: 95, term: 4 }),
      line('n2', 950, 'snapshot received: installing it', { from: 'n3', index: 95, bytes: 64 }),
      line('n2', 960, 'installed a snapshot from the leader', { index: 95, term: 4 }),
      line('n2', 2000, 'installed a snapshot from the leader', { index: 140, term: 4 }),
    ].join('\n');
    const activity = snapshotActivityFromLogs(new Map([['n2', n2]]), toRunClock);
    expect(activity.installs).toEqual([
      { node: 'n2', from: 'n3', index: 95, term: 4, receiveStart: 900, at: 960, bytes: 64 },
      { node: 'n2', from: null, index: 140, term: 4, receiveStart: null, at: 2000, bytes: null },
    ]);
    expect(activity.perNode['n2']!.installed).toBe(2);
  });

  it('a node with no snapshot lines is counted with zeros; the lists are bounded, the counts are not', () => {
    const many = Array.from({ length: MAX_LISTED + 5 }, (_, i) =>
      line('n3', i, 'installed a snapshot from the leader', { index: i + 1, term: 1 }),
    ).join('\n');
    const activity = snapshotActivityFromLogs(
      new Map([
        ['n1', line('n1', 0, 'leader is n1', { term: 1, leader: 'n1' })],
        ['n3', many],
      ]),
      toRunClock,
    );
    expect(activity.perNode['n1']).toEqual({ installed: 0, notNeeded: 0, sent: 0, failed: 0 });
    expect(activity.perNode['n3']!.installed).toBe(MAX_LISTED + 5);
    expect(activity.installs).toHaveLength(MAX_LISTED);
    expect(activity.truncated).toBe(true);
  });
});
