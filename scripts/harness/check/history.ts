// The client-side record of a run (simulation or chaos), as the linearizability checker reads it,
// plus small helpers to validate and describe operations.
//
// Each key is a register with four operations: get, put, delete, and compare-and-set. A `cas`
// stands for every conditional write a client makes (a PUT or DELETE with If-Match or
// If-None-Match: *, or a one-key transaction "compare value = X, then put"): it requires the value
// `expected` (null: the key is absent) and then writes `value` (null: it deletes the key). Its
// answer says whether the condition held: `succeeded`. A failed one changed nothing, and its
// answer may say what it saw instead (`observed`: a transaction's failure-branch get, or a 412
// whose `current` is null), or only the key's modIndex then (`modIndex`, from a 412's `current`),
// which observations.ts turns into the value whenever the history shows which value that modIndex
// holds.

export type OpKind = 'put' | 'delete' | 'get' | 'cas';
export type OpStatus = 'ok' | 'fail' | 'unknown';

export interface Operation {
  readonly id: number; // unique within a history
  readonly client: number; // ops of one client never overlap in time
  readonly key: string;
  readonly kind: OpKind;
  /** put and cas: the value written (values are unique per history in practice, but don't rely on it);
   *  delete, and a cas that deletes: null; get: the value read (null = key absent) when status is 'ok',
   *  otherwise null. */
  readonly value: string | null;
  readonly invoke: number; // when the request was sent (any monotonic clock: ms, steps...)
  readonly complete: number | null; // when the answer arrived; null when status is 'unknown'
  /** ok: took effect / answered; fail: definitely did NOT take effect (e.g. refused before proposing);
   *  unknown: may or may not have taken effect, at any time after invoke (timeout, crash, lost connection).
   *  A request retried under one idempotency key is ONE operation: the invoke of its first attempt,
   *  the completion and answer of the last, unknown when no attempt got a definite answer. */
  readonly status: OpStatus;
  /** cas only: the value its condition requires (null: the key must be absent). */
  readonly expected?: string | null;
  /** cas with status 'ok' only: whether the condition held, so that the write took effect. */
  readonly succeeded?: boolean;
  /** A cas that failed, when its answer says: the value it saw instead (null: absent). */
  readonly observed?: string | null;
  /**
   * The key's modIndex as the answer told it, when it did: a get's ETag (the modIndex of the value
   * read), an acknowledged put's or cas's index (the modIndex it left), a failed cas's `current`
   * modIndex (the one it saw). Optional everywhere; only observations.ts reads it.
   */
  readonly modIndex?: number;
}

/**
 * Whether the operation may change the register: put and delete, and a cas unless it is known to
 * have failed. A get, and a failed cas, only observe it.
 */
export function isWrite(op: Operation): boolean {
  return op.kind === 'cas' ? op.succeeded !== false : op.kind !== 'get';
}

/** A cas whose answer said that its condition did not hold. */
export function isFailedCas(op: Operation): boolean {
  return op.kind === 'cas' && op.status === 'ok' && op.succeeded === false;
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
 * "put k1 'v5' at [100, ∞) (outcome unknown, op #3, client 1)",
 * or "cas k1 'v3' -> 'v8' failed, saw 'v4', at [140, 152] (op #9, client 0)".
 */
export function formatOp(op: Operation): string {
  const outcome = op.status === 'ok' ? '' : `outcome ${op.status}, `;
  return `${describeWhat(op)} at ${formatWindow(op)} (${outcome}op #${op.id}, client ${op.client})`;
}

function describeWhat(op: Operation): string {
  switch (op.kind) {
    case 'get':
      return `get ${op.key} -> ${formatValue(op.value)}`;
    case 'put':
      return `put ${op.key} ${formatValue(op.value)}`;
    case 'delete':
      return `delete ${op.key}`;
    case 'cas': {
      const what = `cas ${op.key} ${formatValue(op.expected ?? null)} -> ${formatValue(op.value)}`;
      if (op.status !== 'ok') return what;
      if (op.succeeded === true) return `${what} succeeded,`;
      const saw =
        op.observed !== undefined
          ? `, saw ${formatValue(op.observed)}`
          : op.modIndex !== undefined
            ? `, saw modIndex ${op.modIndex}`
            : '';
      return `${what} failed${saw},`;
    }
  }
}

/** At most this many operations are listed in an explanation. */
export const MAX_LISTED_OPS = 5;

/** The first MAX_LISTED_OPS operations, formatted, and how many more there are; "none" for none. */
export function listOps(ops: readonly Operation[]): string {
  if (ops.length === 0) return 'none';
  const shown = ops.slice(0, MAX_LISTED_OPS).map(formatOp).join(', ');
  return ops.length > MAX_LISTED_OPS ? `${shown} and ${ops.length - MAX_LISTED_OPS} more` : shown;
}

const KINDS: ReadonlySet<string> = new Set<OpKind>(['put', 'delete', 'get', 'cas']);
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
  const casFields = describeCasFields(op);
  if (casFields !== null) return casFields;
  if (op.modIndex !== undefined && !(Number.isSafeInteger(op.modIndex) && op.modIndex >= 0)) {
    return 'modIndex must be a non-negative integer';
  }
  switch (op.kind) {
    case 'put':
      return typeof op.value === 'string' ? null : 'a put must carry the written value (a string)';
    case 'delete':
      return op.value === null ? null : 'a delete must have value null';
    case 'get':
      if (op.status !== 'ok') return op.value === null ? null : `a get with status '${op.status}' must have value null`;
      return op.value === null || typeof op.value === 'string' ? null : 'a get must read a string or null';
    case 'cas':
      return op.value === null || typeof op.value === 'string' ? null : 'a cas must write a string or null';
  }
}

const isValue = (value: unknown): boolean => value === null || typeof value === 'string';

/** What is wrong with the cas-only fields (expected, succeeded, observed), or null. */
function describeCasFields(op: Operation): string | null {
  if (op.kind !== 'cas') {
    if (op.expected !== undefined || op.succeeded !== undefined || op.observed !== undefined) {
      return 'only a cas has expected, succeeded or observed';
    }
    return null;
  }
  if (!isValue(op.expected)) return 'a cas must carry the value it expects (a string, or null for absent)';
  if (op.status === 'ok' && typeof op.succeeded !== 'boolean') {
    return "a cas with status 'ok' must say whether it succeeded";
  }
  if (op.status !== 'ok' && op.succeeded !== undefined) return `a cas with status '${op.status}' has no succeeded`;
  if (op.observed !== undefined && !(op.succeeded === false && isValue(op.observed))) {
    return 'only a cas that failed observed a value (a string, or null for absent)';
  }
  return null;
}
