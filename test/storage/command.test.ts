import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { CorruptDataError } from '../../src/storage/errors.js';
import { decodeCommand, encodeCommand, type Command } from '../../src/storage/state-machine.js';
import { bytes } from './helpers.js';

function plain(c: Command): unknown {
  if (c.op === 'barrier' || c.op === 'request') return c;
  return c.op === 'put' ? { op: c.op, key: [...c.key], value: [...c.value] } : { op: c.op, key: [...c.key] };
}

describe('command codec', () => {
  it('round-trips puts and deletes', () => {
    const put: Command = { op: 'put', key: bytes('user/1'), value: bytes('{"name":"ada"}') };
    const del: Command = { op: 'delete', key: bytes('user/1') };
    expect(plain(decodeCommand(encodeCommand(put)))).toEqual(plain(put));
    expect(plain(decodeCommand(encodeCommand(del)))).toEqual(plain(del));
  });

  it('a barrier (a read sent through the log) is one byte, and nothing may follow it', () => {
    expect([...encodeCommand({ op: 'barrier' })]).toEqual([0x04]);
    expect(decodeCommand(new Uint8Array([0x04]))).toEqual({ op: 'barrier' });
    expect(() => decodeCommand(new Uint8Array([0x04, 0x00]))).toThrow(CorruptDataError);
  });

  it('is compact: one op byte and a one-byte length for keys under 128 bytes', () => {
    expect(encodeCommand({ op: 'put', key: bytes('abc'), value: bytes('hello') })).toEqual(
      new Uint8Array([0x06, 3, ...bytes('abc'), ...bytes('hello')]),
    );
    expect(encodeCommand({ op: 'delete', key: bytes('abc') })).toEqual(new Uint8Array([0x07, 3, ...bytes('abc')]));
    const longKey = new Uint8Array(300).fill(7);
    const encoded = encodeCommand({ op: 'put', key: longKey, value: new Uint8Array(0) });
    expect(encoded.length).toBe(1 + 2 + 300);
    expect(plain(decodeCommand(encoded))).toEqual({ op: 'put', key: [...longKey], value: [] });
  });

  it('decodes the put and delete of builds before versioned keys (0x01, 0x02) as legacy ops, and writes them back the same', () => {
    const put = decodeCommand(new Uint8Array([0x01, 1, 0x61, 0x62]));
    expect(plain(put)).toEqual({ op: 'put', key: [0x61], value: [0x62] });
    expect(put.op === 'put' && put.legacy).toBe(true);
    const del = decodeCommand(new Uint8Array([0x02, 1, 0x61]));
    expect(del.op === 'delete' && del.legacy).toBe(true);
    expect([...encodeCommand(put)]).toEqual([0x01, 1, 0x61, 0x62]);
    expect([...encodeCommand(del)]).toEqual([0x02, 1, 0x61]);
    const current = decodeCommand(new Uint8Array([0x06, 1, 0x61, 0x62]));
    expect(current.op === 'put' && current.legacy).toBe(undefined);
  });

  it('round-trips requests: conditional writes, transactions, idempotency keys', () => {
    const requests: Command[] = [
      { op: 'request', request: { kind: 'put', key: bytes('k'), value: bytes('v'), condition: { modIndex: 7 } } },
      {
        op: 'request',
        request: { kind: 'put', key: bytes('k'), value: new Uint8Array(0), condition: { absent: true } },
      },
      { op: 'request', request: { kind: 'delete', key: bytes('k'), condition: { modIndex: 0 } } },
      {
        op: 'request',
        request: { kind: 'delete', key: bytes('k') },
        idempotency: { id: 'retry-1', fingerprint: new Uint8Array([1, 2, 3]), at: 1_765_000_000_000 },
      },
      {
        op: 'request',
        request: {
          kind: 'txn',
          compare: [
            { key: bytes('a'), target: 'exists', exists: false },
            { key: bytes('b'), target: 'version', cmp: '>=', number: 2 },
            { key: bytes('c'), target: 'value', cmp: '!=', bytes: bytes('x') },
          ],
          success: [
            { op: 'put', key: bytes('a'), value: bytes('1') },
            { op: 'get', key: bytes('b') },
          ],
          failure: [{ op: 'delete', key: bytes('c') }],
        },
      },
    ];
    for (const command of requests) {
      const encoded = encodeCommand(command);
      expect(encoded[0]).toBe(0x05);
      expect(decodeCommand(encoded)).toEqual(command);
    }
  });

  it('refuses a request of any other shape with CorruptDataError, naming what is wrong', () => {
    const packr = new Packr({ useRecords: false, mapsAsObjects: true });
    const request = (body: unknown): Uint8Array => new Uint8Array([0x05, ...packr.pack(body)]);
    const key = bytes('k');
    for (const [body, reason] of [
      [{ kind: 'cas', key }, /unknown kind/],
      [{ kind: 'put', key }, /"value" must be binary/],
      [{ kind: 'put', key: new Uint8Array(0), value: key }, /"key" is empty/],
      [{ kind: 'put', key, value: key, extra: 1 }, /unexpected field "extra"/],
      [{ kind: 'put', key, value: key, condition: { modIndex: -1 } }, /non-negative/],
      [{ kind: 'put', key, value: key, condition: { absent: false } }, /"absent" must be true/],
      [{ kind: 'txn', compare: [], success: [{ op: 'cas', key }], failure: [] }, /unknown op/],
      [{ kind: 'txn', compare: [{ key, target: 'version', cmp: '~', number: 1 }], success: [], failure: [] }, /"cmp"/],
      [{ kind: 'txn', compare: {}, success: [], failure: [] }, /must be an array/],
      [{ kind: 'delete', key, idempotency: { id: '', fingerprint: key, at: 1 } }, /"id"/],
    ] as const) {
      expect(() => decodeCommand(request(body))).toThrow(CorruptDataError);
      expect(() => decodeCommand(request(body))).toThrow(reason);
    }
  });

  it('allows an empty value but refuses an empty key', () => {
    const c = decodeCommand(encodeCommand({ op: 'put', key: bytes('k'), value: new Uint8Array(0) }));
    expect(c.op === 'put' && c.value.length).toBe(0);
    expect(() => encodeCommand({ op: 'delete', key: new Uint8Array(0) })).toThrow(RangeError);
  });

  it.each([
    ["empty data (a leader's empty entry, not a command)", []],
    ['op 0x00', [0x00, 1, 0x61]],
    ['op 0x03, never used', [0x03, 1, 0x61]],
    ['a request that is not msgpack', [0x05, 0xc1]],
    ['a request that is not a map', [0x05, 0x90]],
    ['an unknown op', [0x7f, 1, 0x61]],
    ['no key length', [0x01]],
    ['a key length cut short', [0x01, 0x80]],
    ['a key length not in its shortest form', [0x01, 0x81, 0x00, 0x61]],
    ['a key length over 4 bytes', [0x01, 0x80, 0x80, 0x80, 0x80, 0x01]],
    ['an empty key', [0x01, 0x00, 0x61]],
    ['a key running past the end', [0x01, 5, 0x61, 0x62]],
    ["bytes after a delete's key", [0x02, 1, 0x61, 0x62]],
    ["bytes after a legacy delete's key", [0x07, 1, 0x61, 0x62]],
  ])('refuses %s with CorruptDataError', (_name, data) => {
    expect(() => decodeCommand(new Uint8Array(data))).toThrow(CorruptDataError);
  });

  it('round-trips any command, and decodes any bytes to a command or a CorruptDataError', () => {
    const key = fc.uint8Array({ minLength: 1, maxLength: 300 });
    const command = fc.oneof(
      fc.record({ op: fc.constant('put' as const), key, value: fc.uint8Array({ maxLength: 200 }) }),
      fc.record({ op: fc.constant('delete' as const), key }),
    );
    fc.assert(
      fc.property(command, (c) => {
        expect(plain(decodeCommand(encodeCommand(c)))).toEqual(plain(c));
      }),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 12 }), (data) => {
        try {
          const c = decodeCommand(data);
          // Every valid encoding of a plain command is the canonical one (a request is msgpack).
          if (c.op !== 'request') expect(encodeCommand(c)).toEqual(data);
        } catch (error) {
          expect(error).toBeInstanceOf(CorruptDataError);
        }
      }),
      { numRuns: 500 },
    );
  });
});
