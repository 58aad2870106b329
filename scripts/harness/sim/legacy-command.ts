// The plain workload's log entries: the JSON the simulation wrote before it applied the real commands,
// `{"op":<client op id>,"kind":"put","key":"a","value":"v5"}`, and the liveness check's marker
// `{"op":-1,"kind":"marker","key":"","value":null}`, byte for byte.
//
// Why keep it: the core sizes its messages by the bytes of their entries (maxMsgBytes, the inflight
// byte bound), so a schedule recorded with these entries batches differently, and so runs
// differently, with the real binary commands (a few bytes each). Under `workload: 'plain'` the
// entries are these, and the state machine turns each into the real put or delete command and
// applies it with the real apply code (state-machine.ts); no real command starts with '{'.
import type { Command } from '../../../src/storage/command.js';

const utf8 = new TextEncoder();
const OPEN_BRACE = 0x7b;

interface LegacyJson {
  readonly op: number;
  readonly kind: 'put' | 'delete' | 'marker';
  readonly key: string;
  readonly value: string | null;
}

export function encodeLegacyCommand(op: number, kind: 'put' | 'delete', key: string, value: string | null): Uint8Array {
  const json: LegacyJson = { op, kind, key, value: kind === 'put' ? value : null };
  return utf8.encode(JSON.stringify(json));
}

/** The liveness check's entry that changes nothing (a barrier, in the real commands). */
export function encodeLegacyMarker(): Uint8Array {
  const json: LegacyJson = { op: -1, kind: 'marker', key: '', value: null };
  return utf8.encode(JSON.stringify(json));
}

/** Whether `data` is a legacy entry: the real command tags (src/storage/command.ts) are 0x01 to 0x07. */
export function isLegacyCommand(data: Uint8Array): boolean {
  return data[0] === OPEN_BRACE;
}

/** The real command a legacy entry stands for. */
export function decodeLegacyCommand(data: Uint8Array): Command {
  const json = JSON.parse(new TextDecoder().decode(data)) as LegacyJson;
  const key = utf8.encode(json.key);
  if (json.kind === 'put') return { op: 'put', key, value: utf8.encode(json.value ?? '') };
  if (json.kind === 'delete') return { op: 'delete', key };
  if (json.kind === 'marker') return { op: 'barrier' };
  throw new Error(`a legacy simulation command is a put, a delete or a marker, not ${JSON.stringify(json.kind)}`);
}
