// Linearizability checker for key-value histories.
//
// Every key is an independent register, and linearizability is local (a history is linearizable iff
// its restriction to every key is), so each key is checked on its own. A register has four
// operations: get, put, delete and compare-and-set (cas: history.ts). A cas that succeeded read the
// value it expected and wrote its own; a failed one changed nothing and saw some other value (which
// one, when its answer says: observations.ts); one of unknown outcome may take effect, if the value is
// the one it expects, at any point after its invocation, or never (failing changes nothing either).
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
//  - a write of unknown outcome stays optional only until the last operation that observes its value
//    (usefulDeadline);
//  - forced moves: a get (or a failed cas) that holds in the current value, or a write nobody will
//    observe while the current value is unobserved, is linearized without branching (findForcedMove);
//  - configurations that differ only in an unobservable register value are merged (RegisterSearch).
//
// The parts: observations.ts (what a failed cas saw, from the modIndex it names), register-problem.ts
// (one key's operations, prepared), impossible-reads.ts (the screening), register-search.ts (the search; event-list.ts, decided-set.ts and
// configuration-set.ts are its data structures), verdicts.ts (the answer and its explanations).

import { isWrite, validateHistory, type Operation } from './history.js';
import { findImpossibleRead } from './impossible-reads.js';
import { withObservations } from './observations.js';
import { prepareRegister } from './register-problem.js';
import { RegisterSearch } from './register-search.js';
import {
  budgetExceededVerdict,
  impossibleReadVerdict,
  searchViolationVerdict,
  type CheckResult,
  type KeyVerdict,
} from './verdicts.js';

export type { CheckResult, KeyVerdict } from './verdicts.js';

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

  const byKey = groupInformativeOpsByKey(withObservations(history));
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
      return budgetExceededVerdict(key, ops.length, problem, outcome.steps, outcome.deepest);
    case 'not-linearizable':
      return searchViolationVerdict(key, ops.length, problem, outcome.deepest);
  }
}
