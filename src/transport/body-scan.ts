// A byte-level pre-scan of a peer body, run before msgpackr decodes any of it.
//
// Why: msgpackr turns every byte of a body into JS values before any check sees them. A 32 MiB body
// of one-byte empty maps decodes into 32 million objects (gigabytes: the node dies on its 1 GiB heap
// limit), one of two-byte empty binaries into 16 million buffers (each a Buffer object; ~190 bytes
// and ~1.7 us of the event loop each when msgpackr still copied them). The scan walks the bytes
// once, allocates nothing per value (string and binary payloads are skipped by their length,
// containers are counters on a fixed stack), and refuses a body that would decode into more than
// `BodyLimits` allow. Invariant: a body the scan accepts decodes, if at all, into at most `values`
// JS values, `binaries` of them buffers, nested at most `depth` deep
// (test/transport/body-scan.test.ts checks this against msgpackr itself).
//
// It accepts exactly the msgpack our encoder writes (codec.ts: msgpackr's Packr, `useRecords`),
// read the way msgpackr's Unpackr reads it (node_modules/msgpackr/unpack.js):
// - Records. `d4 72 X` (fixext 1, type 0x72 'r') defines record slot X & 0x3f: an array of key
//   strings follows, then the values of one record of that shape. A byte 0x40-0x7f refers to slot
//   (byte & 0x3f) and is followed by that many values; while the slot is undefined it is just the
//   integer it reads as. Slots start empty in every body (the decoder keeps no shared structures)
//   and a later definition of a slot replaces the earlier one (the encoder recycles its 64 ids).
// - `d4 00 xx`: undefined (msgpackr's extension 0, one filler byte).
// Everything else outside plain msgpack is refused, since no message needs it: other extensions
// (dates, sets, errors, typed arrays, structured-clone references, two-byte record ids `d5 72`),
// the reserved byte 0xc1, and map or record keys that are not strings.

import { BadMessageError } from './message-schema.js';

export interface BodyLimits {
  /** Elements of the top-level array (messages). */
  readonly maxMessages: number;
  /**
   * Every value the decoder builds: arrays, maps and their keys, records and their field values,
   * scalars, and each record definition's key array and keys.
   */
  readonly maxValues: number;
  /** bin values: each decodes to a Buffer object (a view of the body), the dearest value per body byte. */
  readonly maxBinaries: number;
  /** Arrays, maps and records open at once, the top-level array included. */
  readonly maxDepth: number;
  /** Keys of one record definition. */
  readonly maxRecordFields: number;
}

/** What a scanned body will decode into (counted as BodyLimits describes). */
export interface BodyShape {
  readonly messages: number;
  readonly values: number;
  readonly binaries: number;
  /** The deepest nesting seen (1: the top-level array alone). */
  readonly depth: number;
  /** Record definitions read. */
  readonly definitions: number;
  /** The part of `values` that is record definitions' key arrays and keys, not decoded data. */
  readonly definitionValues: number;
}

const RECORD_DEFINITION_EXT = 0x72;
const UNDEFINED_EXT = 0x00;
/** Record slots: the one-byte ids 0x40-0x7f. */
const RECORD_SLOTS = 64;

interface Scratch {
  readonly remaining: Float64Array;
  readonly isMap: Uint8Array;
  readonly slots: Int32Array;
}

function newScratch(maxDepth: number): Scratch {
  return {
    remaining: new Float64Array(maxDepth + 1),
    isMap: new Uint8Array(maxDepth + 1),
    slots: new Int32Array(RECORD_SLOTS),
  };
}

/**
 * The scan's working arrays, reused: three typed arrays per body cost more than scanning a small
 * body (a heartbeat batch). Safe to share because a scan runs to completion synchronously.
 */
let scratch = newScratch(8);

/**
 * Throws BadMessageError unless `body` is one msgpack array of at most `limits.maxMessages` values
 * that decodes within `limits`. Runs in time linear in the bytes it reads, and stops at the first
 * limit crossed.
 */
export function scanBody(body: Uint8Array, limits: BodyLimits): BodyShape {
  const end = body.length;
  if (end === 0) throw undecodable('empty body');
  const top = readArrayHeader(body, 0);
  if (top === undefined) {
    if (body[0] === 0xdc || body[0] === 0xdd) throw truncated(0);
    throw new BadMessageError('body is not an array of messages');
  }
  const messages = top.count;
  let pos = top.next;
  if (messages > limits.maxMessages)
    throw new BadMessageError(`${messages} messages exceed the limit of ${limits.maxMessages}`);
  if (messages > end - pos) throw truncated(pos);

  // The stack of open containers: how many values each still expects, and whether it is a map
  // (whose values alternate key, value). Index 0 is unused; the top-level array is depth 1.
  if (scratch.remaining.length <= limits.maxDepth) scratch = newScratch(limits.maxDepth);
  const { remaining, isMap, slots } = scratch;
  // Field counts of the defined record slots; -1: undefined. Slots start empty in every body.
  slots.fill(-1);
  let depth = 1;
  let deepest = 1;
  remaining[1] = messages;
  let values = 1;
  let binaries = 0;
  let definitions = 0;
  let definitionValues = 0;

  while (depth > 0) {
    const left = remaining[depth] ?? 0;
    if (left === 0) {
      depth--;
      continue;
    }
    remaining[depth] = left - 1;
    if (++values > limits.maxValues) throw tooMany(limits.maxValues, 'values', pos);
    if (pos >= end) throw truncated(pos);
    const at = pos;
    const token = body[pos++] ?? 0;
    if (isMap[depth] === 1 && left % 2 === 0) {
      // Map keys come first in each pair: the decoder makes object keys of them.
      pos = skipString(body, token, pos);
      if (pos < 0) throw undecodable(`a map key at byte ${at} is not a string`);
      if (pos > end) throw truncated(at);
      continue;
    }
    // The number of values this token opens a container for, or -1 for a scalar.
    let children = -1;
    let opensMap = false;
    if (token < 0x40 || token >= 0xe0) {
      // positive or negative fixint
    } else if (token < 0x80) {
      children = slots[token & 0x3f] ?? -1; // a record, or the plain integer while its slot is undefined
    } else if (token < 0x90) {
      children = (token & 0x0f) * 2;
      opensMap = true;
    } else if (token < 0xa0) {
      children = token & 0x0f;
    } else if (token < 0xc0) {
      pos += token & 0x1f; // fixstr
    } else {
      switch (token) {
        case 0xc0: // nil
        case 0xc2: // false
        case 0xc3: // true
          break;
        case 0xc4: // bin 8
        case 0xc5: // bin 16
        case 0xc6: {
          // bin 32
          const width = token === 0xc4 ? 1 : token === 0xc5 ? 2 : 4;
          if (end - pos < width) throw truncated(at);
          pos += width + uint(body, pos, width);
          if (++binaries > limits.maxBinaries) throw tooMany(limits.maxBinaries, 'binary values', at);
          break;
        }
        case 0xcc: // uint 8
        case 0xd0: // int 8
          pos += 1;
          break;
        case 0xcd: // uint 16
        case 0xd1: // int 16
          pos += 2;
          break;
        case 0xca: // float 32
        case 0xce: // uint 32
        case 0xd2: // int 32
          pos += 4;
          break;
        case 0xcb: // float 64
        case 0xcf: // uint 64
        case 0xd3: // int 64
          pos += 8;
          break;
        case 0xd4: {
          // fixext 1: a record definition or undefined; nothing else
          if (end - pos < 2) throw truncated(at);
          const type = body[pos] ?? 0;
          if (type === UNDEFINED_EXT) {
            pos += 2;
            break;
          }
          if (type !== RECORD_DEFINITION_EXT) throw unsupported(`extension type 0x${type.toString(16)}`, at);
          const slot = (body[pos + 1] ?? 0) & 0x3f;
          pos += 2;
          const keysAt = pos;
          const header = readArrayHeader(body, pos);
          if (header === undefined)
            throw undecodable(`the keys of the record definition at byte ${at} are not an array`);
          const fields = header.count;
          pos = header.next;
          if (fields > limits.maxRecordFields) {
            throw new BadMessageError(
              `body refused before decoding: a record definition at byte ${at} has ${fields} fields, more than ${limits.maxRecordFields}`,
            );
          }
          values += 1 + fields;
          definitions++;
          definitionValues += 1 + fields;
          if (values > limits.maxValues) throw tooMany(limits.maxValues, 'values', keysAt);
          for (let i = 0; i < fields; i++) {
            if (pos >= end) throw truncated(pos);
            const keyAt = pos;
            pos = skipString(body, body[pos] ?? 0, pos + 1);
            if (pos < 0) throw undecodable(`key ${i} of the record definition at byte ${at} is not a string`);
            if (pos > end) throw truncated(keyAt);
          }
          slots[slot] = fields;
          children = fields;
          break;
        }
        case 0xd9: // str 8
        case 0xda: // str 16
        case 0xdb: // str 32
          pos = skipString(body, token, pos);
          break;
        case 0xdc: // array 16
        case 0xde: // map 16
          if (end - pos < 2) throw truncated(at);
          children = u16(body, pos) * (token === 0xde ? 2 : 1);
          opensMap = token === 0xde;
          pos += 2;
          break;
        case 0xdd: // array 32
        case 0xdf: // map 32
          if (end - pos < 4) throw truncated(at);
          children = u32(body, pos) * (token === 0xdf ? 2 : 1);
          opensMap = token === 0xdf;
          pos += 4;
          break;
        default:
          // 0xc1 (never used), ext 8/16/32 (0xc7-0xc9), fixext 2/4/8/16 (0xd5-0xd8)
          throw unsupported(token === 0xc1 ? 'the reserved byte 0xc1' : `an extension (0x${token.toString(16)})`, at);
      }
    }
    if (pos > end) throw truncated(at);
    if (children >= 0) {
      // Every value takes at least one byte: a count beyond the bytes left can never be met, and
      // must not be taken for real (msgpackr pre-allocates arrays of the count given).
      if (children > end - pos) throw truncated(at);
      if (depth === limits.maxDepth) {
        throw new BadMessageError(`body refused before decoding: nested deeper than ${limits.maxDepth} at byte ${at}`);
      }
      depth++;
      remaining[depth] = children;
      isMap[depth] = opensMap ? 1 : 0;
      if (depth > deepest) deepest = depth;
    }
  }
  if (pos !== end) throw undecodable(`${end - pos} trailing bytes after the message array`);
  return { messages, values, binaries, depth: deepest, definitions, definitionValues };
}

/** The position after the string that `token` (at pos - 1) starts, or -1 if it is not a string. */
function skipString(body: Uint8Array, token: number, pos: number): number {
  if (token >= 0xa0 && token < 0xc0) return pos + (token & 0x1f);
  const width = token === 0xd9 ? 1 : token === 0xda ? 2 : token === 0xdb ? 4 : 0;
  if (width === 0) return -1;
  // A header cut short reads as a length that runs past the end: the caller reports truncation.
  if (body.length - pos < width) return body.length + 1;
  return pos + width + uint(body, pos, width);
}

function readArrayHeader(body: Uint8Array, pos: number): { count: number; next: number } | undefined {
  const token = body[pos];
  if (token === undefined) return undefined;
  if (token >= 0x90 && token <= 0x9f) return { count: token & 0x0f, next: pos + 1 };
  if (token === 0xdc && body.length - pos >= 3) return { count: u16(body, pos + 1), next: pos + 3 };
  if (token === 0xdd && body.length - pos >= 5) return { count: u32(body, pos + 1), next: pos + 5 };
  return undefined;
}

function uint(body: Uint8Array, pos: number, width: number): number {
  return width === 1 ? (body[pos] ?? 0) : width === 2 ? u16(body, pos) : u32(body, pos);
}

function u16(body: Uint8Array, pos: number): number {
  return ((body[pos] ?? 0) << 8) | (body[pos + 1] ?? 0);
}

function u32(body: Uint8Array, pos: number): number {
  return (
    (body[pos] ?? 0) * 0x1000000 + (((body[pos + 1] ?? 0) << 16) | ((body[pos + 2] ?? 0) << 8) | (body[pos + 3] ?? 0))
  );
}

function undecodable(reason: string): BadMessageError {
  return new BadMessageError(`undecodable msgpack: ${reason}`);
}

function truncated(pos: number): BadMessageError {
  return undecodable(`the body ends inside the value at byte ${pos}`);
}

function tooMany(limit: number, what: string, pos: number): BadMessageError {
  return new BadMessageError(`body refused before decoding: more than ${limit} ${what} (at byte ${pos})`);
}

function unsupported(what: string, pos: number): BadMessageError {
  return undecodable(`${what} at byte ${pos}: peer messages use no such value`);
}
