// The Idempotency-Key header (src/api/idempotency-key.ts) and the fingerprint that tells a retry
// from a different request under the same key (src/api/request-fingerprint.ts).
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_IDEMPOTENCY_KEY_LENGTH, parseIdempotencyKey } from '../../src/api/idempotency-key.js';
import { FINGERPRINT_BYTES, requestFingerprint } from '../../src/api/request-fingerprint.js';
import {
  COMPARE_OPS,
  MAX_FINGERPRINT_BYTES,
  MAX_IDEMPOTENCY_ID_LENGTH,
  NUMERIC_TARGETS,
  type Compare,
  type Request,
  type TxnOp,
} from '../../src/storage/request.js';

const bytes = (text: string) => new TextEncoder().encode(text);
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('parseIdempotencyKey', () => {
  it('absent: no key', () => {
    expect(parseIdempotencyKey(undefined)).toEqual({ ok: true, id: undefined });
  });

  it.each([['a'], ['0b7c2b1e-6a4f-4e0e-9a8e-3f1d2c5b7a90'], ['!~"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}'], ['k'.repeat(128)]])(
    'takes %s',
    (key) => {
      expect(parseIdempotencyKey(key)).toEqual({ ok: true, id: key });
    },
  );

  it.each([
    ['empty', ''],
    ['too long', 'k'.repeat(129)],
    ['with a space', 'a b'],
    ['with a tab', 'a\tb'],
    ['not ASCII', 'clé'],
    ['with DEL', 'a\x7f'],
    ['given twice (Node joins them with ", ")', 'a, a'],
    ['given twice (an array)', ['a', 'a']],
  ])('refuses a key %s, saying what a key is', (_what, key) => {
    expect(parseIdempotencyKey(key)).toEqual({
      ok: false,
      message: expect.stringMatching(
        /^Idempotency-Key must be 1 to 128 characters of printable ASCII without spaces \(e\.g\. a UUID\), one per request; got /,
      ),
    });
  });

  it('stays within what the storage format accepts (the decoder refuses longer ids and fingerprints)', () => {
    expect(MAX_IDEMPOTENCY_KEY_LENGTH).toBeLessThanOrEqual(MAX_IDEMPOTENCY_ID_LENGTH);
    expect(FINGERPRINT_BYTES).toBeLessThanOrEqual(MAX_FINGERPRINT_BYTES);
  });
});

// --- fingerprints ----------------------------------------------------------------------------------

const key = fc.uint8Array({ minLength: 1, maxLength: 6 });
const value = fc.uint8Array({ maxLength: 6 });
const small = fc.integer({ min: 0, max: 3 });
const condition = fc.option(
  fc.oneof(
    small.map((modIndex) => ({ modIndex })),
    fc.constant({ absent: true as const }),
  ),
  {
    nil: undefined,
  },
);
const compare: fc.Arbitrary<Compare> = fc.oneof(
  fc.record({ key, target: fc.constant('exists' as const), exists: fc.boolean() }),
  fc.record({ key, target: fc.constantFrom(...NUMERIC_TARGETS), cmp: fc.constantFrom(...COMPARE_OPS), number: small }),
  fc.record({ key, target: fc.constant('value' as const), cmp: fc.constantFrom(...COMPARE_OPS), bytes: value }),
);
const op: fc.Arbitrary<TxnOp> = fc.oneof(
  fc.record({ op: fc.constant('put' as const), key, value }),
  fc.record({ op: fc.constantFrom('delete' as const, 'get' as const), key }),
);
const request: fc.Arbitrary<Request> = fc.oneof(
  fc.record({ key, value, condition }).map(({ condition: c, ...rest }) => ({
    kind: 'put' as const,
    ...rest,
    ...(c === undefined ? {} : { condition: c }),
  })),
  fc.record({ key, condition }).map(({ condition: c, ...rest }) => ({
    kind: 'delete' as const,
    ...rest,
    ...(c === undefined ? {} : { condition: c }),
  })),
  fc.record({
    kind: fc.constant('txn' as const),
    compare: fc.array(compare, { maxLength: 3 }),
    success: fc.array(op, { maxLength: 3 }),
    failure: fc.array(op, { maxLength: 3 }),
  }),
);

/** A request as plain data: equal exactly when the two requests ask the same thing. */
function canonical(r: Request): string {
  return JSON.stringify(r, (_name, v: unknown) => (v instanceof Uint8Array ? `bytes:${hex(v)}` : v));
}

/** A deep copy with every byte array in a buffer of its own (same content, other memory). */
function copy(r: Request): Request {
  return JSON.parse(
    JSON.stringify(r, (_name, v: unknown) => (v instanceof Uint8Array ? { b: [...v] } : v)),
    (_name, v) => (v !== null && typeof v === 'object' && 'b' in v ? Uint8Array.from(v.b as number[]) : v),
  ) as Request;
}

describe('requestFingerprint', () => {
  it(`is ${FINGERPRINT_BYTES} bytes, and the same for the same request however its bytes are held`, () => {
    fc.assert(
      fc.property(request, (r) => {
        const fingerprint = requestFingerprint(r);
        expect(fingerprint).toHaveLength(FINGERPRINT_BYTES);
        expect(hex(requestFingerprint(copy(r)))).toBe(hex(fingerprint));
      }),
    );
  });

  it('differs between any two different requests', () => {
    fc.assert(
      fc.property(request, request, (a, b) => {
        fc.pre(canonical(a) !== canonical(b));
        expect(hex(requestFingerprint(a))).not.toBe(hex(requestFingerprint(b)));
      }),
      { numRuns: 2000 },
    );
  });

  it('the same bytes split differently between key and value, or between fields, are different requests', () => {
    const pairs: [Request, Request][] = [
      [
        { kind: 'put', key: bytes('ab'), value: bytes('c') },
        { kind: 'put', key: bytes('a'), value: bytes('bc') },
      ],
      [
        { kind: 'put', key: bytes('a'), value: bytes('') },
        { kind: 'delete', key: bytes('a') },
      ],
      [
        { kind: 'put', key: bytes('a'), value: bytes('1') },
        { kind: 'txn', compare: [], success: [{ op: 'put', key: bytes('a'), value: bytes('1') }], failure: [] },
      ],
      [
        { kind: 'put', key: bytes('a'), value: bytes('1') },
        { kind: 'put', key: bytes('a'), value: bytes('1'), condition: { modIndex: 0 } },
      ],
      [
        { kind: 'put', key: bytes('a'), value: bytes('1'), condition: { absent: true } },
        { kind: 'put', key: bytes('a'), value: bytes('1'), condition: { modIndex: 0 } },
      ],
      [
        { kind: 'txn', compare: [], success: [{ op: 'get', key: bytes('a') }], failure: [] },
        { kind: 'txn', compare: [], success: [], failure: [{ op: 'get', key: bytes('a') }] },
      ],
      [
        {
          kind: 'txn',
          compare: [],
          success: [
            { op: 'put', key: bytes('a'), value: bytes('b') },
            { op: 'get', key: bytes('c') },
          ],
          failure: [],
        },
        { kind: 'txn', compare: [], success: [{ op: 'put', key: bytes('a'), value: bytes('bgetc') }], failure: [] },
      ],
      [
        {
          kind: 'txn',
          compare: [{ key: bytes('k'), target: 'modIndex', cmp: '=', number: 12 }],
          success: [],
          failure: [],
        },
        {
          kind: 'txn',
          compare: [{ key: bytes('k'), target: 'modIndex', cmp: '=', number: 1 }],
          success: [],
          failure: [],
        },
      ],
      [
        {
          kind: 'txn',
          compare: [{ key: bytes('k'), target: 'value', cmp: '=', bytes: bytes('1') }],
          success: [],
          failure: [],
        },
        {
          kind: 'txn',
          compare: [{ key: bytes('k'), target: 'version', cmp: '=', number: 1 }],
          success: [],
          failure: [],
        },
      ],
    ];
    for (const [a, b] of pairs) expect(hex(requestFingerprint(a)), canonical(a)).not.toBe(hex(requestFingerprint(b)));
  });

  it('is pinned: the documented encoding, so a node of another build computes the same one for a retry', () => {
    // The fingerprint travels in the entry and is compared with a retry's, which the next leader
    // (possibly upgraded meanwhile) computes: changing the encoding would turn retries into 422s.
    const fields = ['raftkv-request-v1', 'put', 'colour', 'blue', 'unconditional'].map((field) => {
      const length = Buffer.alloc(4);
      length.writeUInt32BE(Buffer.byteLength(field));
      return Buffer.concat([length, Buffer.from(field)]);
    });
    const expected = createHash('sha256').update(Buffer.concat(fields)).digest().subarray(0, 16).toString('hex');
    expect(hex(requestFingerprint({ kind: 'put', key: bytes('colour'), value: bytes('blue') }))).toBe(expected);
    expect(expected).toBe('071bf2e6dd2bc82e444cd8ee13e60525');
  });
});
