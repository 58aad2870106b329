// Log entries for humans, in the messages of safety violations: a client command decoded (the real
// command format, src/storage/command.ts), a membership change as the JSON the simulation writes.
import { decodeCommand, type Command } from '../../../src/storage/command.js';
import type { Request } from '../../../src/storage/request.js';
import { EntryType, type Entry } from '../../../src/raft/types.js';
import { isLegacyCommand } from './legacy-command.js';

const utf8 = new TextDecoder();
const text = (bytes: Uint8Array): string => JSON.stringify(utf8.decode(bytes));

/** The entry's bytes as a string, byte for byte: what the safety checks compare. */
export function entryBytes(entry: Entry): string {
  return Buffer.from(entry.data.buffer, entry.data.byteOffset, entry.data.byteLength).toString('latin1');
}

/** E.g. `3:put "a" "v12"`, `5:request put "b" "v9" if modIndex 4 [idempotency s9]`, `7:(empty)`. */
export function describeEntry(entry: Entry): string {
  return `${entry.term}:${describeData(entry)}`;
}

function describeData(entry: Entry): string {
  if (entry.data.length === 0) return '(empty)';
  if (entry.type === EntryType.ConfChange) return `conf change ${utf8.decode(entry.data)}`;
  if (isLegacyCommand(entry.data)) return `plain workload ${utf8.decode(entry.data)}`;
  try {
    return describeCommand(decodeCommand(entry.data));
  } catch (error) {
    return `undecodable (${(error as Error).message}): ${Buffer.from(entry.data).toString('hex')}`;
  }
}

function describeCommand(command: Command): string {
  switch (command.op) {
    case 'barrier':
      return 'barrier';
    case 'put':
      return `put ${text(command.key)} ${text(command.value)}`;
    case 'delete':
      return `delete ${text(command.key)}`;
    case 'request': {
      const id = command.idempotency === undefined ? '' : ` [idempotency ${command.idempotency.id}]`;
      return `request ${describeRequest(command.request)}${id}`;
    }
  }
}

function describeRequest(request: Request): string {
  switch (request.kind) {
    case 'put':
    case 'delete': {
      const what =
        request.kind === 'put' ? `put ${text(request.key)} ${text(request.value)}` : `delete ${text(request.key)}`;
      const condition = request.condition;
      if (condition === undefined) return what;
      return `${what} if ${'absent' in condition ? 'absent' : `modIndex ${condition.modIndex}`}`;
    }
    case 'txn':
      return `txn compare ${request.compare.length}, success ${request.success.length}, failure ${request.failure.length} ops`;
  }
}
