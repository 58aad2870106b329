// What a failed cas saw, when its answer named only the key's modIndex (a 412's `current`).
//
// A modIndex is the log index of the write that last changed the key, so at a given key it names
// one write and therefore one value: the value that write wrote. Whenever the history itself shows
// which value a (key, modIndex) holds (a get that read it under that ETag, an acknowledged put or cas
// that left it), a failed cas that saw that modIndex saw that value, and is checked as a read of it.
//
// That matters for the search, not only for precision: a failed cas that saw nothing but "not what I
// expected" is satisfied by every other value, so it observes them all, and a write of unknown
// outcome can then never be dropped early (register-problem.ts). With the value known, it observes
// one value, like a get.
//
// Sound on a correct system, where the pairs a history shows never disagree. Where two values claim
// one (key, modIndex) (a system that mislabels versions), nothing is derived from that pair: the cas
// keeps its weaker meaning.
import type { Operation } from './history.js';

const CONFLICT = Symbol('two values at one modIndex');

/** The history with `observed` filled in on every failed cas whose modIndex the history resolves. */
export function withObservations(history: readonly Operation[]): readonly Operation[] {
  const needed = history.some((op) => needsObservation(op));
  if (!needed) return history;
  const valueAt = valuesByModIndex(history);
  return history.map((op) => {
    if (!needsObservation(op)) return op;
    const value = valueAt.get(op.key)?.get(op.modIndex as number);
    return value === undefined || value === CONFLICT ? op : { ...op, observed: value };
  });
}

function needsObservation(op: Operation): boolean {
  return (
    op.kind === 'cas' &&
    op.status === 'ok' &&
    op.succeeded === false &&
    op.observed === undefined &&
    op.modIndex !== undefined
  );
}

/** (key, modIndex) -> the value there, from every answered operation that says both. */
function valuesByModIndex(history: readonly Operation[]): Map<string, Map<number, string | typeof CONFLICT>> {
  const byKey = new Map<string, Map<number, string | typeof CONFLICT>>();
  for (const op of history) {
    const value = valueLeftOrRead(op);
    if (value === null || op.modIndex === undefined) continue;
    let atKey = byKey.get(op.key);
    if (atKey === undefined) {
      atKey = new Map();
      byKey.set(op.key, atKey);
    }
    const known = atKey.get(op.modIndex);
    if (known === undefined) atKey.set(op.modIndex, value);
    else if (known !== value) atKey.set(op.modIndex, CONFLICT);
  }
  return byKey;
}

/**
 * The value the operation read or left under its modIndex, or null when it tells none: only answered
 * gets of a present key and acknowledged writes of a value do (an absent key has no modIndex).
 */
function valueLeftOrRead(op: Operation): string | null {
  if (op.status !== 'ok') return null;
  if (op.kind === 'get' || op.kind === 'put') return op.value;
  if (op.kind === 'cas' && op.succeeded === true) return op.value;
  return null;
}
