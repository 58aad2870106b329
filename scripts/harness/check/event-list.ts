// The search's event list: the calls and returns of one register's operations, in time order.
import type { RegisterProblem } from './register-problem.js';

/**
 * The call and return events of one register's operations in time order, as a doubly linked list with
 * head and tail sentinels. Removing an operation (both its events) is O(1), and removals are undone in
 * LIFO order by relinking the removed nodes, which keep their own links (dancing links).
 *
 * Order: by time; at equal times calls come before returns, so that operations touching at one instant
 * are concurrent (real-time order is strict).
 */
export class EventList {
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
    // Event e < n is the call of operation e, event n + i the return of operation i. Events are < 2n,
    // ops and returnAt have n entries and nodeOfEvent 2n, so this constructor's lookups are in bounds.
    const timeOf = (e: number): number => (e < n ? problem.ops[e]!.invoke : problem.returnAt[e - n]!);
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
      const callNode = nodeOfEvent[i]!;
      const returnNode = nodeOfEvent[n + i]!;
      this.partnerOf[callNode] = returnNode;
      this.partnerOf[returnNode] = callNode;
    }
    for (let node = 0; node <= this.tail; node++) {
      this.nextOf[node] = node + 1;
      this.prevOf[node] = node - 1;
    }
  }

  // The methods below take and return only nodes of this list (0..tail): a search holds no node but
  // those it got from first(), next() and partner(). Every per-node array has tail + 1 entries, so
  // their reads are in bounds: that is what the `!`s below rely on.

  first(): number {
    return this.nextOf[0]!;
  }

  next(node: number): number {
    const next = this.nextOf[node]!;
    // The search never walks past the last return of a required operation, so it never reaches the
    // tail; reaching it would mean a broken invariant, not a verdict.
    if (next === this.tail) throw new Error('internal error: the search ran off the end of the events');
    return next;
  }

  isCall(node: number): boolean {
    return this.call[node] === 1;
  }

  opOf(node: number): number {
    return this.op[node]!;
  }

  partner(node: number): number {
    return this.partnerOf[node]!;
  }

  /** Removes the operation of call node `call`: first its call, then its return. */
  lift(call: number): void {
    this.unlink(call);
    this.unlink(this.partnerOf[call]!);
  }

  /** Undoes lift(call); valid only while lifts are undone in reverse order. */
  unlift(call: number): void {
    this.relink(this.partnerOf[call]!);
    this.relink(call);
  }

  private unlink(node: number): void {
    const prev = this.prevOf[node]!;
    const next = this.nextOf[node]!;
    this.nextOf[prev] = next;
    this.prevOf[next] = prev;
  }

  private relink(node: number): void {
    this.nextOf[this.prevOf[node]!] = node;
    this.prevOf[this.nextOf[node]!] = node;
  }
}
