// The simulated node's state machine: real commands through the real apply code, snapshots that
// carry the idempotency records, and an index of records rebuilt on install and restart.
import { describe, expect, it } from 'vitest';
import { encodeCommand, type Command } from '../../src/storage/command.js';
import type { EvictionBounds } from '../../src/storage/idempotency.js';
import type { Request } from '../../src/storage/request.js';
import {
  decodeLegacyCommand,
  encodeLegacyCommand,
  encodeLegacyMarker,
  isLegacyCommand,
} from '../../scripts/harness/sim/legacy-command.js';
import { SimStateMachine } from '../../scripts/harness/sim/state-machine.js';

const utf8 = new TextEncoder();
const text = new TextDecoder();
const bytes = (s: string): Uint8Array => utf8.encode(s);
const BOUNDS: EvictionBounds = { ttlMs: 100, maxRecords: 1000, maxBytes: 1 << 20 };

const put = (key: string, value: string): Uint8Array =>
  encodeCommand({ op: 'put', key: bytes(key), value: bytes(value) });
const request = (body: Request, id?: string, at = 0): Uint8Array => {
  const command: Command =
    id === undefined
      ? { op: 'request', request: body }
      : { op: 'request', request: body, idempotency: { id, fingerprint: bytes(`f ${id}`), at } };
  return encodeCommand(command);
};
const valueOf = (sm: SimStateMachine, key: string): string | undefined => {
  const read = sm.read(bytes(key));
  return read === undefined ? undefined : text.decode(read.value);
};

describe('the simulated state machine', () => {
  it('applies encoded commands with the real code: metadata, conditions at apply time, transactions', () => {
    const sm = new SimStateMachine(BOUNDS);
    expect(sm.apply(put('a', 'v1'), 3, 1).answer).toBeNull();
    expect(sm.read(bytes('a'))?.meta).toEqual({ createIndex: 3, modIndex: 3, version: 1 });
    const stale = sm.apply(
      request({ kind: 'put', key: bytes('a'), value: bytes('v2'), condition: { modIndex: 2 } }),
      4,
      1,
    );
    expect(stale.answer).toEqual({
      kind: 'applied',
      result: { kind: 'failed', current: { createIndex: 3, modIndex: 3, version: 1 } },
    });
    expect(valueOf(sm, 'a')).toBe('v1');
    const txn = sm.apply(
      request({
        kind: 'txn',
        compare: [{ key: bytes('a'), target: 'value', cmp: '=', bytes: bytes('v0') }],
        success: [{ op: 'put', key: bytes('a'), value: bytes('v3') }],
        failure: [{ op: 'get', key: bytes('a') }],
      }),
      5,
      1,
    );
    expect(txn.answer).toMatchObject({ kind: 'applied', result: { kind: 'txn', succeeded: false } });
    expect(valueOf(sm, 'a')).toBe('v1');
    expect(sm.apply(encodeCommand({ op: 'barrier' }), 6, 1).answer).toBeNull();
  });

  it('a snapshot carries the records: a retry on the node that installed it is replayed, not applied again', () => {
    const leader = new SimStateMachine(BOUNDS);
    const follower = new SimStateMachine(BOUNDS);
    const cas = request({ kind: 'put', key: bytes('a'), value: bytes('v5'), condition: { absent: true } }, 's5', 10);
    leader.apply(cas, 5, 2);
    follower.install(leader.snapshot());
    expect(follower.digest()).toBe(leader.digest());
    expect(follower.recordIds()).toEqual(['s5']);
    // The retry's entry, applied on both.
    const onLeader = leader.apply(cas, 9, 3);
    const onFollower = follower.apply(cas, 9, 3);
    expect(onFollower.answer).toEqual({ kind: 'replayed', index: 5, term: 2, result: { kind: 'written' } });
    expect(onLeader.answer).toEqual(onFollower.answer);
    expect(onFollower.replayedFromSnapshot).toBe(true);
    expect(onLeader.replayedFromSnapshot).toBe(false);
    expect(follower.digest()).toBe(leader.digest());
  });

  it('a snapshot without the records (the planted bug) applies the retry again, and the digests differ', () => {
    const leader = new SimStateMachine(BOUNDS);
    const follower = new SimStateMachine(BOUNDS);
    const cas = request({ kind: 'put', key: bytes('a'), value: bytes('v5'), condition: { absent: true } }, 's5', 10);
    leader.apply(cas, 5, 2);
    follower.install(leader.snapshot(true));
    expect(follower.recordIds()).toEqual([]);
    expect(follower.apply(cas, 9, 3).answer).toMatchObject({ kind: 'applied', result: { kind: 'failed' } });
    leader.apply(cas, 9, 3);
    expect(follower.digest()).not.toBe(leader.digest());
  });

  it('evicts records exactly as a node that never stopped, after installs and restarts', () => {
    const live = new SimStateMachine(BOUNDS);
    let other = new SimStateMachine(BOUNDS);
    for (let index = 1; index <= 40; index++) {
      // `at` grows by 15 a step: records expire 100 after, so about seven are kept at a time.
      const command = request(
        { kind: 'put', key: bytes(`k${index % 3}`), value: bytes(`v${index}`) },
        `r${index}`,
        index * 15,
      );
      live.apply(command, index, 1);
      other.apply(command, index, 1);
      if (index % 7 === 0) {
        const fresh = new SimStateMachine(BOUNDS);
        fresh.install(other.snapshot());
        other = fresh;
      } else if (index % 5 === 0) {
        other.reopen();
      }
      expect(other.digest()).toBe(live.digest());
    }
    expect(live.recordIds().length).toBeLessThan(10);
    expect(live.recordIds()).toContain('r40');
    expect(live.recordIds()).not.toContain('r1');
  });
});

describe("the plain workload's legacy entries", () => {
  it('are the JSON of the simulation before real commands, byte for byte, applied as the real put, delete and barrier', () => {
    const putEntry = encodeLegacyCommand(5, 'put', 'a', 'v5');
    expect(text.decode(putEntry)).toBe('{"op":5,"kind":"put","key":"a","value":"v5"}');
    const deleteEntry = encodeLegacyCommand(6, 'delete', 'a', null);
    expect(text.decode(deleteEntry)).toBe('{"op":6,"kind":"delete","key":"a","value":null}');
    expect(text.decode(encodeLegacyMarker())).toBe('{"op":-1,"kind":"marker","key":"","value":null}');
    // No real command starts with '{': the two formats never meet.
    expect(isLegacyCommand(putEntry)).toBe(true);
    expect(isLegacyCommand(put('a', '{x'))).toBe(false);
    expect(decodeLegacyCommand(encodeLegacyMarker())).toEqual({ op: 'barrier' });

    const sm = new SimStateMachine(BOUNDS);
    sm.apply(putEntry, 1, 1);
    expect(valueOf(sm, 'a')).toBe('v5');
    expect(sm.read(bytes('a'))?.meta.modIndex).toBe(1);
    sm.apply(encodeLegacyMarker(), 2, 1);
    expect(valueOf(sm, 'a')).toBe('v5');
    sm.apply(deleteEntry, 3, 1);
    expect(valueOf(sm, 'a')).toBeUndefined();
  });
});
