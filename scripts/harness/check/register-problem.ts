// One key's operations prepared for the search: the informative operations sorted by invoke, with
// their values interned to small codes, and writes of unknown outcome given the last moment at which
// taking effect can still matter (usefulDeadline), or left out when it never can.
import type { Operation } from './history.js';

/** The code of the absent value (null) in the interned values of a register. */
const ABSENT = 0;

/**
 * One key's operations, ready for the search. An operation is known by its index in `ops`, which is
 * also its bit in the set of linearized operations.
 */
export interface RegisterProblem {
  /** Sorted by invoke (then id), so that operations close in time have close bits. */
  readonly ops: readonly Operation[];
  /** 1 for writes of unknown outcome: they may take effect or not, so they may stay un-linearized. */
  readonly optional: Uint8Array;
  /**
   * When each operation's return event is: its completion for ok operations; for optional ones the
   * last moment at which taking effect can still matter (see usefulDeadline).
   */
  readonly returnAt: Float64Array;
  readonly isGet: Uint8Array;
  /** The interned value an operation writes, or for a get the one it read. */
  readonly valueCode: Int32Array;
  readonly initialCode: number;
  /** Interned values by code; values[ABSENT] === null. */
  readonly values: readonly (string | null)[];
  readonly initial: string | null;
}

export function prepareRegister(informativeOps: readonly Operation[], initial: string | null): RegisterProblem {
  const lastReadAt = latestCompletionOfReadsByValue(informativeOps);
  const kept: { op: Operation; returnAt: number }[] = [];
  for (const op of informativeOps) {
    const returnAt = op.complete ?? usefulDeadline(op, lastReadAt);
    if (returnAt !== null) kept.push({ op, returnAt });
  }
  kept.sort((a, b) => a.op.invoke - b.op.invoke || a.op.id - b.op.id);

  const values: (string | null)[] = [null];
  const codes = new Map<string | null, number>([[null, ABSENT]]);
  const intern = (value: string | null): number => {
    let code = codes.get(value);
    if (code === undefined) {
      code = values.length;
      values.push(value);
      codes.set(value, code);
    }
    return code;
  };

  const n = kept.length;
  const optional = new Uint8Array(n);
  const returnAt = new Float64Array(n);
  const isGet = new Uint8Array(n);
  const valueCode = new Int32Array(n);
  kept.forEach(({ op, returnAt: at }, i) => {
    optional[i] = op.status === 'unknown' ? 1 : 0;
    returnAt[i] = at;
    isGet[i] = op.kind === 'get' ? 1 : 0;
    valueCode[i] = intern(op.value);
  });
  const ops = kept.map(({ op }) => op);
  return { ops, optional, returnAt, isGet, valueCode, initialCode: intern(initial), values, initial };
}

/** For each value read by some ok get, when the last such get completed. */
function latestCompletionOfReadsByValue(ops: readonly Operation[]): Map<string | null, number> {
  const lastReadAt = new Map<string | null, number>();
  for (const op of ops) {
    if (op.kind !== 'get' || op.complete === null) continue;
    lastReadAt.set(op.value, Math.max(lastReadAt.get(op.value) ?? -Infinity, op.complete));
  }
  return lastReadAt;
}

/**
 * For a write of unknown outcome, the last moment at which taking effect can matter; null when it
 * never can, so that the write can be left out.
 *
 * A write w only matters to the gets that read its value. If in some linearization w comes after every
 * get reading its value, removing w leaves a valid linearization: the operations between w and the next
 * write are gets of w's value, and there are none. Every such get completes by D, the completion of the
 * last of them, so any linearization that places w after an operation invoked after D can drop w.
 * Hence w may be given a return at D (and stay optional), and dropped entirely when D < invoke or no get
 * reads its value. This keeps unknown writes from staying pending, and multiplying configurations,
 * until the end of the history.
 */
function usefulDeadline(op: Operation, lastReadAt: ReadonlyMap<string | null, number>): number | null {
  const deadline = lastReadAt.get(op.value);
  return deadline !== undefined && deadline >= op.invoke ? deadline : null;
}
