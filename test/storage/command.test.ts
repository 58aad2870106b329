import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CorruptDataError } from '../../src/storage/errors.js';
import { decodeCommand, encodeCommand, type Command } from '../../src/storage/state-machine.js';
import { bytes } from './helpers.js';

function plain(c: Command): unknown {
  if (c.op === 'barrier') return { op: c.op };
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
      new Uint8Array([0x01, 3, ...bytes('abc'), ...bytes('hello')]),
    );
    expect(encodeCommand({ op: 'delete', key: bytes('abc') })).toEqual(new Uint8Array([0x02, 3, ...bytes('abc')]));
    const longKey = new Uint8Array(300).fill(7);
    const encoded = encodeCommand({ op: 'put', key: longKey, value: new Uint8Array(0) });
    expect(encoded.length).toBe(1 + 2 + 300);
    expect(plain(decodeCommand(encoded))).toEqual({ op: 'put', key: [...longKey], value: [] });
  });

  it('allows an empty value but refuses an empty key', () => {
    const c = decodeCommand(encodeCommand({ op: 'put', key: bytes('k'), value: new Uint8Array(0) }));
    expect(c.op === 'put' && c.value.length).toBe(0);
    expect(() => encodeCommand({ op: 'delete', key: new Uint8Array(0) })).toThrow(RangeError);
  });

  it.each([
    ["empty data (a leader's empty entry, not a command)", []],
    ['op 0x00', [0x00, 1, 0x61]],
    ['the reserved compare-and-set op 0x03', [0x03, 1, 0x61]],
    ['an unknown op', [0x7f, 1, 0x61]],
    ['no key length', [0x01]],
    ['a key length cut short', [0x01, 0x80]],
    ['a key length not in its shortest form', [0x01, 0x81, 0x00, 0x61]],
    ['a key length over 4 bytes', [0x01, 0x80, 0x80, 0x80, 0x80, 0x01]],
    ['an empty key', [0x01, 0x00, 0x61]],
    ['a key running past the end', [0x01, 5, 0x61, 0x62]],
    ["bytes after a delete's key", [0x02, 1, 0x61, 0x62]],
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
          expect(encodeCommand(c)).toEqual(data); // every valid encoding is the canonical one
        } catch (error) {
          expect(error).toBeInstanceOf(CorruptDataError);
        }
      }),
      { numRuns: 500 },
    );
  });
});
