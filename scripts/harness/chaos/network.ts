// Link faults between nodes, as a set of directed cuts: {from: 'n1', to: 'n2'} means what n1 sends
// to n2 is lost. A partition is both directions of every link across it. Two implementations:
//  - fault-switch (default, no privileges): each node's PUT /raft/faults switch (src/transport/faults.ts)
//    drops the Raft messages of a cut link at both ends. Client-port traffic between nodes (a
//    follower forwarding a write to the leader) is not cut.
//  - netns (root): every node in its own network namespace; iptables in the receiver's namespace
//    drops the sender's packets to its peer and client ports, so connections hang as across a real
//    partition (see netns.ts).

export interface DirectedCut {
  readonly from: string;
  readonly to: string;
}

export interface NetworkFaults {
  readonly name: 'fault-switch' | 'netns';
  /** Replaces the cut links by `cuts` (an empty list heals everything). */
  apply(cuts: readonly DirectedCut[]): Promise<void>;
}

/** Both directions of every link between `side` and the other nodes. */
export function isolate(side: readonly string[], all: readonly string[]): DirectedCut[] {
  const inside = new Set(side);
  const cuts: DirectedCut[] = [];
  for (const a of side) {
    for (const b of all) {
      if (inside.has(b)) continue;
      cuts.push({ from: a, to: b }, { from: b, to: a });
    }
  }
  return cuts;
}

/** What each node's fault switch must drop to realize `cuts`: dropTo at the sender, dropFrom at the receiver. */
export function switchStates(
  cuts: readonly DirectedCut[],
  nodes: readonly string[],
): Map<string, { dropTo: string[]; dropFrom: string[] }> {
  const states = new Map(nodes.map((id) => [id, { dropTo: [] as string[], dropFrom: [] as string[] }]));
  for (const cut of cuts) {
    states.get(cut.from)?.dropTo.push(cut.to);
    states.get(cut.to)?.dropFrom.push(cut.from);
  }
  for (const state of states.values()) {
    state.dropTo = [...new Set(state.dropTo)].sort();
    state.dropFrom = [...new Set(state.dropFrom)].sort();
  }
  return states;
}

export interface SwitchTarget {
  readonly id: string;
  readonly peerUrl: string;
}

/**
 * The fault-switch implementation: one PUT /raft/faults per node, retried until a deadline. `nodes`
 * is asked at each change: the members of the moment (a node that joined needs its switch set, a
 * removed one is gone).
 */
export class FaultSwitchNetwork implements NetworkFaults {
  readonly name = 'fault-switch' as const;

  constructor(
    private readonly nodes: () => readonly SwitchTarget[],
    private readonly auth: { readonly token: string; readonly clusterId: string },
    private readonly deadlineMs = 5000,
  ) {}

  async apply(cuts: readonly DirectedCut[]): Promise<void> {
    const nodes = this.nodes();
    const states = switchStates(
      cuts,
      nodes.map((n) => n.id),
    );
    const failures: string[] = [];
    await Promise.all(
      nodes.map(async (node) => {
        const state = states.get(node.id) ?? { dropTo: [], dropFrom: [] };
        const error = await this.put(node, state);
        if (error !== null) failures.push(`${node.id}: ${error}`);
      }),
    );
    if (failures.length > 0) throw new Error(`could not set the fault switch on ${failures.join('; ')}`);
  }

  /** Sets one node's switch; returns why it failed (after retries), or null. */
  private async put(node: SwitchTarget, state: { dropTo: string[]; dropFrom: string[] }): Promise<string | null> {
    const deadline = Date.now() + this.deadlineMs;
    let last = 'no attempt';
    for (let attempt = 0; Date.now() < deadline; attempt++) {
      try {
        const res = await fetch(`${node.peerUrl}/raft/faults`, {
          method: 'PUT',
          headers: {
            authorization: `Bearer ${this.auth.token}`,
            'x-raftkv-cluster': this.auth.clusterId,
            'content-type': 'application/json',
          },
          body: JSON.stringify(state),
          signal: AbortSignal.timeout(Math.min(1000, Math.max(1, deadline - Date.now()))),
        });
        const text = await res.text();
        if (res.status === 200) return null;
        last = `${res.status} ${text.slice(0, 200)}`;
        // A node names the ids it does not know as peers (400 bad-faults): one that has not applied
        // a membership change yet learns it soon, so that is retried until the deadline. Any other
        // 4xx is our bug (bad body, token) or fault injection being off: retrying cannot help.
        if (res.status >= 400 && res.status < 500 && !(res.status === 400 && text.includes('"bad-faults"')))
          return last;
      } catch (error) {
        last = (error as Error).message;
      }
      await new Promise((r) => setTimeout(r, Math.min(200, 25 * 2 ** attempt)));
    }
    return last;
  }
}
