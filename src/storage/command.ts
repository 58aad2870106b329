// The state-machine command carried in a Raft entry's `data`.
//
// A hand-rolled binary layout rather than msgpack: a command is written once per proposal, travels
// in every append message and sits in every log entry, so its overhead is paid many times over.
// Here it is 2 bytes for keys under 128 bytes (msgpack would need a map or an array plus two bin
// headers), and decoding can be strict about every byte.
//
//   byte 0   op tag: 0x06 put, 0x07 delete; 0x04 barrier (the whole command: a read sent through
//            the log changes nothing); 0x05 request (a conditional write, a transaction, or any
//            write with an idempotency key: msgpack after the tag, request.ts). 0x01 and 0x02 are
//            the put and delete of builds before versioned keys (storage format 3): they apply
//            as put and delete but leave the key with LEGACY_META (key-meta.ts), so every node
//            agrees on the metadata whether it applied them before or after its upgrade. 0x03 is
//            never used. 0x00 is never an op, so a zeroed buffer is not mistaken for a command.
//   varint   key length: unsigned LEB128 in its shortest form, at most 4 bytes; the key is non-empty.
//   key      the key bytes.
//   put:     the value: every remaining byte (possibly none).
//   delete:  nothing may follow the key.
//
// A future op gets a new tag and defines what follows its key; old nodes refuse it loudly
// (CorruptDataError) instead of misapplying it. An entry with `data.length === 0` is not a command at
// all: it is the empty entry a new leader appends.

import { CorruptDataError } from './errors.js';
import { decodeRequestCommand, encodeRequestCommand, type RequestCommand } from './request.js';

export type Command =
  /** `legacy`: proposed by a build before versioned keys (ops 0x01, 0x02); never written by this one. */
  | { readonly op: 'put'; readonly key: Uint8Array; readonly value: Uint8Array; readonly legacy?: true }
  | { readonly op: 'delete'; readonly key: Uint8Array; readonly legacy?: true }
  | { readonly op: 'barrier' }
  | RequestCommand;

const OP_LEGACY_PUT = 0x01;
const OP_LEGACY_DELETE = 0x02;
const OP_BARRIER = 0x04;
const OP_REQUEST = 0x05;
const OP_PUT = 0x06;
const OP_DELETE = 0x07;
const BARRIER = new Uint8Array([OP_BARRIER]);

/** Longest key a command can carry: what a 4-byte varint can express. */
export const MAX_COMMAND_KEY_BYTES = 2 ** 28 - 1;

export function encodeCommand(c: Command): Uint8Array {
  if (c.op === 'barrier') return BARRIER.slice();
  if (c.op === 'request') return encodeRequestCommand(c, OP_REQUEST);
  if (c.key.length === 0) throw new RangeError('a command key must not be empty');
  if (c.key.length > MAX_COMMAND_KEY_BYTES) {
    throw new RangeError(`a command key must be at most ${MAX_COMMAND_KEY_BYTES} bytes, not ${c.key.length}`);
  }
  const valueLength = c.op === 'put' ? c.value.length : 0;
  const out = new Uint8Array(1 + varintLength(c.key.length) + c.key.length + valueLength);
  out[0] = c.op === 'put' ? (c.legacy ? OP_LEGACY_PUT : OP_PUT) : c.legacy ? OP_LEGACY_DELETE : OP_DELETE;
  let at = writeVarint(out, 1, c.key.length);
  out.set(c.key, at);
  at += c.key.length;
  if (c.op === 'put') out.set(c.value, at);
  return out;
}

/**
 * Decodes a command. The key and value are views into `data` (no copy): callers must not mutate
 * `data` while they hold the result. Throws CorruptDataError on anything but a well-formed command.
 */
export function decodeCommand(data: Uint8Array): Command {
  if (data.length === 0) throw new CorruptDataError("empty data is not a command (it is a leader's empty entry)");
  const tag = data[0];
  if (tag === OP_BARRIER) {
    if (data.length !== 1) throw new CorruptDataError(`barrier command has ${data.length - 1} unexpected bytes`);
    return { op: 'barrier' };
  }
  if (tag === OP_REQUEST) return decodeRequestCommand(data.subarray(1));
  const isPut = tag === OP_PUT || tag === OP_LEGACY_PUT;
  const legacy = tag === OP_LEGACY_PUT || tag === OP_LEGACY_DELETE;
  if (!isPut && tag !== OP_DELETE && tag !== OP_LEGACY_DELETE) {
    throw new CorruptDataError(`unknown command op 0x${(tag ?? 0).toString(16).padStart(2, '0')}`);
  }
  const { value: keyLength, next: keyStart } = readVarint(data, 1);
  if (keyLength === 0) throw new CorruptDataError('command key is empty');
  const keyEnd = keyStart + keyLength;
  if (keyEnd > data.length) {
    throw new CorruptDataError(`command key of ${keyLength} bytes runs past the end of ${data.length} bytes`);
  }
  const key = data.subarray(keyStart, keyEnd);
  if (isPut) return { op: 'put', key, value: data.subarray(keyEnd), ...(legacy ? { legacy } : {}) };
  if (keyEnd !== data.length) {
    throw new CorruptDataError(`delete command has ${data.length - keyEnd} unexpected bytes after its key`);
  }
  return { op: 'delete', key, ...(legacy ? { legacy } : {}) };
}

// --- unsigned LEB128, at most 4 bytes (28 bits) ----------------------------------------------------

function varintLength(n: number): number {
  let length = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 0x80);
    length++;
  }
  return length;
}

/** Writes `n` at `at`; returns the offset after it. */
function writeVarint(out: Uint8Array, at: number, n: number): number {
  while (n >= 0x80) {
    out[at++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 0x80);
  }
  out[at++] = n;
  return at;
}

/** Reads a canonical varint at `at`: a longer-than-needed encoding is refused, so each command has one form. */
function readVarint(data: Uint8Array, at: number): { value: number; next: number } {
  let value = 0;
  for (let i = 0; i < 4; i++) {
    const byte = data[at + i];
    if (byte === undefined) throw new CorruptDataError('command ends inside its key length');
    value += (byte & 0x7f) * 2 ** (7 * i);
    if ((byte & 0x80) === 0) {
      if (byte === 0 && i > 0) throw new CorruptDataError('command key length is not in its shortest form');
      return { value, next: at + i + 1 };
    }
  }
  throw new CorruptDataError('command key length is longer than 4 bytes');
}
