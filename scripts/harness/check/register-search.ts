// The search over one register (Wing & Gong as improved by Lowe; see linearizability.ts): linearize a
// pending call before the first return, backtrack at a return, remember explored configurations.
import { ConfigurationSet } from './configuration-set.js';
import { DecidedSet } from './decided-set.js';
import { EventList } from './event-list.js';
import { CAS, CHECK, NO_VALUE, READ, type RegisterProblem } from './register-problem.js';

/** The configuration at the deepest point where the search got stuck, for the report. */
export interface DeadEnd {
  /** Operation indices in linearization order (writes dropped as never taking effect are left out). */
  readonly linearized: number[];
  /** The operation whose return was reached while it could not be linearized. */
  readonly blocked: number;
  /** The other pending operations invoked before that return. */
  readonly concurrent: number[];
  /** The register's value after `linearized`. */
  readonly state: number;
}

export type SearchOutcome =
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
 * undecided operations that observe v alone (gets of v, cas expecting v, failed cas that saw v);
 * checksLeft is the number of undecided failed cas that saw nothing but "not e", and
 * checksExpecting[e] how many of them expect e: each of those observes every value but its e.
 *
 * Values that no undecided operation observes ("unread") are interchangeable: from then on nothing
 * can tell them apart, and in such a value only a put or a delete can be linearized. So
 * configurations are remembered with such a value replaced by UNREAD, which merges configurations
 * that differ only by which unobservable value the register holds.
 */
export class RegisterSearch {
  private readonly problem: RegisterProblem;
  private readonly events: EventList;
  private readonly decided: DecidedSet;
  private readonly explored = new ConfigurationSet();
  private readonly unreadLeft: Int32Array;
  private readonly checksExpecting: Int32Array;
  private checksLeft = 0;
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
    this.checksExpecting = new Int32Array(problem.values.length);
    for (let op = 0; op < n; op++) this.countObserver(op, 1);
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
   *  - an operation that changes nothing (a get, a failed cas) and holds in the current value keeps L
   *    valid when moved: the value it leaves is the one L started from;
   *  - when the current value is unread, L starts with a put or a delete (anything else would observe
   *    the value); a put or delete of an unread value w can go first: nothing observes the value it
   *    leaves, nor the gap where it was (what follows w in L is a put or a delete, as w's value is
   *    unread).
   * This keeps most reads, and the writes whose value nobody reads, out of the branching.
   */
  private findForcedMove(): number {
    const { type, valueCode } = this.problem;
    const events = this.events;
    const unread = this.isUnread(this.state);
    // op is an operation index (< n = valueCode.length): it is the operation of a call node.
    for (let event = events.first(); events.isCall(event); event = events.next(event)) {
      const op = events.opOf(event);
      const kind = type[op]!;
      if (kind === READ || kind === CHECK) {
        // (An observer of the current value cannot exist when the current value is unread.)
        if (this.apply(this.state, op) >= 0) return event;
      } else if (kind !== CAS && unread && this.isUnread(valueCode[op]!)) {
        return event;
      }
    }
    return -1;
  }

  /** Whether no undecided operation observes `value` (see the class comment). */
  private isUnread(value: number): boolean {
    // value is a value code (< values.length = unreadLeft.length = checksExpecting.length).
    return this.unreadLeft[value] === 0 && this.checksLeft === this.checksExpecting[value];
  }

  /** The value after applying operation `op` to `state`, or -1 if `op` cannot happen in `state`. */
  private apply(state: number, op: number): number {
    // op is an operation index (< n = every per-operation array's length).
    const value = this.problem.valueCode[op]!;
    switch (this.problem.type[op]) {
      case READ:
        return value === state ? state : -1;
      case CAS:
        return this.problem.expectedCode[op] === state ? value : -1;
      case CHECK:
        return this.problem.expectedCode[op] !== state && (value === NO_VALUE || value === state) ? state : -1;
      default:
        return value;
    }
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
    const remembered = this.isUnread(stateAfter) ? this.UNREAD : stateAfter;
    if (this.explored.addIfAbsent(this.decided, remembered)) return true;
    this.undecide(op);
    return false;
  }

  private decide(op: number): void {
    this.decided.add(op);
    this.countObserver(op, -1);
  }

  private undecide(op: number): void {
    this.decided.remove(op);
    this.countObserver(op, 1);
  }

  /** Adds `delta` to the counts of what operation `op` observes (see the class comment). */
  private countObserver(op: number, delta: number): void {
    // op is an operation index (< n = every per-operation array's length); value codes other than
    // NO_VALUE are < values.length = unreadLeft.length = checksExpecting.length.
    const { type, valueCode, expectedCode } = this.problem;
    switch (type[op]) {
      case READ:
        this.unreadLeft[valueCode[op]!]! += delta;
        return;
      case CAS:
        this.unreadLeft[expectedCode[op]!]! += delta;
        return;
      case CHECK:
        if (valueCode[op] !== NO_VALUE) {
          this.unreadLeft[valueCode[op]!]! += delta;
        } else {
          this.checksLeft += delta;
          this.checksExpecting[expectedCode[op]!]! += delta;
        }
        return;
    }
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
    // 0 <= depth < n = the moves' length: each move decides a distinct operation, so there are at most n.
    while (this.depth > 0) {
      this.depth--;
      if (this.depth < this.deepestMovesShared) this.deepestMovesShared = this.depth;
      const call = this.moveCall[this.depth]!;
      const op = this.events.opOf(call);
      this.events.unlift(call);
      this.undecide(op);
      this.state = this.moveStateBefore[this.depth]!;
      if (this.problem.optional[op] === 0) this.requiredLeft++;
      // Only a chosen move leaves alternatives: the other candidates after its call. A forced move
      // failing means that the configuration it was made from fails too: keep undoing.
      if (this.moveKind[this.depth] === MOVE_CHOSEN) return this.events.next(call);
    }
    return -1;
  }

  private noteDeadEnd(ret: number): void {
    if (this.depth <= this.deepestDepth) return;
    // i < depth <= n = the moves' length.
    for (let i = this.deepestMovesShared; i < this.depth; i++) {
      const op = this.events.opOf(this.moveCall[i]!);
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
