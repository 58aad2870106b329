// What identifies a request for its idempotency key: a retry must carry the same fingerprint (it is
// answered from the record of the first), a different request under the same key must not (it is
// refused, 422). So the fingerprint is a hash of an encoding of everything the request asks, that
// is unambiguous: two different requests never encode alike.
//
// The encoding is a sequence of fields, each a 4-byte big-endian length and its bytes: the request's
// kind, then its parts in a fixed order (numbers as decimal text, booleans and tags as words). Every
// field carries its own length and each kind fixes which fields follow (lists say how many items
// they hold), so the sequence parses back in exactly one way: moving bytes from a key to its value
// ("ab" = "c" against "a" = "bc") changes the lengths, hence the encoding. It starts with a version
// tag, so a later encoding can never collide with this one.
//
// SHA-256, cut to its first 16 bytes: 128 bits keep a collision between two requests of one key
// out of reach, at a quarter of the record's size. The fingerprint is computed by the node that
// encodes the entry (the leader, for a forwarded request) and stored in the entry, so every node
// compares the same bytes whatever its build computes later.
import { createHash, type Hash } from 'node:crypto';
import type { Compare, Condition, Request, TxnOp } from '../storage/request.js';

export const FINGERPRINT_BYTES = 16;
const VERSION = 'raftkv-request-v1';
const utf8 = new TextEncoder();

class FieldHash {
  private readonly hash: Hash = createHash('sha256');
  private readonly length = Buffer.alloc(4);

  bytes(bytes: Uint8Array): this {
    this.length.writeUInt32BE(bytes.length);
    this.hash.update(this.length);
    this.hash.update(bytes);
    return this;
  }

  text(text: string): this {
    return this.bytes(utf8.encode(text));
  }

  number(n: number): this {
    return this.text(String(n));
  }

  digest(): Uint8Array {
    return new Uint8Array(this.hash.digest().subarray(0, FINGERPRINT_BYTES));
  }
}

function condition(hash: FieldHash, c: Condition | undefined): void {
  if (c === undefined) hash.text('unconditional');
  else if ('absent' in c) hash.text('absent');
  else hash.text('modIndex').number(c.modIndex);
}

function compare(hash: FieldHash, c: Compare): void {
  hash.bytes(c.key).text(c.target);
  if (c.target === 'exists') hash.text(c.exists ? 'true' : 'false');
  else if (c.target === 'value') hash.text(c.cmp).bytes(c.bytes);
  else hash.text(c.cmp).number(c.number);
}

function ops(hash: FieldHash, list: readonly TxnOp[]): void {
  hash.number(list.length);
  for (const op of list) {
    hash.text(op.op).bytes(op.key);
    if (op.op === 'put') hash.bytes(op.value);
  }
}

/** The fingerprint of `request` (without its idempotency key, which is what it is stored under). */
export function requestFingerprint(request: Request): Uint8Array {
  const hash = new FieldHash().text(VERSION).text(request.kind);
  switch (request.kind) {
    case 'put':
      hash.bytes(request.key).bytes(request.value);
      condition(hash, request.condition);
      break;
    case 'delete':
      hash.bytes(request.key);
      condition(hash, request.condition);
      break;
    case 'txn':
      hash.number(request.compare.length);
      for (const c of request.compare) compare(hash, c);
      ops(hash, request.success);
      ops(hash, request.failure);
      break;
  }
  return hash.digest();
}
