// What the state machine stores under a user key: the key's metadata, then its value.
//
//   varint createIndex   the log index of the write that created the key (0: written before format 3)
//   varint modIndex      the log index of the write that last changed it (0: written before format 3)
//   varint version       writes since the key was created (1 after the creating write)
//   value                every remaining byte
//
// Varints are unsigned LEB128 in their shortest form, up to 8 bytes (56 bits: every safe integer
// index fits). A key written at index 1,000,000 costs 3+3+1 bytes of metadata; no tag or length is
// needed because every value in a format-3 state machine has the header.
//
// Keys written by a build before format 3 (and every put or delete in an entry such a build
// proposed: command.ts's legacy ops) carry LEGACY_META. Their real history is unknown, and the
// metadata must be the same on every node whatever index it upgraded at, so it is a constant.

import { batchBytes } from './batch-bytes.js';
import { CorruptDataError } from './errors.js';

export interface KeyMeta {
  readonly createIndex: number;
  readonly modIndex: number;
  readonly version: number;
}

/** A key as stored: its metadata and its value. */
export interface StoredValue {
  readonly meta: KeyMeta;
  readonly value: Uint8Array;
}

/** The metadata of a key whose history predates versioned keys (storage format 3). */
export const LEGACY_META: KeyMeta = Object.freeze({ createIndex: 0, modIndex: 0, version: 1 });

const MAX_VARINT_BYTES = 8;

export function varintLength(n: number): number {
  let length = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 0x80);
    length++;
  }
  return length;
}

/** Writes `n` (a non-negative safe integer) at `at`; returns the offset after it. */
export function writeVarint(out: Uint8Array, at: number, n: number): number {
  while (n >= 0x80) {
    out[at++] = (n % 0x80) | 0x80;
    n = Math.floor(n / 0x80);
  }
  out[at++] = n;
  return at;
}

/**
 * Reads a canonical varint of at most `maxBytes` bytes at `at`: a longer-than-needed encoding is
 * refused, so each header has exactly one form. `what` names the field in errors.
 */
export function readVarint(
  data: Uint8Array,
  at: number,
  what: string,
  maxBytes = MAX_VARINT_BYTES,
): { value: number; next: number } {
  let value = 0;
  for (let i = 0; i < maxBytes; i++) {
    const byte = data[at + i];
    if (byte === undefined) throw new CorruptDataError(`${what}: ends inside a varint`);
    value += (byte & 0x7f) * 2 ** (7 * i);
    if ((byte & 0x80) === 0) {
      if (byte === 0 && i > 0) throw new CorruptDataError(`${what}: varint not in its shortest form`);
      return { value, next: at + i + 1 };
    }
  }
  throw new CorruptDataError(`${what}: varint longer than ${maxBytes} bytes`);
}

function assertMeta(meta: KeyMeta): void {
  for (const n of [meta.createIndex, meta.modIndex, meta.version]) {
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`key metadata must be safe non-negative integers`);
  }
}

export function encodeStored(meta: KeyMeta, value: Uint8Array): Uint8Array {
  assertMeta(meta);
  const headerLength = varintLength(meta.createIndex) + varintLength(meta.modIndex) + varintLength(meta.version);
  // A stored value lives only until its batch is written (batch-bytes.ts).
  const out = batchBytes(headerLength + value.length);
  let at = writeVarint(out, 0, meta.createIndex);
  at = writeVarint(out, at, meta.modIndex);
  at = writeVarint(out, at, meta.version);
  out.set(value, at);
  return out;
}

/** The header of a stored value, and where its value starts. */
function readHeader(stored: Uint8Array): { meta: KeyMeta; valueStart: number } {
  const create = readVarint(stored, 0, 'stored value createIndex');
  const mod = readVarint(stored, create.next, 'stored value modIndex');
  const version = readVarint(stored, mod.next, 'stored value version');
  return { meta: { createIndex: create.value, modIndex: mod.value, version: version.value }, valueStart: version.next };
}

/** Decodes a stored value; `value` is a view into `stored` (no copy). */
export function decodeStored(stored: Uint8Array): StoredValue {
  const { meta, valueStart } = readHeader(stored);
  return { meta, value: stored.subarray(valueStart) };
}

/**
 * The metadata alone: no view of the value is made. Every applied put decodes one (the metadata
 * cache is filled from the written batch), so it stays off decodeStored's subarray.
 */
export function decodeMeta(stored: Uint8Array): KeyMeta {
  return readHeader(stored).meta;
}
