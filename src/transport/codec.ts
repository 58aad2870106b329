// The wire format of POST /raft/messages: one msgpack array of messages per body.
//
// Records (`useRecords: true`) make repeated message shapes compact; each body carries its own
// record definitions, so encoder and decoder share no state and any two instances (any two nodes,
// any restart) interoperate.

import { Packr, Unpackr } from 'msgpackr';
import type { Message } from '../raft/types.js';
import { BadMessageError, parseMessage } from './message-schema.js';

export { BadMessageError, SUPPORTED_ENTRY_TYPES, UnsupportedEntryTypeError } from './message-schema.js';

/** The most messages one body may carry; the client splits larger batches. */
export const MAX_MESSAGES_PER_BODY = 10_000;

const encoder = new Packr({ useRecords: true });

const decoder = new Unpackr({
  useRecords: true,
  // Plain msgpack maps decode to plain objects (not Map), so the validator sees one shape either way.
  mapsAsObjects: true,
  // Entry data is copied out of the request body: an entry the core keeps (unstable log, apply
  // queue) must not pin a whole, possibly 32 MiB, body in memory.
  copyBuffers: true,
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
  return encoder.pack(messages);
}

/** Decodes and validates a body; throws BadMessageError with a short reason on anything malformed. */
export function decodeMessages(body: Uint8Array): Message[] {
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
