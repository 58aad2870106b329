// Linearizability checker for key-value histories.
//
// Every key is an independent register, and linearizability is local (a history is linearizable iff
// its restriction to every key is), so each key is checked on its own.
//
// Per key the search is the one of Wing & Gong as improved by Lowe (the algorithm of porcupine): the
// call and return events of the operations, sorted by time, form a doubly linked list; the search
// repeatedly linearizes one of the pending calls that come before the first return in the list,
// removing that operation's events, and backtracks when it reaches a return (that operation can no
// longer be linearized in time). Configurations (set of linearized operations, register value) already
// explored are remembered, so each is explored at most once. The search uses an explicit stack so that
// a key with tens of thousands of operations cannot overflow the call stack, and it is bounded by a
// step budget; running out of budget gives 'unknown', never a verdict.
//
// On top of that, sound reductions that matter for real histories (each argued where it is made):
//  - a cheap screening for impossible reads reports most violations without any search;
//  - a write of unknown outcome stays optional only until the last read of its value (usefulDeadline);
//  - forced moves: a get of the current value, or a write nobody will read while the current value is
//    unread, is linearized without branching (findForcedMove);
//  - configurations that differ only in an unobservable register value are merged (RegisterSearch).

import { formatOp, formatValue, isWrite, precedes, validateHistory } from './history.js';
import type { Operation } from './history.js';

export interface CheckOptions {
  /** Search steps allowed per key; a key that needs more gets the verdict 'unknown'. Default 5,000,000. */
  maxStepsPerKey?: number;
  /** The value of each key before the history starts; keys not listed start absent (null). */
  initial?: ReadonlyMap<string, string | null>;
  /**
   * Run the cheap, sound screening for impossible reads (a value never written, written only after the
   * read, or overwritten before the read started) before the search. Default true; turning it off is
   * only useful to test the search itself.
   */
  prechecks?: boolean;
}

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
       * From the impossible-read screening: the get, then the writes of the value it read, then the
       * write that overwrote them (if any).
       */
      culprits: number[];
      /** The id of the operation that could not be linearized (always a get in practice). */
      failedOp: number;
    }
  | { key: string; result: 'unknown'; ops: number; message: string };

export interface CheckResult {
  result: 'ok' | 'violation' | 'unknown';
  keys: KeyVerdict[];
}

export const DEFAULT_MAX_STEPS_PER_KEY = 5_000_000;

/**
 * Checks that `history` is linearizable with respect to a map of independent registers.
 * Throws if the history is malformed (see validateHistory). `keys` lists every key of the history,
 * sorted by key.
 */
export function checkLinearizability(history: readonly Operation[], options: CheckOptions = {}): CheckResult {
  validateHistory(history);
  const maxSteps = options.maxStepsPerKey ?? DEFAULT_MAX_STEPS_PER_KEY;
  if (!(maxSteps >= 0)) throw new Error(`maxStepsPerKey must be a non-negative number, got ${maxSteps}`);
  const prechecks = options.prechecks ?? true;

  const byKey = groupInformativeOpsByKey(history);
  const keys = [...byKey.keys()].sort();
  const verdicts = keys.map((key) =>
    checkRegister(key, byKey.get(key) ?? [], options.initial?.get(key) ?? null, maxSteps, prechecks),
  );
  return { result: overallResult(verdicts), keys: verdicts };
}

function overallResult(verdicts: readonly KeyVerdict[]): CheckResult['result'] {
  if (verdicts.some((v) => v.result === 'violation')) return 'violation';
  if (verdicts.some((v) => v.result === 'unknown')) return 'unknown';
  return 'ok';
}

/**
 * Groups the operations by key, leaving out those that carry no information: failed operations had
 * no effect, and a get without an answer neither changed nor observed anything. Every key of the
 * history gets an entry, possibly empty.
 */
function groupInformativeOpsByKey(history: readonly Operation[]): Map<string, Operation[]> {
  const byKey = new Map<string, Operation[]>();
  for (const op of history) {
    let ops = byKey.get(op.key);
    if (ops === undefined) {
      ops = [];
      byKey.set(op.key, ops);
    }
    const informative = op.status === 'ok' || (op.status === 'unknown' && isWrite(op));
    if (informative) ops.push(op);
  }
  return byKey;
}

function checkRegister(
  key: string,
  ops: readonly Operation[],
  initial: string | null,
  maxSteps: number,
  prechecks: boolean,
): KeyVerdict {
  if (prechecks) {
    const impossible = findImpossibleRead(ops, initial);
    if (impossible !== null) return impossibleReadVerdict(key, ops.length, impossible);
  }
  const problem = prepareRegister(ops, initial);
  const outcome = new RegisterSearch(problem).run(maxSteps);
  switch (outcome.kind) {
    case 'linearizable':
      return { key, result: 'ok', ops: ops.length };
    case 'budget-exceeded':
      return {
        key,
        result: 'unknown',
        ops: ops.length,
        message:
          `gave up on key ${key} after ${outcome.steps} search steps (maxStepsPerKey); ` +
          `the longest linearizable prefix found has ${outcome.deepest?.linearized.length ?? 0} ` +
          `of ${problem.ops.length} operations`,
      };
    case 'not-linearizable':
      return searchViolationVerdict(key, ops.length, problem, outcome.deepest);
  }
}

// ---------------------------------------------------------------------------------------------------
// One key's problem

/** The code of the absent value (null) in the interned values of a register. */
const ABSENT = 0;

/**
 * One key's operations, ready for the search. An operation is known by its index in `ops`, which is
 * also its bit in the set of linearized operations.
 */
interface RegisterProblem {
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

function prepareRegister(informativeOps: readonly Operation[], initial: string | null): RegisterProblem {
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

// ---------------------------------------------------------------------------------------------------
// Screening for impossible reads
//
// Cheap and sound: it only reports a get that no linearization can explain. It finds most violations
// seen in practice (stale reads, lost writes, invented values) in O(n log n) with a precise message,
// whereas the search would have to exhaust every configuration before it could report them.

interface ImpossibleRead {
  readonly get: Operation;
  readonly reason: string;
  /** The writes of the value read (at most a few) and the write that overwrote them, if any. */
  readonly involved: readonly Operation[];
}

/** A write as seen by the screening; the initial value is a write that completed at -∞. */
interface Writer {
  readonly op: Operation | null;
  readonly invoke: number;
  /** +∞ for a write of unknown outcome. */
  readonly complete: number;
}

const MAX_LISTED_OPS = 5;

/** Looks at all the informative operations, so that its explanations mention every write. */
function findImpossibleRead(ops: readonly Operation[], initial: string | null): ImpossibleRead | null {
  const overwrites = new OverwriteIndex(ops.filter((op) => isWrite(op) && op.status === 'ok'));
  const writersByValue = writersOfEachValue(ops, initial);
  const gets = ops
    .filter((op) => op.kind === 'get')
    .sort((a, b) => (a.complete as number) - (b.complete as number) || a.invoke - b.invoke);
  for (const get of gets) {
    const impossible = explainImpossibleRead(get, writersByValue.get(get.value), overwrites);
    if (impossible !== null) return impossible;
  }
  return null;
}

/** The writers of each value, sorted by invoke, the initial value first. */
function writersOfEachValue(ops: readonly Operation[], initial: string | null): Map<string | null, WriterTimeline> {
  const writers = new Map<string | null, Writer[]>();
  const add = (value: string | null, writer: Writer): void => {
    const list = writers.get(value);
    if (list === undefined) writers.set(value, [writer]);
    else list.push(writer);
  };
  add(initial, { op: null, invoke: -Infinity, complete: -Infinity });
  for (const op of ops) {
    if (isWrite(op)) add(op.value, { op, invoke: op.invoke, complete: op.complete ?? Infinity });
  }
  const timelines = new Map<string | null, WriterTimeline>();
  for (const [value, list] of writers) timelines.set(value, new WriterTimeline(list));
  return timelines;
}

function explainImpossibleRead(
  get: Operation,
  writers: WriterTimeline | undefined,
  overwrites: OverwriteIndex,
): ImpossibleRead | null {
  const getComplete = get.complete as number;
  const value = formatValue(get.value);
  if (writers === undefined) {
    return { get, reason: `no operation ever wrote ${value} to ${get.key}`, involved: [] };
  }
  const startedBefore = writers.countInvokedBy(getComplete);
  if (startedBefore === 0) {
    const first = writers.at(0).op as Operation; // not the initial value, which starts at -∞
    return {
      get,
      reason: `every write of ${value} starts after the get completed, the first one being ${formatOp(first)}`,
      involved: [first],
    };
  }
  // Of the writes that start in time, the one completing last is the hardest to overwrite: if even it
  // is followed by a write that completes before the get starts, so are all the others.
  const latest = writers.latestCompletingAmongFirst(startedBefore);
  const overwrite = overwrites.earliestCompletingInvokedAfter(latest.complete);
  if (overwrite === null || !((overwrite.complete as number) < get.invoke)) return null;
  const candidates = writers.opsAmongFirst(startedBefore);
  const whatWasOverwritten =
    latest.op === null
      ? `the initial value ${formatValue(get.value)} is overwritten by ${formatOp(overwrite)}`
      : `every write of ${value} that starts before the get completes ` +
        `(${listOps(candidates)}) is overwritten by ${formatOp(overwrite)}`;
  return {
    get,
    reason: `${whatWasOverwritten}, which completes before the get is invoked`,
    involved: [...candidates.slice(-MAX_LISTED_OPS), overwrite],
  };
}

/** The writers of one value, sorted by invoke, with running maxima of their completion. */
class WriterTimeline {
  private readonly writers: readonly Writer[];
  private readonly invokes: Float64Array;
  /** latestCompleting[i]: the index, among writers[0..i], of the one with the greatest completion. */
  private readonly latestCompleting: Int32Array;

  constructor(writers: Writer[]) {
    this.writers = writers.sort((a, b) => a.invoke - b.invoke);
    this.invokes = Float64Array.from(this.writers, (w) => w.invoke);
    this.latestCompleting = new Int32Array(this.writers.length);
    for (let i = 1; i < this.writers.length; i++) {
      const best = this.latestCompleting[i - 1];
      this.latestCompleting[i] = this.at(i).complete > this.at(best).complete ? i : best;
    }
  }

  at(i: number): Writer {
    return this.writers[i];
  }

  /** How many writers are invoked at or before `time` (they are a prefix). */
  countInvokedBy(time: number): number {
    return upperBound(this.invokes, time);
  }

  latestCompletingAmongFirst(count: number): Writer {
    return this.at(this.latestCompleting[count - 1]);
  }

  /** The real operations among the first `count` writers (that is, without the initial value). */
  opsAmongFirst(count: number): Operation[] {
    return this.writers.slice(0, count).flatMap((w) => (w.op === null ? [] : [w.op]));
  }
}

/** The successful writes of a key, to answer "which write invoked after t completes first?". */
class OverwriteIndex {
  private readonly writes: readonly Operation[];
  private readonly invokes: Float64Array;
  /** earliestCompleting[i]: the index, among writes[i..], of the one that completes first. */
  private readonly earliestCompleting: Int32Array;

  constructor(okWrites: Operation[]) {
    this.writes = okWrites.sort((a, b) => a.invoke - b.invoke);
    const n = this.writes.length;
    this.invokes = Float64Array.from(this.writes, (w) => w.invoke);
    this.earliestCompleting = new Int32Array(n);
    for (let i = n - 1; i >= 0; i--) {
      const later = i + 1 < n ? this.earliestCompleting[i + 1] : i;
      this.earliestCompleting[i] = this.completeOf(i) <= this.completeOf(later) ? i : later;
    }
  }

  earliestCompletingInvokedAfter(time: number): Operation | null {
    const first = upperBound(this.invokes, time);
    if (first === this.writes.length) return null;
    return this.writes[this.earliestCompleting[first]];
  }

  private completeOf(i: number): number {
    return this.writes[i].complete as number;
  }
}

/** The number of elements of the sorted `values` that are <= `x`. */
function upperBound(values: Float64Array, x: number): number {
  let lo = 0;
  let hi = values.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (values[mid] <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function impossibleReadVerdict(key: string, opCount: number, impossible: ImpossibleRead): KeyVerdict {
  return {
    key,
    result: 'violation',
    ops: opCount,
    message: `${formatOp(impossible.get)} cannot be linearized: ${impossible.reason}`,
    culprits: [impossible.get.id, ...impossible.involved.map((op) => op.id)],
    failedOp: impossible.get.id,
  };
}

// ---------------------------------------------------------------------------------------------------
// The search

/** The configuration at the deepest point where the search got stuck, for the report. */
interface DeadEnd {
  /** Operation indices in linearization order (writes dropped as never taking effect are left out). */
  readonly linearized: number[];
  /** The operation whose return was reached while it could not be linearized. */
  readonly blocked: number;
  /** The other pending operations invoked before that return. */
  readonly concurrent: number[];
  /** The register's value after `linearized`. */
  readonly state: number;
}

type SearchOutcome =
  | { kind: 'linearizable'; steps: number }
  | { kind: 'budget-exceeded'; steps: number; deepest: DeadEnd | null }
  | { kind: 'not-linearizable'; steps: number; deepest: DeadEnd };

/**
 * How the search got from one configuration to the next:
 *  - chosen: linearized one of several candidates; on failure the others are tried;
 *  - forced: a move that loses nothing (see findForcedMove), so on failure the configuration it was
 *    made from fails as well;
 *  - drop: decided that an unknown-outcome write never took effect; forced too, as it is made only
 *    once every call before that write's return has been tried.
 */
type MoveKind = typeof MOVE_CHOSEN | typeof MOVE_FORCED | typeof MOVE_DROP;
const MOVE_CHOSEN = 0;
const MOVE_FORCED = 1;
const MOVE_DROP = 2;

/**
 * The search over one register. Each iteration of the loop in run() is one step:
 *  - on entering a configuration: make a forced move if there is one;
 *  - at a call: try to linearize that operation now (it must suit the register's value, and lead to a
 *    configuration not explored before); on success restart from the first event;
 *  - at the return of an optional (unknown-outcome) write not linearized yet: past this point it can
 *    no longer matter, so decide that it never took effect;
 *  - at the return of a required operation: every candidate before it has been tried, so this
 *    configuration is a dead end and the search backtracks.
 * Invariants: the stack holds the moves that lead from the initial configuration to the current one;
 * the event list holds exactly the events of the undecided operations; unreadLeft[v] is the number of
 * undecided gets that read v.
 *
 * Values that no undecided get reads ("unread") are interchangeable: from then on no get can observe
 * them. So configurations are remembered with such a value replaced by UNREAD, which merges
 * configurations that differ only by which unobservable value the register holds.
 */
class RegisterSearch {
  private readonly problem: RegisterProblem;
  private readonly events: EventList;
  private readonly decided: DecidedSet;
  private readonly explored = new ConfigurationSet();
  private readonly unreadLeft: Int32Array;
  /** A code that no operation uses, standing for any unread value in remembered configurations. */
  private readonly UNREAD: number;
  /** The moves: the call event of the operation, the register value before, and the kind of move. */
  private readonly moveCall: Int32Array;
  private readonly moveStateBefore: Int32Array;
  private readonly moveKind: Uint8Array;
  private depth = 0;
  private state: number;
  private requiredLeft: number;
  /** The deepest dead end so far, except for its moves, which are in `deepestMoves`. */
  private deepest: Omit<DeadEnd, 'linearized'> | null = null;
  /** The number of moves (drops included) that led to `deepest`. */
  private deepestDepth = -1;
  /**
   * The moves that led to `deepest`, as operation indices (~op for a drop): deepestMoves[0..deepestDepth).
   * Invariant: its first `deepestMovesShared` entries are also the current moves, so recording a new
   * deepest dead end copies only the moves made since the last backtrack below that level; each move
   * is copied at most once, which keeps recording linear overall rather than quadratic.
   */
  private readonly deepestMoves: Int32Array;
  private deepestMovesShared = 0;

  constructor(problem: RegisterProblem) {
    const n = problem.ops.length;
    this.problem = problem;
    this.events = new EventList(problem);
    this.decided = new DecidedSet(n);
    this.UNREAD = problem.values.length;
    this.unreadLeft = new Int32Array(problem.values.length);
    for (let op = 0; op < n; op++) {
      if (problem.isGet[op] === 1) this.unreadLeft[problem.valueCode[op]]++;
    }
    this.moveCall = new Int32Array(n);
    this.moveStateBefore = new Int32Array(n);
    this.moveKind = new Uint8Array(n);
    this.deepestMoves = new Int32Array(n);
    this.state = problem.initialCode;
    this.requiredLeft = problem.optional.reduce((left, optional) => left + (optional === 1 ? 0 : 1), 0);
  }

  run(maxSteps: number): SearchOutcome {
    const events = this.events;
    let event = events.first();
    // Whether the current configuration was just entered and not yet searched for a forced move.
    let entered = true;
    let steps = 0;
    while (this.requiredLeft > 0) {
      if (steps >= maxSteps) return { kind: 'budget-exceeded', steps, deepest: this.deepestDeadEnd() };
      steps++;
      let moved: boolean;
      if (entered) {
        entered = false;
        const forced = this.findForcedMove();
        if (forced < 0) continue;
        moved = this.tryLinearize(forced, MOVE_FORCED);
      } else if (events.isCall(event)) {
        moved = this.tryLinearize(event, MOVE_CHOSEN);
        if (!moved) {
          event = events.next(event);
          continue;
        }
      } else if (this.problem.optional[events.opOf(event)] === 1) {
        moved = this.tryDrop(event);
      } else {
        this.noteDeadEnd(event);
        moved = false;
      }
      if (moved) {
        entered = true;
        event = events.first();
      } else {
        event = this.backtrack();
        if (event < 0) return { kind: 'not-linearizable', steps, deepest: this.mustHaveDeadEnd() };
      }
    }
    return { kind: 'linearizable', steps };
  }

  /**
   * The call event of a pending operation that can be linearized right now without loss of generality,
   * or -1. Take any way L to finish the search from here; a candidate op (its call comes before every
   * return) can be moved to the front of L without breaking real-time order, and
   *  - a get of the current value changes nothing, so moving it keeps L valid;
   *  - when the current value is unread, L starts with a write; a write of an unread value w can go
   *    first: nothing observes the value it leaves, nor the gap where it was (what follows w in L is a
   *    write, as w's value is unread).
   * This keeps most reads, and the writes whose value nobody reads, out of the branching.
   */
  private findForcedMove(): number {
    const { isGet, valueCode } = this.problem;
    const events = this.events;
    const unread = this.unreadLeft[this.state] === 0;
    for (let event = events.first(); events.isCall(event); event = events.next(event)) {
      const op = events.opOf(event);
      const value = valueCode[op];
      // (A get of the current value cannot exist when the current value is unread.)
      if (isGet[op] === 1 ? value === this.state : unread && this.unreadLeft[value] === 0) {
        return event;
      }
    }
    return -1;
  }

  /** The value after applying operation `op` to `state`, or -1 if `op` cannot happen in `state`. */
  private apply(state: number, op: number): number {
    const value = this.problem.valueCode[op];
    if (this.problem.isGet[op] === 1) return value === state ? state : -1;
    return value;
  }

  /** Linearizes the operation of `call` if it suits the value and leads somewhere new. */
  private tryLinearize(call: number, kind: MoveKind): boolean {
    const op = this.events.opOf(call);
    const after = this.apply(this.state, op);
    if (after < 0 || !this.decideIfNew(op, after)) return false;
    this.push(call, kind);
    this.state = after;
    if (this.problem.optional[op] === 0) this.requiredLeft--;
    return true;
  }

  /** Decides that the optional write whose return event is `ret` never took effect. */
  private tryDrop(ret: number): boolean {
    const op = this.events.opOf(ret);
    // Linearized and dropped operations share their bit: either way the operation is gone from the
    // event list and the value is what it is, so the two configurations have the same futures.
    if (!this.decideIfNew(op, this.state)) return false;
    this.push(this.events.partner(ret), MOVE_DROP);
    return true;
  }

  /** Decides `op`, and keeps it decided and returns true iff that leads to an unexplored configuration. */
  private decideIfNew(op: number, stateAfter: number): boolean {
    this.decide(op);
    const remembered = this.unreadLeft[stateAfter] === 0 ? this.UNREAD : stateAfter;
    if (this.explored.addIfAbsent(this.decided, remembered)) return true;
    this.undecide(op);
    return false;
  }

  private decide(op: number): void {
    this.decided.add(op);
    if (this.problem.isGet[op] === 1) this.unreadLeft[this.problem.valueCode[op]]--;
  }

  private undecide(op: number): void {
    this.decided.remove(op);
    if (this.problem.isGet[op] === 1) this.unreadLeft[this.problem.valueCode[op]]++;
  }

  private push(call: number, kind: MoveKind): void {
    this.moveCall[this.depth] = call;
    this.moveStateBefore[this.depth] = this.state;
    this.moveKind[this.depth] = kind;
    this.depth++;
    this.events.lift(call);
  }

  /**
   * Undoes moves until one leaves an alternative, and returns the event to continue from (the one after
   * that move's call), or -1 when no move is left: the history is not linearizable.
   */
  private backtrack(): number {
    while (this.depth > 0) {
      this.depth--;
      if (this.depth < this.deepestMovesShared) this.deepestMovesShared = this.depth;
      const call = this.moveCall[this.depth];
      const op = this.events.opOf(call);
      this.events.unlift(call);
      this.undecide(op);
      this.state = this.moveStateBefore[this.depth];
      if (this.problem.optional[op] === 0) this.requiredLeft++;
      // Only a chosen move leaves alternatives: the other candidates after its call. A forced move
      // failing means that the configuration it was made from fails too: keep undoing.
      if (this.moveKind[this.depth] === MOVE_CHOSEN) return this.events.next(call);
    }
    return -1;
  }

  private noteDeadEnd(ret: number): void {
    if (this.depth <= this.deepestDepth) return;
    for (let i = this.deepestMovesShared; i < this.depth; i++) {
      const op = this.events.opOf(this.moveCall[i]);
      this.deepestMoves[i] = this.moveKind[i] === MOVE_DROP ? ~op : op;
    }
    this.deepestMovesShared = this.depth;
    this.deepestDepth = this.depth;
    const blocked = this.events.opOf(ret);
    const concurrent: number[] = [];
    for (let e = this.events.first(); e !== ret; e = this.events.next(e)) {
      if (this.events.isCall(e) && this.events.opOf(e) !== blocked) concurrent.push(this.events.opOf(e));
    }
    this.deepest = { blocked, concurrent, state: this.state };
  }

  private deepestDeadEnd(): DeadEnd | null {
    if (this.deepest === null) return null;
    const linearized = [...this.deepestMoves.subarray(0, this.deepestDepth)].filter((move) => move >= 0);
    return { ...this.deepest, linearized };
  }

  private mustHaveDeadEnd(): DeadEnd {
    // Failing means backtracking out of the initial configuration, which only happens after a dead end
    // at a required return (a drop can only be refused for a configuration explored before, whose
    // exploration ended in dead ends too).
    const deepest = this.deepestDeadEnd();
    if (deepest === null) throw new Error('internal error: search failed without a dead end');
    return deepest;
  }
}

/**
 * The call and return events of one register's operations in time order, as a doubly linked list with
 * head and tail sentinels. Removing an operation (both its events) is O(1), and removals are undone in
 * LIFO order by relinking the removed nodes, which keep their own links (dancing links).
 *
 * Order: by time; at equal times calls come before returns, so that operations touching at one instant
 * are concurrent (real-time order is strict).
 */
class EventList {
  private readonly nextOf: Int32Array;
  private readonly prevOf: Int32Array;
  /** Per node: the operation index. */
  private readonly op: Int32Array;
  /** Per node: the other event of the same operation. */
  private readonly partnerOf: Int32Array;
  private readonly call: Uint8Array;
  private readonly tail: number;

  constructor(problem: RegisterProblem) {
    const n = problem.ops.length;
    const eventCount = 2 * n;
    // Event e < n is the call of operation e, event n + i the return of operation i.
    const timeOf = (e: number): number => (e < n ? problem.ops[e].invoke : problem.returnAt[e - n]);
    const order = Array.from({ length: eventCount }, (_, e) => e).sort(
      (a, b) => timeOf(a) - timeOf(b) || Number(a >= n) - Number(b >= n) || a - b,
    );

    // Node 0 is the head sentinel, nodes 1..eventCount the events in order, then the tail sentinel.
    this.tail = eventCount + 1;
    this.nextOf = new Int32Array(eventCount + 2);
    this.prevOf = new Int32Array(eventCount + 2);
    this.op = new Int32Array(eventCount + 2).fill(-1);
    this.partnerOf = new Int32Array(eventCount + 2);
    this.call = new Uint8Array(eventCount + 2);
    const nodeOfEvent = new Int32Array(eventCount);
    order.forEach((e, i) => {
      const node = i + 1;
      nodeOfEvent[e] = node;
      this.op[node] = e < n ? e : e - n;
      this.call[node] = e < n ? 1 : 0;
    });
    for (let i = 0; i < n; i++) {
      const callNode = nodeOfEvent[i];
      const returnNode = nodeOfEvent[n + i];
      this.partnerOf[callNode] = returnNode;
      this.partnerOf[returnNode] = callNode;
    }
    for (let node = 0; node <= this.tail; node++) {
      this.nextOf[node] = node + 1;
      this.prevOf[node] = node - 1;
    }
  }

  first(): number {
    return this.nextOf[0];
  }

  next(node: number): number {
    const next = this.nextOf[node];
    // The search never walks past the last return of a required operation, so it never reaches the
    // tail; reaching it would mean a broken invariant, not a verdict.
    if (next === this.tail) throw new Error('internal error: the search ran off the end of the events');
    return next;
  }

  isCall(node: number): boolean {
    return this.call[node] === 1;
  }

  opOf(node: number): number {
    return this.op[node];
  }

  partner(node: number): number {
    return this.partnerOf[node];
  }

  /** Removes the operation of call node `call`: first its call, then its return. */
  lift(call: number): void {
    this.unlink(call);
    this.unlink(this.partnerOf[call]);
  }

  /** Undoes lift(call); valid only while lifts are undone in reverse order. */
  unlift(call: number): void {
    this.relink(this.partnerOf[call]);
    this.relink(call);
  }

  private unlink(node: number): void {
    const prev = this.prevOf[node];
    const next = this.nextOf[node];
    this.nextOf[prev] = next;
    this.prevOf[next] = prev;
  }

  private relink(node: number): void {
    this.nextOf[this.prevOf[node]] = node;
    this.prevOf[this.nextOf[node]] = node;
  }
}

// ---------------------------------------------------------------------------------------------------
// Memoization: a bitset of decided operations, and a hash set of (bitset, value) configurations.
// Both are exported for their unit tests only.

const FULL_WORD = 0xffffffff;

/**
 * The set of decided (linearized or dropped) operations, as a bitset in 32-bit words, with
 *  - an incremental hash: two 32-bit XORs of per-operation random keys, updated in O(1) per change;
 *  - the exact bounds of its interesting part: every word below `low` is full and every word from
 *    `high` on is empty. The search decides operations roughly in time order, so the decided set is
 *    "everything up to about here, plus a few more" and words[low..high) is a handful of words however
 *    long the history. (low, words[low..high)) identifies the set, so configurations are stored and
 *    compared by that slice only.
 */
export class DecidedSet {
  readonly words: Uint32Array;
  hashA = 0;
  hashB = 0;
  low = 0;
  high = 0;
  private readonly keysA: Uint32Array;
  private readonly keysB: Uint32Array;
  private readonly lastWordFull: number;

  /** `random` makes the per-operation hash keys; tests pass a degenerate one to force collisions. */
  constructor(size: number, random: () => number = splitMix32(0x5eed_1234)) {
    this.words = new Uint32Array(Math.ceil(size / 32));
    this.keysA = Uint32Array.from({ length: size }, random);
    this.keysB = Uint32Array.from({ length: size }, random);
    const bitsInLastWord = size % 32;
    this.lastWordFull = bitsInLastWord === 0 ? FULL_WORD : 2 ** bitsInLastWord - 1;
  }

  add(i: number): void {
    const w = i >>> 5;
    this.words[w] = this.words[w] | (1 << (i & 31));
    this.toggleHash(i);
    if (w + 1 > this.high) this.high = w + 1;
    while (this.low < this.words.length && this.words[this.low] === this.fullWord(this.low)) this.low++;
  }

  remove(i: number): void {
    const w = i >>> 5;
    this.words[w] = this.words[w] & ~(1 << (i & 31));
    this.toggleHash(i);
    if (w < this.low) this.low = w;
    while (this.high > 0 && this.words[this.high - 1] === 0) this.high--;
  }

  private toggleHash(i: number): void {
    this.hashA = (this.hashA ^ this.keysA[i]) >>> 0;
    this.hashB = (this.hashB ^ this.keysB[i]) >>> 0;
  }

  private fullWord(w: number): number {
    return w === this.words.length - 1 ? this.lastWordFull : FULL_WORD;
  }
}

/**
 * A hash set of configurations (decided set, register value), stored flat in typed arrays so that
 * millions of them cost tens of bytes each and no garbage: per entry the two hashes, the value, `low`
 * and the offset of its slice of words in one shared word arena; open addressing with linear probing
 * over a power-of-two table kept at most half full. Lookups compare hashes first and words only on a
 * full hash match, so they are exact: a collision can never hide an unexplored configuration.
 */
export class ConfigurationSet {
  private table = new Int32Array(1024); // 0 = empty, else entry index + 1
  private count = 0;
  private hashA = new Uint32Array(512);
  private hashB = new Uint32Array(512);
  private state = new Int32Array(512);
  private low = new Int32Array(512);
  /** Entry i's words are arena[start[i] .. start[i + 1]). */
  private start = new Float64Array(513);
  private arena = new Uint32Array(4096);

  /** Adds (set, state) and returns true, or returns false if it was already present. */
  addIfAbsent(set: DecidedSet, state: number): boolean {
    const mask = this.table.length - 1;
    for (let slot = slotHash(set.hashA, set.hashB, state) & mask; ; slot = (slot + 1) & mask) {
      const entry = this.table[slot] - 1;
      if (entry < 0) {
        this.table[slot] = this.append(set, state) + 1;
        if (2 * this.count > this.table.length) this.growTable();
        return true;
      }
      if (this.matches(entry, set, state)) return false;
    }
  }

  private matches(entry: number, set: DecidedSet, state: number): boolean {
    if (this.hashA[entry] !== set.hashA || this.hashB[entry] !== set.hashB || this.state[entry] !== state) {
      return false;
    }
    const from = this.start[entry];
    const length = this.start[entry + 1] - from;
    if (this.low[entry] !== set.low || length !== set.high - set.low) return false;
    for (let i = 0; i < length; i++) {
      if (this.arena[from + i] !== set.words[set.low + i]) return false;
    }
    return true;
  }

  private append(set: DecidedSet, state: number): number {
    const entry = this.count;
    if (entry === this.hashA.length) this.growEntries();
    const from = this.start[entry];
    const length = set.high - set.low;
    if (from + length > this.arena.length) this.arena = grown(this.arena, from + length);
    this.arena.set(set.words.subarray(set.low, set.high), from);
    this.hashA[entry] = set.hashA;
    this.hashB[entry] = set.hashB;
    this.state[entry] = state;
    this.low[entry] = set.low;
    this.start[entry + 1] = from + length;
    this.count++;
    return entry;
  }

  private growEntries(): void {
    const size = this.hashA.length * 2;
    this.hashA = grown(this.hashA, size);
    this.hashB = grown(this.hashB, size);
    this.state = grown(this.state, size);
    this.low = grown(this.low, size);
    this.start = grown(this.start, size + 1);
  }

  private growTable(): void {
    const table = new Int32Array(this.table.length * 2);
    const mask = table.length - 1;
    for (let entry = 0; entry < this.count; entry++) {
      let slot = slotHash(this.hashA[entry], this.hashB[entry], this.state[entry]) & mask;
      while (table[slot] !== 0) slot = (slot + 1) & mask;
      table[slot] = entry + 1;
    }
    this.table = table;
  }
}

type GrowableArray = Uint32Array | Int32Array | Float64Array;

/** A copy of `array` with room for at least `minLength` elements (doubling, to amortize). */
function grown<T extends GrowableArray>(array: T, minLength: number): T {
  let length = Math.max(array.length * 2, 16);
  while (length < minLength) length *= 2;
  const bigger = new (array.constructor as new (length: number) => T)(length);
  bigger.set(array);
  return bigger;
}

/** Mixes a configuration's hashes and value into a table index (murmur3's 32-bit finalizer). */
function slotHash(hashA: number, hashB: number, state: number): number {
  let h = hashA ^ Math.imul(hashB ^ (hashB >>> 15), 0x2c1b3c6d) ^ Math.imul(state + 1, 0x9e3779b1);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** A deterministic stream of 32-bit random numbers (splitmix32), so that runs are reproducible. */
function splitMix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
}

// ---------------------------------------------------------------------------------------------------
// Reporting a violation found by the search

function searchViolationVerdict(
  key: string,
  opCount: number,
  problem: RegisterProblem,
  deadEnd: DeadEnd,
): KeyVerdict {
  const opAt = (i: number): Operation => problem.ops[i];
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

/** Which writes a get could have observed: the last of those that precede it, and those concurrent. */
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

function listOps(ops: readonly Operation[]): string {
  if (ops.length === 0) return 'none';
  const shown = ops.slice(0, MAX_LISTED_OPS).map(formatOp).join(', ');
  return ops.length > MAX_LISTED_OPS ? `${shown} and ${ops.length - MAX_LISTED_OPS} more` : shown;
}
