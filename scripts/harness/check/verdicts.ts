// What the checker answers for a key, and the explanations of a violation for humans.
import { formatOp, formatValue, isWrite, listOps, precedes, type Operation } from './history.js';
import type { ImpossibleRead } from './impossible-reads.js';
import type { RegisterProblem } from './register-problem.js';
import type { DeadEnd } from './register-search.js';

export type KeyVerdict =
  | { key: string; result: 'ok'; ops: number }
  | {
      key: string;
      result: 'violation';
      ops: number;
      /** a small explanation for humans */
      message: string;
      /**
       * From the search: the ids of the ops of the longest linearizable prefix found (in linearization
       * order), then the first op that could not be linearized, then the ops concurrent with it.
       * From the impossible-read screening: the reading get or cas, then the writes of the value it
       * read, then the write that overwrote them (if any).
       */
      culprits: number[];
      /** The id of the operation that could not be linearized (a get or a cas in practice). */
      failedOp: number;
    }
  | { key: string; result: 'unknown'; ops: number; message: string };

export interface CheckResult {
  result: 'ok' | 'violation' | 'unknown';
  keys: KeyVerdict[];
}

export function impossibleReadVerdict(key: string, opCount: number, impossible: ImpossibleRead): KeyVerdict {
  return {
    key,
    result: 'violation',
    ops: opCount,
    message: `${formatOp(impossible.get)} cannot be linearized: ${impossible.reason}`,
    culprits: [impossible.get.id, ...impossible.involved.map((op) => op.id)],
    failedOp: impossible.get.id,
  };
}

export function budgetExceededVerdict(
  key: string,
  opCount: number,
  problem: RegisterProblem,
  steps: number,
  deepest: DeadEnd | null,
): KeyVerdict {
  return {
    key,
    result: 'unknown',
    ops: opCount,
    message:
      `gave up on key ${key} after ${steps} search steps (maxStepsPerKey); ` +
      `the longest linearizable prefix found has ${deepest?.linearized.length ?? 0} ` +
      `of ${problem.ops.length} operations`,
  };
}

export function searchViolationVerdict(
  key: string,
  opCount: number,
  problem: RegisterProblem,
  deadEnd: DeadEnd,
): KeyVerdict {
  const opAt = (i: number): Operation => {
    const op = problem.ops[i];
    if (op === undefined) throw new Error(`internal error: the search named operation ${i} of ${problem.ops.length}`);
    return op;
  };
  const failed = opAt(deadEnd.blocked);
  const concurrent = deadEnd.concurrent.map(opAt);
  const valueThen = problem.values[deadEnd.state] ?? null;
  const message =
    `${formatOp(failed)} cannot be linearized: ${describeWritesAround(failed, problem)}. ` +
    `The longest linearizable prefix found has ${deadEnd.linearized.length} of ${problem.ops.length} ` +
    `operations and leaves the value ${formatValue(valueThen)}; pending with it: ${listOps(concurrent)}`;
  return {
    key,
    result: 'violation',
    ops: opCount,
    message,
    culprits: [...deadEnd.linearized.map((i) => opAt(i).id), failed.id, ...concurrent.map((op) => op.id)],
    failedOp: failed.id,
  };
}

/** Which writes an operation could have observed: the last of those that precede it, and those concurrent. */
function describeWritesAround(get: Operation, problem: RegisterProblem): string {
  const writes = problem.ops.filter(isWrite);
  const before = writes.filter((w) => precedes(w, get));
  // The latest preceding writes are those not followed by another preceding write.
  const lastInvoke = before.reduce((max, w) => Math.max(max, w.invoke), -Infinity);
  const latest = before.filter((w) => (w.complete as number) >= lastInvoke);
  // Most recent first: an unknown-outcome write from long ago is concurrent too, but less telling.
  const concurrent = writes.filter((w) => !precedes(w, get) && !precedes(get, w)).sort((a, b) => b.invoke - a.invoke);
  const beforePart =
    latest.length === 0
      ? `no write completes before it starts (initial value ${formatValue(problem.initial)})`
      : `the latest writes that must precede it are ${listOps(latest)}`;
  return `${beforePart}; writes concurrent with it: ${listOps(concurrent)}`;
}
