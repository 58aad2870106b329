// One key's operations prepared for the search: the informative operations sorted by invoke, each
// reduced to what it does to the register (read, write, compare-and-set, failed check), with values
// interned to small codes, and writes of unknown outcome given the last moment at which taking
// effect can still matter (usefulDeadline), or left out when it never can.
import { isFailedCas, type Operation } from './history.js';

/** The code of the absent value (null) in the interned values of a register. */
const ABSENT = 0;
/** In valueCode and expectedCode: no value. */
export const NO_VALUE = -1;

/** What an operation does to the register (RegisterProblem.type). */
export const READ = 0; // requires the value valueCode; changes nothing (a get)
export const WRITE = 1; // sets valueCode (a put, a delete)
export const CAS = 2; // requires the value expectedCode, then sets valueCode (a cas that succeeded, or may have)
export const CHECK = 3; // requires a value other than expectedCode, and valueCode unless NO_VALUE (a failed cas)

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
  /** READ, WRITE, CAS or CHECK. */
  readonly type: Uint8Array;
  /** READ: the value read; WRITE, CAS: the value written; CHECK: the value seen, or NO_VALUE. */
  readonly valueCode: Int32Array;
  /** CAS, CHECK: the value the condition requires; NO_VALUE for the others. */
  readonly expectedCode: Int32Array;
  readonly initialCode: number;
  /** Interned values by code; values[ABSENT] === null. */
  readonly values: readonly (string | null)[];
  readonly initial: string | null;
}

export function prepareRegister(informativeOps: readonly Operation[], initial: string | null): RegisterProblem {
  const readers = new ValueReaders(informativeOps);
  const kept: { op: Operation; returnAt: number }[] = [];
  for (const op of informativeOps) {
    const returnAt = op.complete ?? usefulDeadline(op, readers);
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
  const type = new Uint8Array(n);
  const valueCode = new Int32Array(n);
  const expectedCode = new Int32Array(n).fill(NO_VALUE);
  kept.forEach(({ op, returnAt: at }, i) => {
    optional[i] = op.status === 'unknown' ? 1 : 0;
    returnAt[i] = at;
    if (op.kind === 'get') {
      type[i] = READ;
      valueCode[i] = intern(op.value);
    } else if (op.kind !== 'cas') {
      type[i] = WRITE;
      valueCode[i] = intern(op.value);
    } else if (isFailedCas(op)) {
      type[i] = CHECK;
      expectedCode[i] = intern(op.expected ?? null);
      valueCode[i] = op.observed === undefined ? NO_VALUE : intern(op.observed);
    } else {
      type[i] = CAS;
      expectedCode[i] = intern(op.expected ?? null);
      valueCode[i] = intern(op.value);
    }
  });
  const ops = kept.map(({ op }) => op);
  return { ops, optional, returnAt, type, valueCode, expectedCode, initialCode: intern(initial), values, initial };
}

/**
 * Who observes which value, for the deadlines of unknown writes. An operation observes a value when
 * whether it can be linearized at a point depends on the register holding that value there:
 *  - a get of v, a cas that succeeded expecting v, a failed cas that saw v: they observe v, and
 *    complete at a known time;
 *  - a cas of unknown outcome expecting v observes v, for as long as it may still take effect;
 *  - a failed cas that saw nothing but "not e" is satisfied by every value other than e: it observes
 *    all of them.
 */
class ValueReaders {
  /** For each value, when the last answered operation observing it alone completed. */
  private readonly lastReadAt = new Map<string | null, number>();
  /** Values that a cas of unknown outcome expects. */
  private readonly expectedByUnknownCas = new Set<string | null>();
  /** The failed cas without an observation that completes last, and the last one expecting another value. */
  private latestNot: { expected: string | null; at: number } | null = null;
  private latestNotOther: { expected: string | null; at: number } | null = null;

  constructor(ops: readonly Operation[]) {
    for (const op of ops) {
      if (op.complete === null) {
        if (op.kind === 'cas') this.expectedByUnknownCas.add(op.expected ?? null);
        continue;
      }
      if (op.kind === 'get') this.read(op.value, op.complete);
      else if (op.kind !== 'cas') continue;
      else if (op.succeeded === true) this.read(op.expected ?? null, op.complete);
      else if (op.observed !== undefined) this.read(op.observed, op.complete);
      else this.readAllBut(op.expected ?? null, op.complete);
    }
  }

  private read(value: string | null, at: number): void {
    this.lastReadAt.set(value, Math.max(this.lastReadAt.get(value) ?? -Infinity, at));
  }

  /** Keeps the latest failed check, and the latest one expecting a different value than it. */
  private readAllBut(expected: string | null, at: number): void {
    const latest = this.latestNot;
    if (latest === null || at > latest.at) {
      if (latest !== null && latest.expected !== expected) this.latestNotOther = latest;
      this.latestNot = { expected, at };
    } else if (expected !== latest.expected && (this.latestNotOther === null || at > this.latestNotOther.at)) {
      this.latestNotOther = { expected, at };
    }
  }

  /**
   * When the last operation observing `value` completes: -Infinity when none does, +Infinity while a
   * cas of unknown outcome expects it (it may take effect at any time).
   */
  lastObservation(value: string | null): number {
    if (this.expectedByUnknownCas.has(value)) return Infinity;
    const latestNot = this.latestNot?.expected !== value ? this.latestNot : this.latestNotOther;
    return Math.max(this.lastReadAt.get(value) ?? -Infinity, latestNot?.at ?? -Infinity);
  }
}

/**
 * For a write of unknown outcome (a put, a delete, or a cas), the last moment at which taking effect
 * can matter; null when it never can, so that the write can be left out.
 *
 * A write w of the value x only matters to the operations that observe x (ValueReaders). If in some
 * linearization w comes after every operation observing x, removing w leaves a valid linearization:
 * between w and the next write there is nothing that observes x, so nothing there notices that the
 * register holds what it held before w; the next write is a put or a delete (a cas would have to
 * expect x, and so observe it), which does not care either. Every answered such operation completes
 * by D, the completion of the last of them, so any linearization that places w after an operation
 * invoked after D can drop w. Hence w may be given a return at D (and stay optional), and dropped
 * entirely when D < invoke or nothing observes x. This keeps unknown writes from staying pending, and
 * multiplying configurations, until the end of the history. A cas of unknown outcome that expects x
 * may take effect at any time, so then D is +∞: w stays pending to the end.
 */
function usefulDeadline(op: Operation, readers: ValueReaders): number | null {
  const deadline = readers.lastObservation(op.value);
  return deadline >= op.invoke ? deadline : null;
}
