// The fault-injection switch: lets chaos tests cut links between nodes without root
// (no iptables). It only exists on a node started with fault injection enabled; the peer server
// then exposes it as PUT/GET /raft/faults and the client and server consult it on every flush and
// every request.
//
// Semantics, chosen so that a cut link exercises the same code paths as a real partition does:
// - dropTo: the client treats each flush to a listed peer as a failed request: the queued messages
//   are dropped (counted in `faultDropped`) and the peer is reported unreachable, exactly what
//   happens when a request to a partitioned peer is refused or times out, minus the wait.
// - dropFrom: the server answers 503 to a listed peer's requests, without reading or delivering the
//   messages. The sender therefore sees a failed request (onUnreachable, queue dropped, rate-limited
//   log) as it would across a real partition. A silent 204 would instead look to the sender like a
//   healthy link that loses everything, a failure mode TCP does not produce.
// A partition {n1} | {n2, n3} is dropTo+dropFrom {n2, n3} on n1 (or the mirror on n2 and n3);
// a one-way cut is just one of the two.

import type { NodeId } from '../raft/types.js';

export interface FaultState {
  readonly dropTo: readonly NodeId[];
  readonly dropFrom: readonly NodeId[];
}

export class FaultSwitch {
  readonly dropTo = new Set<NodeId>();
  readonly dropFrom = new Set<NodeId>();

  constructor(initial?: Partial<FaultState>) {
    if (initial !== undefined) this.set(initial);
  }

  /** Replaces both sets (PUT semantics: an absent list means "no faults of that kind"). */
  set(state: Partial<FaultState>): void {
    this.dropTo.clear();
    this.dropFrom.clear();
    for (const id of state.dropTo ?? []) this.dropTo.add(id);
    for (const id of state.dropFrom ?? []) this.dropFrom.add(id);
  }

  clear(): void {
    this.set({});
  }

  snapshot(): FaultState {
    return { dropTo: [...this.dropTo].sort(), dropFrom: [...this.dropFrom].sort() };
  }
}
