// Screening for impossible reads, before any search.
//
// Cheap and sound: it only reports a read that no linearization can explain. It finds most
// violations seen in practice (stale reads, lost writes, invented values, a cas that succeeded
// against a value nobody could have seen) in O(n log n) with a precise message, whereas the search
// would have to exhaust every configuration before it could report them.
//
// A read is any answered operation that saw one value at its linearization point: a get (the value
// it returned), a cas that succeeded (the value it expected), a failed cas that says what it saw.
import { formatOp, formatValue, isWrite, listOps, MAX_LISTED_OPS, type Operation } from './history.js';

export interface ImpossibleRead {
  /** The reading operation: a get or a cas. */
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

/** Looks at all the informative operations, so that its explanations mention every write. */
export function findImpossibleRead(ops: readonly Operation[], initial: string | null): ImpossibleRead | null {
  for (const op of ops) {
    if (op.kind === 'cas' && op.succeeded === false && op.observed !== undefined && op.observed === op.expected) {
      const seen = formatValue(op.observed);
      return { get: op, reason: `it failed, yet the value it saw, ${seen}, is the one it expected`, involved: [] };
    }
  }
  const overwrites = new OverwriteIndex(ops.filter((op) => isWrite(op) && op.status === 'ok'));
  const writersByValue = writersOfEachValue(ops, initial);
  const reads = ops
    .flatMap((op) => {
      const value = valueRead(op);
      return value === undefined ? [] : [{ op, value }];
    })
    .sort((a, b) => (a.op.complete as number) - (b.op.complete as number) || a.op.invoke - b.op.invoke);
  for (const { op, value } of reads) {
    const impossible = explainImpossibleRead(op, value, writersByValue.get(value), overwrites);
    if (impossible !== null) return impossible;
  }
  return null;
}

/** The one value an answered operation saw at its linearization point, or undefined when it saw none. */
function valueRead(op: Operation): string | null | undefined {
  if (op.status !== 'ok') return undefined;
  if (op.kind === 'get') return op.value;
  if (op.kind !== 'cas') return undefined;
  return op.succeeded === true ? (op.expected ?? null) : op.observed;
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
  read: string | null,
  writers: WriterTimeline | undefined,
  overwrites: OverwriteIndex,
): ImpossibleRead | null {
  const getComplete = get.complete as number;
  const value = formatValue(read);
  const it = get.kind === 'get' ? 'the get' : 'the cas';
  if (writers === undefined) {
    return { get, reason: `no operation ever wrote ${value} to ${get.key}`, involved: [] };
  }
  const startedBefore = writers.countInvokedBy(getComplete);
  if (startedBefore === 0) {
    const first = writers.at(0).op as Operation; // not the initial value, which starts at -∞
    return {
      get,
      reason: `every write of ${value} starts after ${it} completed, the first one being ${formatOp(first)}`,
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
      ? `the initial value ${value} is overwritten by ${formatOp(overwrite)}`
      : `every write of ${value} that starts before ${it} completes ` +
        `(${listOps(candidates)}) is overwritten by ${formatOp(overwrite)}`;
  return {
    get,
    reason: `${whatWasOverwritten}, which completes before ${it} is invoked`,
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
    // 1 <= i < writers.length = latestCompleting.length.
    for (let i = 1; i < this.writers.length; i++) {
      const best = this.latestCompleting[i - 1]!;
      this.latestCompleting[i] = this.at(i).complete > this.at(best).complete ? i : best;
    }
  }

  at(i: number): Writer {
    const writer = this.writers[i];
    if (writer === undefined) throw new Error(`internal error: writer ${i} of ${this.writers.length}`);
    return writer;
  }

  /** How many writers are invoked at or before `time` (they are a prefix). */
  countInvokedBy(time: number): number {
    return upperBound(this.invokes, time);
  }

  latestCompletingAmongFirst(count: number): Writer {
    const best = this.latestCompleting[count - 1];
    if (best === undefined) throw new Error(`internal error: the first ${count} of ${this.writers.length} writers`);
    return this.at(best);
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
    // 0 <= i < n, i + 1 < n where read, and every entry stored is such an i.
    for (let i = n - 1; i >= 0; i--) {
      const later = i + 1 < n ? this.earliestCompleting[i + 1]! : i;
      this.earliestCompleting[i] = this.completeOf(i) <= this.completeOf(later) ? i : later;
    }
  }

  earliestCompletingInvokedAfter(time: number): Operation | null {
    const first = upperBound(this.invokes, time);
    if (first === this.writes.length) return null;
    // first < n, past the check above, and earliestCompleting holds indices of writes (< n).
    return this.writes[this.earliestCompleting[first]!]!;
  }

  private completeOf(i: number): number {
    // Called by the constructor only, with i < writes.length.
    return this.writes[i]!.complete as number;
  }
}

/** The number of elements of the sorted `values` that are <= `x`. */
function upperBound(values: Float64Array, x: number): number {
  let lo = 0;
  let hi = values.length;
  // 0 <= lo <= mid < hi <= values.length.
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (values[mid]! <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
