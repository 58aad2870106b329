// The wire format of POST /raft/messages: one msgpack array of messages per body.
//
// Records (`useRecords: true`) make repeated message shapes compact; each body carries its own
// record definitions, so encoder and decoder share no state and any two instances (any two nodes,
// any restart) interoperate.
//
// Decoding a body is bounded before it starts: scanBody (body-scan.ts) walks the bytes and refuses a
// body that would decode into more than BODY_LIMITS allow, so a peer cannot make a node build
// millions of objects out of one 32 MiB body. The encoder never builds a body the limits refuse.

import { Packr, Unpackr } from 'msgpackr';
import type { Message } from '../raft/types.js';
import { scanBody, type BodyLimits } from './body-scan.js';
import { BadMessageError, parseMessage } from './message-schema.js';

export { BadMessageError, SUPPORTED_ENTRY_TYPES, UnsupportedEntryTypeError } from './message-schema.js';

/** The most messages one body may carry; the client splits larger batches. */
export const MAX_MESSAGES_PER_BODY = 10_000;

/**
 * The most entries one body may carry, over all its appends; the client splits larger batches
 * (OutboundQueue.take). A single append always fits: the core puts at most maxMsgBytes (256 KiB by
 * default, 1 MiB at most: the config's cap) of entries in one, counting each as its data + 24 bytes (raft/storage.ts entryBytes),
 * so at most 43,690 (test/transport/body-scan.test.ts checks it against the core).
 */
export const MAX_ENTRIES_PER_BODY = 65_536;

/**
 * The most values a body may decode into (counted as body-scan.ts BodyLimits says), derived from
 * the largest body our encoder writes: a message is a record of at most 8 fields (9 values: an
 * append's type, from, to, term, index, logTerm, entries, commit), an entry a record of 4 (5
 * values), a record definition 2 values plus its keys, once per shape (a dozen shapes at most):
 * 10,000 * 9 + 65,536 * 5 + 12 * 10 = 417,800 values. The bound leaves room for plain-map
 * encodings (17 values a message, 9 an entry: 759,824) and for fields a newer peer may add. What a
 * hostile body can make of it is bounded accordingly: the worst (65,536 empty binaries, ~190 bytes
 * each when msgpackr copied them, then empty maps, 64 bytes each) decoded into about 70 MB in about
 * 250 ms (on 2026-12-07's benchmark machine 386-489 ms copied, 350-427 ms as views).
 */
export const MAX_VALUES_PER_BODY = 1_000_000;

export const BODY_LIMITS: BodyLimits = {
  maxMessages: MAX_MESSAGES_PER_BODY,
  maxValues: MAX_VALUES_PER_BODY,
  // Only entry data is binary.
  maxBinaries: MAX_ENTRIES_PER_BODY,
  // A real message nests 4 deep (body array, message, entries array, entry); 8 leaves room for a
  // newer peer's nested field.
  maxDepth: 8,
  // A real message has at most 8 fields; 32 leaves room for fields newer peers add.
  maxRecordFields: 32,
};

const encoder = new Packr({ useRecords: true });

const decoder = new Unpackr({
  useRecords: true,
  // Plain msgpack maps decode to plain objects (not Map), so the validator sees one shape either way.
  mapsAsObjects: true,
  // Binary values are views into the body (no copy). parseMessage copies entry data out, one
  // buffer per append (message-schema.ts parseEntries says why), and drops every other field, so
  // nothing decoded keeps the body alive. msgpackr's copyBuffers would make one allocation per
  // entry: 70-120 against 6-8 us to decode an append of 33 entries (BENCHMARKS.md step 17).
  // Object references and cycles have no place in a message.
  structuredClone: false,
});

/**
 * Encodes a batch. The returned buffer is not reused by later calls (msgpackr moves on to fresh
 * space), so it may be handed to an asynchronous request as is.
 */
export function encodeMessages(messages: readonly Message[]): Uint8Array {
  if (messages.length > MAX_MESSAGES_PER_BODY) {
    throw new RangeError(`${messages.length} messages exceed the ${MAX_MESSAGES_PER_BODY} a body may carry`);
  }
  const entries = countEntries(messages);
  if (entries > MAX_ENTRIES_PER_BODY) {
    throw new RangeError(`${entries} entries exceed the ${MAX_ENTRIES_PER_BODY} a body may carry`);
  }
  return encoder.pack(messages);
}

/** The entries of a batch's appends: what MAX_ENTRIES_PER_BODY bounds. */
function countEntries(messages: readonly Message[]): number {
  let entries = 0;
  for (const m of messages) if (m.type === 'app') entries += m.entries.length;
  return entries;
}

/**
 * Decodes and validates a body; throws BadMessageError with a short reason on anything malformed,
 * and on a body that would decode into more than BODY_LIMITS allow (before decoding any of it).
 */
export function decodeMessages(body: Uint8Array): Message[] {
  scanBody(body, BODY_LIMITS);
  let decoded: unknown;
  try {
    decoded = decoder.unpack(body);
  } catch (error) {
    // msgpackr's messages can embed a JSON excerpt of the data: keep only a prefix.
    const reason = error instanceof Error ? error.message.slice(0, 80) : 'unknown error';
    throw new BadMessageError(`undecodable msgpack: ${reason}`);
  }
  if (!Array.isArray(decoded)) throw new BadMessageError('body is not an array of messages');
  if (decoded.length > MAX_MESSAGES_PER_BODY) {
    throw new BadMessageError(`${decoded.length} messages exceed the limit of ${MAX_MESSAGES_PER_BODY}`);
  }
  const messages: Message[] = [];
  for (let i = 0; i < decoded.length; i++) messages.push(parseMessage(decoded[i], i));
  return messages;
}
