// Strict shape validation of decoded peer messages. The Raft core trusts its inputs (it asserts its
// invariants and would throw on, say, an append whose entries leave a gap), so everything a peer
// sends is checked here against the `Message` union before it can reach `step`.
//
// The validator rebuilds every message from the fields it checked: unknown fields are dropped (so a
// newer peer may add optional fields), and the core never sees an object with a foreign prototype,
// getters, or a `__proto__` key.

import { EntryType, MESSAGE_TYPES, type Entry, type Message, type MessageType } from '../raft/types.js';
import { copyOut } from './copy-out.js';

export class BadMessageError extends Error {
  override readonly name = 'BadMessageError';
  /** The `error` code of the 400 answer the peer server gives. */
  readonly code: string = 'bad-message';
}

/** A well-formed entry of a type this build cannot apply; answered 400 `unsupported-entry-type`. */
export class UnsupportedEntryTypeError extends BadMessageError {
  override readonly code = 'unsupported-entry-type';
}

/**
 * The entry types this build accepts from peers: only those it can apply. A committed entry that
 * storage cannot apply would stop every node that applies it, and again after every restart, so an
 * entry of a type from some newer build must never get into this node's log.
 */
export const SUPPORTED_ENTRY_TYPES: ReadonlySet<EntryType> = new Set([EntryType.Normal, EntryType.ConfChange]);

/** The same set, asked about any decoded value. */
const supportedEntryTypes: ReadonlySet<unknown> = SUPPORTED_ENTRY_TYPES;

/** Node ids are short names; the bound keeps a hostile id from bloating logs and maps. */
export const MAX_NODE_ID_LENGTH = 256;

type Fields = Record<string, unknown>;

const messageTypes: ReadonlySet<string> = new Set(MESSAGE_TYPES);

function isMessageType(value: unknown): value is MessageType {
  return typeof value === 'string' && messageTypes.has(value);
}

/** A plain object, as msgpack records and maps decode to (never an array, Map, Date, Buffer...). */
function isFields(value: unknown): value is Fields {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function field(fields: Fields, name: string, where: string): unknown {
  if (!Object.hasOwn(fields, name)) throw new BadMessageError(`${where}: missing field "${name}"`);
  return fields[name];
}

/** Terms, indices, commit, round, ctx: non-negative safe integers (-0 is normalized to 0). */
function count(fields: Fields, name: string, where: string): number {
  const value = field(fields, name, where);
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new BadMessageError(`${where}: "${name}" must be a non-negative safe integer`);
  }
  return value === 0 ? 0 : value;
}

function nodeId(fields: Fields, name: string, where: string): string {
  const value = field(fields, name, where);
  if (typeof value !== 'string' || value === '' || value.length > MAX_NODE_ID_LENGTH) {
    throw new BadMessageError(`${where}: "${name}" must be a non-empty node id`);
  }
  return value;
}

function flag(fields: Fields, name: string, where: string): boolean {
  const value = field(fields, name, where);
  if (typeof value !== 'boolean') throw new BadMessageError(`${where}: "${name}" must be a boolean`);
  return value;
}

function isSupportedEntryType(value: unknown): value is EntryType {
  return supportedEntryTypes.has(value);
}

/** An entry as validated, its data still a view into the body it was decoded from. */
interface ParsedEntry {
  index: number;
  term: number;
  type: EntryType;
  data: Uint8Array;
}

function parseEntry(value: unknown, where: string): ParsedEntry {
  if (!isFields(value)) throw new BadMessageError(`${where}: not an object`);
  const index = count(value, 'index', where);
  const term = count(value, 'term', where);
  const type = field(value, 'type', where);
  if (!isSupportedEntryType(type)) {
    if (typeof type === 'number' && Number.isSafeInteger(type) && type >= 0) {
      throw new UnsupportedEntryTypeError(
        `${where} (index ${index}) has entry type ${type}, which this build cannot apply (it applies ${[...SUPPORTED_ENTRY_TYPES].join(', ')}): upgrade this node`,
      );
    }
    throw new BadMessageError(
      `${where}: "type" must be an entry type this build supports (${[...SUPPORTED_ENTRY_TYPES].join(', ')})`,
    );
  }
  const data = field(value, 'data', where);
  if (!(data instanceof Uint8Array)) throw new BadMessageError(`${where}: "data" must be binary`);
  return { index, term, type, data };
}

/**
 * The entries of an append, which must form the log segment a real leader sends: indices
 * index+1, index+2, ... without gaps, terms non-decreasing from logTerm and never above the
 * message's term. (The core asserts the first two and relies on the others.)
 *
 * The entries' data are copied out of the body into one new buffer per append (copy-out.ts says
 * why), each entry holding a view of it: the decoder hands out views into the body (codec.ts), and
 * an entry the core keeps (unstable log, apply queue, the log's tail cache) must not pin the body.
 * What a kept entry keeps alive beyond its own data is the rest of its append's: nothing in steady
 * state, where the log keeps every entry of an append and drops them in index order, and up to one
 * append's data (the core caps an append at maxMsgBytes of entries; the receiver enforces only the
 * body limits) for each append the log kept only part of: the end of a resend overlapping entries
 * it already had, or the start of one whose end a new leader's conflicting append replaced, until
 * those entries leave the log's tail cache.
 */
function parseEntries(fields: Fields, prevIndex: number, prevTerm: number, term: number, where: string): Entry[] {
  const value = field(fields, 'entries', where);
  if (!Array.isArray(value)) throw new BadMessageError(`${where}: "entries" must be an array`);
  const entries: ParsedEntry[] = [];
  let lastTerm = prevTerm;
  for (let i = 0; i < value.length; i++) {
    const entry = parseEntry(value[i], `${where} entry ${i}`);
    if (entry.index !== prevIndex + 1 + i) {
      throw new BadMessageError(`${where}: entry ${i} has index ${entry.index}, expected ${prevIndex + 1 + i}`);
    }
    if (entry.term < lastTerm || entry.term > term) {
      throw new BadMessageError(`${where}: entry ${i} has term ${entry.term} outside [${lastTerm}, ${term}]`);
    }
    lastTerm = entry.term;
    entries.push(entry);
  }
  const data = copyOut(entries.map((entry) => entry.data));
  for (let i = 0; i < entries.length; i++) entries[i]!.data = data[i]!;
  return entries;
}

/** Validates one decoded value; `position` only serves error messages. */
export function parseMessage(value: unknown, position: number): Message {
  let where = `message ${position}`;
  if (!isFields(value)) throw new BadMessageError(`${where}: not an object`);
  const type = field(value, 'type', where);
  if (!isMessageType(type)) throw new BadMessageError(`${where}: unknown type`);
  where = `${where} (${type})`;
  const from = nodeId(value, 'from', where);
  const to = nodeId(value, 'to', where);
  const term = count(value, 'term', where);
  switch (type) {
    case 'app': {
      const index = count(value, 'index', where);
      const logTerm = count(value, 'logTerm', where);
      if (logTerm > term) throw new BadMessageError(`${where}: logTerm ${logTerm} above term ${term}`);
      const entries = parseEntries(value, index, logTerm, term, where);
      const commit = count(value, 'commit', where);
      return { type, from, to, term, index, logTerm, entries, commit };
    }
    case 'appResp':
      return {
        type,
        from,
        to,
        term,
        index: count(value, 'index', where),
        reject: flag(value, 'reject', where),
        hintIndex: count(value, 'hintIndex', where),
        hintTerm: count(value, 'hintTerm', where),
        // A joining node with no configuration asks for a snapshot instead of the log (core.ts).
        ...(Object.hasOwn(value, 'needsSnapshot') ? { needsSnapshot: flag(value, 'needsSnapshot', where) } : {}),
      };
    case 'vote':
    case 'preVote':
      return {
        type,
        from,
        to,
        term,
        index: count(value, 'index', where),
        logTerm: count(value, 'logTerm', where),
        transfer: flag(value, 'transfer', where),
      };
    case 'voteResp':
    case 'preVoteResp':
      return { type, from, to, term, reject: flag(value, 'reject', where) };
    case 'heartbeat':
      return { type, from, to, term, commit: count(value, 'commit', where), round: count(value, 'round', where) };
    case 'heartbeatResp':
      return { type, from, to, term, round: count(value, 'round', where) };
    case 'readIndex':
      return { type, from, to, term, ctx: count(value, 'ctx', where) };
    case 'readIndexResp':
      return {
        type,
        from,
        to,
        term,
        ctx: count(value, 'ctx', where),
        index: count(value, 'index', where),
        reject: flag(value, 'reject', where),
      };
    case 'timeoutNow':
      return { type, from, to, term };
    case 'snap':
      // A snapshot reaches a core only with its state, staged by the snapshot route: one arriving as
      // a bare message would make a follower install a snapshot it has no data for.
      throw new BadMessageError(`${where}: a snapshot is sent on the snapshot route, never as a message`);
  }
}
