// Applying writes to the key-value state: key metadata, conditions evaluated at apply time,
// transactions (all or nothing), and idempotency records with their deterministic eviction.
import { describe, expect, it } from 'vitest';
import { applyPlain, applyRequest, MAX_TXN_RESULT_BYTES, type RequestAnswer } from '../../src/storage/apply-request.js';
import {
  IDEMPOTENCY_PREFIX,
  IdempotencyIndex,
  type EvictionBounds,
  type RequestResult,
} from '../../src/storage/idempotency.js';
import { decodeStored, LEGACY_META, type KeyMeta } from '../../src/storage/key-meta.js';
import { byteKey, metaOfStored, type KvView } from '../../src/storage/kv-view.js';
import type { Compare, Idempotency, Request, TxnOp } from '../../src/storage/request.js';
import { bytes, text } from './helpers.js';

/** A KvView over a Map: the state as the state machine would hold it. */
class MapView implements KvView {
  readonly map = new Map<string, { key: Uint8Array; stored: Uint8Array }>();
  get(key: Uint8Array): Uint8Array | undefined {
    return this.map.get(byteKey(key))?.stored;
  }
  getMeta(key: Uint8Array): KeyMeta | undefined {
    return metaOfStored(this.get(key));
  }
  put(key: Uint8Array, stored: Uint8Array): void {
    this.map.set(byteKey(key), { key, stored });
  }
  delete(key: Uint8Array): void {
    this.map.delete(byteKey(key));
  }
  meta(key: string): KeyMeta | undefined {
    const stored = this.get(bytes(key));
    return stored === undefined ? undefined : decodeStored(stored).meta;
  }
  value(key: string): string | undefined {
    const stored = this.get(bytes(key));
    return stored === undefined ? undefined : text(decodeStored(stored).value);
  }
  /** The user keys (not the idempotency records), sorted. */
  userKeys(): string[] {
    return [...this.map.values()]
      .filter(({ key }) => key[0] !== IDEMPOTENCY_PREFIX[0])
      .map(({ key }) => text(key)!)
      .sort();
  }
  recordIds(): string[] {
    return [...this.map.values()]
      .filter(({ key }) => key[0] === IDEMPOTENCY_PREFIX[0])
      .map(({ key }) => text(key.subarray(2))!)
      .sort();
  }
  pairs(): [Uint8Array, Uint8Array][] {
    return [...this.map.values()].map(({ key, stored }) => [key, stored]);
  }
}

const put = (view: KvView, key: string, value: string, index: number): void =>
  applyPlain(view, { op: 'put', key: bytes(key), value: bytes(value) }, index);

function request(
  view: KvView,
  body: Request,
  index: number,
  records = new IdempotencyIndex(),
  idempotency?: Idempotency,
): RequestAnswer {
  const command =
    idempotency === undefined
      ? { op: 'request' as const, request: body }
      : { op: 'request' as const, request: body, idempotency };
  return applyRequest(view, records, command, index, 1);
}

const result = (answer: RequestAnswer): RequestResult => {
  if (answer.kind === 'mismatch') throw new Error('mismatch');
  return answer.result;
};

const txn = (compare: Compare[], success: TxnOp[], failure: TxnOp[] = []): Request => ({
  kind: 'txn',
  compare,
  success,
  failure,
});

describe('key metadata', () => {
  it('a put creates a key at its index, later puts move modIndex and count versions, a delete forgets it all', () => {
    const view = new MapView();
    put(view, 'k', 'a', 5);
    expect(view.meta('k')).toEqual({ createIndex: 5, modIndex: 5, version: 1 });
    put(view, 'k', 'b', 9);
    put(view, 'k', 'c', 12);
    expect(view.meta('k')).toEqual({ createIndex: 5, modIndex: 12, version: 3 });
    expect(view.value('k')).toBe('c');
    applyPlain(view, { op: 'delete', key: bytes('k') }, 13);
    expect(view.meta('k')).toBeUndefined();
    put(view, 'k', 'd', 20);
    expect(view.meta('k')).toEqual({ createIndex: 20, modIndex: 20, version: 1 });
  });

  it("a legacy put (an old build's entry) leaves the constant legacy metadata, wherever it applies", () => {
    const view = new MapView();
    put(view, 'k', 'a', 5);
    applyPlain(view, { op: 'put', key: bytes('k'), value: bytes('b'), legacy: true }, 6);
    expect(view.meta('k')).toEqual(LEGACY_META);
    put(view, 'k', 'c', 7);
    expect(view.meta('k')).toEqual({ createIndex: 0, modIndex: 7, version: 2 });
  });
});

describe('conditional writes, evaluated when applied', () => {
  it('If-Match: the write happens only when modIndex is the one given; otherwise the current metadata comes back', () => {
    const view = new MapView();
    put(view, 'k', 'a', 5);
    const stale = request(view, { kind: 'put', key: bytes('k'), value: bytes('x'), condition: { modIndex: 4 } }, 6);
    expect(stale).toEqual({
      kind: 'applied',
      result: { kind: 'failed', current: { createIndex: 5, modIndex: 5, version: 1 } },
    });
    expect(view.value('k')).toBe('a');
    const current = request(view, { kind: 'put', key: bytes('k'), value: bytes('y'), condition: { modIndex: 5 } }, 7);
    expect(current).toEqual({ kind: 'applied', result: { kind: 'written' } });
    expect(view.meta('k')).toEqual({ createIndex: 5, modIndex: 7, version: 2 });
    // A condition on a key that does not exist never matches a modIndex.
    expect(
      result(request(view, { kind: 'put', key: bytes('new'), value: bytes('z'), condition: { modIndex: 0 } }, 8)),
    ).toEqual({ kind: 'failed', current: null });
  });

  it('If-None-Match: *: only a key that does not exist is written', () => {
    const view = new MapView();
    const absent = { absent: true } as const;
    expect(result(request(view, { kind: 'put', key: bytes('k'), value: bytes('a'), condition: absent }, 3))).toEqual({
      kind: 'written',
    });
    expect(result(request(view, { kind: 'put', key: bytes('k'), value: bytes('b'), condition: absent }, 4))).toEqual({
      kind: 'failed',
      current: { createIndex: 3, modIndex: 3, version: 1 },
    });
    expect(view.value('k')).toBe('a');
  });

  it('a conditional delete', () => {
    const view = new MapView();
    put(view, 'k', 'a', 5);
    expect(result(request(view, { kind: 'delete', key: bytes('k'), condition: { modIndex: 1 } }, 6)).kind).toBe(
      'failed',
    );
    expect(view.value('k')).toBe('a');
    expect(result(request(view, { kind: 'delete', key: bytes('k'), condition: { modIndex: 5 } }, 7))).toEqual({
      kind: 'written',
      deleted: true,
    });
    expect(view.value('k')).toBeUndefined();
    expect(result(request(view, { kind: 'delete', key: bytes('k') }, 8))).toEqual({ kind: 'written', deleted: false });
  });
});

describe('transactions', () => {
  it('takes the success branch when every compare holds, and applies all of it at one index', () => {
    const view = new MapView();
    put(view, 'a', '1', 2);
    put(view, 'a', '2', 3);
    const answer = result(
      request(
        view,
        txn(
          [
            { key: bytes('a'), target: 'version', cmp: '=', number: 2 },
            { key: bytes('a'), target: 'modIndex', cmp: '>=', number: 3 },
            { key: bytes('a'), target: 'createIndex', cmp: '<', number: 3 },
            { key: bytes('a'), target: 'value', cmp: '=', bytes: bytes('2') },
            { key: bytes('b'), target: 'exists', exists: false },
          ],
          [
            { op: 'put', key: bytes('b'), value: bytes('B') },
            { op: 'delete', key: bytes('a') },
            { op: 'get', key: bytes('b') },
            { op: 'get', key: bytes('a') },
          ],
          [{ op: 'put', key: bytes('failed'), value: bytes('!') }],
        ),
        10,
      ),
    );
    expect(answer).toEqual({
      kind: 'txn',
      succeeded: true,
      results: [
        { op: 'put', key: bytes('b'), modIndex: 10 },
        { op: 'delete', key: bytes('a'), deleted: true },
        { op: 'get', key: bytes('b'), meta: { createIndex: 10, modIndex: 10, version: 1 }, value: bytes('B') },
        { op: 'get', key: bytes('a'), meta: null, value: null },
      ],
    });
    expect(view.userKeys()).toEqual(['b']);
  });

  it('takes the failure branch when any compare fails; a value compare on a missing key never holds', () => {
    const view = new MapView();
    put(view, 'a', '1', 2);
    for (const compare of [
      { key: bytes('a'), target: 'value', cmp: '>', bytes: bytes('1') },
      { key: bytes('missing'), target: 'value', cmp: '!=', bytes: bytes('x') },
      { key: bytes('missing'), target: 'version', cmp: '>', number: 0 },
      { key: bytes('a'), target: 'exists', exists: false },
    ] satisfies Compare[]) {
      const answer = result(
        request(
          view,
          txn([compare], [{ op: 'put', key: bytes('a'), value: bytes('success') }], [{ op: 'get', key: bytes('a') }]),
          3,
        ),
      );
      expect(answer).toMatchObject({ kind: 'txn', succeeded: false, results: [{ op: 'get', value: bytes('1') }] });
    }
    // A missing key's numeric fields are 0.
    expect(
      result(request(view, txn([{ key: bytes('missing'), target: 'modIndex', cmp: '=', number: 0 }], []), 4)),
    ).toMatchObject({ succeeded: true });
    expect(view.value('a')).toBe('1');
  });

  it('a branch whose gets would return more than the bound changes nothing and says how much', () => {
    const view = new MapView();
    const big = 'x'.repeat(MAX_TXN_RESULT_BYTES / 2 + 1);
    put(view, 'big', big, 2);
    const answer = result(
      request(
        view,
        txn(
          [],
          [
            { op: 'put', key: bytes('written'), value: bytes('w') },
            { op: 'get', key: bytes('big') },
            { op: 'get', key: bytes('big') },
          ],
        ),
        3,
      ),
    );
    expect(answer).toEqual({ kind: 'too_large', bytes: 2 * big.length });
    expect(view.userKeys()).toEqual(['big']);
  });
});

describe('idempotency', () => {
  const idem = (id: string, fingerprint: number[], at = 1_000): Idempotency => ({
    id,
    fingerprint: new Uint8Array(fingerprint),
    at,
  });

  it('a retry gets the first answer and index, and changes nothing; another request with the key is refused', () => {
    const view = new MapView();
    const records = new IdempotencyIndex();
    const write: Request = { kind: 'put', key: bytes('k'), value: bytes('v1') };
    expect(request(view, write, 5, records, idem('r1', [1]))).toEqual({ kind: 'applied', result: { kind: 'written' } });
    put(view, 'k', 'changed since', 6);
    expect(request(view, write, 9, records, idem('r1', [1]))).toEqual({
      kind: 'replayed',
      index: 5,
      term: 1,
      result: { kind: 'written' },
    });
    expect(view.meta('k')).toEqual({ createIndex: 5, modIndex: 6, version: 2 });
    expect(view.value('k')).toBe('changed since');
    expect(request(view, { ...write, value: bytes('other') }, 10, records, idem('r1', [2]))).toEqual({
      kind: 'mismatch',
      index: 5,
    });
    expect(view.value('k')).toBe('changed since');
  });

  it('a failed condition is remembered too: its retry fails the same way even if it would now succeed', () => {
    const view = new MapView();
    const records = new IdempotencyIndex();
    const cas: Request = { kind: 'put', key: bytes('k'), value: bytes('v'), condition: { absent: true } };
    put(view, 'k', 'there', 2);
    const first = request(view, cas, 3, records, idem('c', [7]));
    applyPlain(view, { op: 'delete', key: bytes('k') }, 4);
    const retry = request(view, cas, 5, records, idem('c', [7]));
    expect(retry).toEqual({ kind: 'replayed', index: 3, term: 1, result: result(first) });
    expect(view.value('k')).toBeUndefined();
  });

  const small: EvictionBounds = { ttlMs: 1000, maxRecords: 3, maxBytes: 1 << 20 };

  it('evicts the oldest records beyond the count bound, and those older than the TTL, as each new one arrives', () => {
    const view = new MapView();
    const records = new IdempotencyIndex(small);
    const write = (id: string, index: number, at: number): RequestAnswer =>
      request(view, { kind: 'put', key: bytes(id), value: bytes('v') }, index, records, idem(id, [index], at));
    write('a', 1, 100);
    write('b', 2, 200);
    write('c', 3, 300);
    expect(view.recordIds()).toEqual(['a', 'b', 'c']);
    write('d', 4, 400);
    expect(view.recordIds()).toEqual(['b', 'c', 'd']);
    expect(records.ids()).toEqual(['b', 'c', 'd']);
    // More than 1,000 ms after b and c: both expired; d (950 ms before) is kept.
    write('e', 5, 1_350);
    expect(view.recordIds()).toEqual(['d', 'e']);
    // An evicted key is a new key again: applied a second time.
    expect(write('a', 6, 1_300).kind).toBe('applied');
  });

  it('evicts by total bytes', () => {
    const view = new MapView();
    const records = new IdempotencyIndex({ ttlMs: 1e12, maxRecords: 1000, maxBytes: 400 });
    for (let i = 0; i < 20; i++) {
      request(view, { kind: 'delete', key: bytes('k') }, i + 1, records, idem(`id-${i}`, [i]));
      expect(records.bytes).toBeLessThanOrEqual(400);
    }
    expect(records.size).toBeGreaterThan(1);
    expect(records.size).toBeLessThan(20);
    expect(view.recordIds()).toEqual(records.ids().sort());
  });

  it('an index rebuilt from the records (a restart, a snapshot) evicts exactly as the one that never stopped', () => {
    const live = new MapView();
    const liveRecords = new IdempotencyIndex(small);
    let rebuilt = new MapView();
    let rebuiltRecords = new IdempotencyIndex(small);
    for (let i = 1; i <= 30; i++) {
      const body: Request = { kind: 'put', key: bytes(`k${i % 4}`), value: bytes(`${i}`) };
      const id = `r${i % 7}`;
      const at = i * 150 + (i % 3) * 400; // not monotonic: leaders' clocks differ
      expect(request(rebuilt, body, i, rebuiltRecords, idem(id, [i % 7], at))).toEqual(
        request(live, body, i, liveRecords, idem(id, [i % 7], at)),
      );
      if (i % 5 === 0) {
        // Restart: the state is what it is; the index is rebuilt from its records.
        const copy = new MapView();
        for (const [k, v] of rebuilt.pairs()) copy.put(k, v);
        rebuilt = copy;
        rebuiltRecords = IdempotencyIndex.fromRecords(
          rebuilt.pairs().filter(([k]) => k[0] === 0),
          small,
        );
      }
      const sorted = (view: MapView): string[] =>
        view
          .pairs()
          .map(([k, v]) => `${Buffer.from(k).toString('hex')}=${Buffer.from(v).toString('hex')}`)
          .sort();
      expect(sorted(rebuilt)).toEqual(sorted(live));
    }
  });
});
