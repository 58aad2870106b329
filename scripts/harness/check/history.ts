// The client-side record of a run (simulation or chaos), as the linearizability checker reads it,
// plus small helpers to validate and describe operations.

export type OpKind = 'put' | 'delete' | 'get';
export type OpStatus = 'ok' | 'fail' | 'unknown';

export interface Operation {
  readonly id: number; // unique within a history
  readonly client: number; // ops of one client never overlap in time
  readonly key: string;
  readonly kind: OpKind;
  /** put: the value written (values are unique per history in practice, but don't rely on it); delete: null;
   *  get: the value read (null = key absent) when status is 'ok', otherwise null. */
  readonly value: string | null;
  readonly invoke: number; // when the request was sent (any monotonic clock: ms, steps...)
  readonly complete: number | null; // when the answer arrived; null when status is 'unknown'
  /** ok: took effect / answered; fail: definitely did NOT take effect (e.g. refused before proposing);
   *  unknown: may or may not have taken effect, at any time after invoke (timeout, crash, lost connection). */
  readonly status: OpStatus;
}

/** Put and delete change the register; get only observes it. */
export function isWrite(op: Operation): boolean {
  return op.kind !== 'get';
}

/**
 * Real-time order: `a` must be linearized before `b`. Strict, so operations that touch at one
 * instant count as concurrent; an operation without a completion (unknown) precedes nothing.
 */
export function precedes(a: Operation, b: Operation): boolean {
  return a.complete !== null && a.complete < b.invoke;
}

const MAX_SHOWN_VALUE_LENGTH = 60;

/** A value for humans: quoted and shortened, or "absent" for null. */
export function formatValue(value: string | null): string {
  if (value === null) return 'absent';
  const shown = value.length > MAX_SHOWN_VALUE_LENGTH ? `${value.slice(0, MAX_SHOWN_VALUE_LENGTH)}…` : value;
  return `'${shown}'`;
}

/** "[120, 131]", or "[120, ∞)" for an operation whose outcome is unknown. */
export function formatWindow(op: Operation): string {
  return op.complete === null ? `[${op.invoke}, ∞)` : `[${op.invoke}, ${op.complete}]`;
}

/**
 * E.g. "get k1 -> 'v3' at [120, 131] (op #7, client 2)",
 * or "put k1 'v5' at [100, ∞) (outcome unknown, op #3, client 1)".
 */
export function formatOp(op: Operation): string {
  const what =
    op.kind === 'get'
      ? `get ${op.key} -> ${formatValue(op.value)}`
      : op.kind === 'put'
        ? `put ${op.key} ${formatValue(op.value)}`
        : `delete ${op.key}`;
  const outcome = op.status === 'ok' ? '' : `outcome ${op.status}, `;
  return `${what} at ${formatWindow(op)} (${outcome}op #${op.id}, client ${op.client})`;
}

/** At most this many operations are listed in an explanation. */
export const MAX_LISTED_OPS = 5;

/** The first MAX_LISTED_OPS operations, formatted, and how many more there are; "none" for none. */
export function listOps(ops: readonly Operation[]): string {
  if (ops.length === 0) return 'none';
  const shown = ops.slice(0, MAX_LISTED_OPS).map(formatOp).join(', ');
  return ops.length > MAX_LISTED_OPS ? `${shown} and ${ops.length - MAX_LISTED_OPS} more` : shown;
}

const KINDS: ReadonlySet<string> = new Set<OpKind>(['put', 'delete', 'get']);
const STATUSES: ReadonlySet<string> = new Set<OpStatus>(['ok', 'fail', 'unknown']);

/**
 * Throws on a history the checker cannot interpret. Such a history is a bug in whoever recorded it,
 * so it is reported loudly instead of being checked (which could produce a wrong verdict).
 * Checked at run time as well because chaos histories are read back from JSON files.
 */
export function validateHistory(history: readonly Operation[]): void {
  const seenIds = new Set<number>();
  history.forEach((op, index) => {
    const problem = describeMalformation(op, seenIds);
    if (problem !== null) {
      throw new Error(`malformed history: operation at index ${index} (id ${String(op.id)}): ${problem}`);
    }
    seenIds.add(op.id);
  });
}

/** Why `op` is malformed, or null when it is well formed. */
function describeMalformation(op: Operation, seenIds: ReadonlySet<number>): string | null {
  if (!Number.isFinite(op.id)) return 'id must be a finite number';
  if (seenIds.has(op.id)) return 'duplicate id';
  if (typeof op.key !== 'string') return 'key must be a string';
  if (!KINDS.has(op.kind)) return `unknown kind ${JSON.stringify(op.kind)}`;
  if (!STATUSES.has(op.status)) return `unknown status ${JSON.stringify(op.status)}`;
  if (!Number.isFinite(op.invoke)) return 'invoke must be a finite number';
  if (op.status === 'unknown') {
    if (op.complete !== null) return "an operation with status 'unknown' must have complete === null";
  } else {
    if (op.complete === null || !Number.isFinite(op.complete)) {
      return `an operation with status '${op.status}' must have a finite complete time`;
    }
    if (op.complete < op.invoke) return `complete (${op.complete}) is before invoke (${op.invoke})`;
  }
  return describeBadValue(op);
}

function describeBadValue(op: Operation): string | null {
  switch (op.kind) {
    case 'put':
      return typeof op.value === 'string' ? null : 'a put must carry the written value (a string)';
    case 'delete':
      return op.value === null ? null : 'a delete must have value null';
    case 'get':
      if (op.status !== 'ok') return op.value === null ? null : `a get with status '${op.status}' must have value null`;
      return op.value === null || typeof op.value === 'string' ? null : 'a get must read a string or null';
  }
}
