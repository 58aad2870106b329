// The nodes the chaos clients leave alone for a while, because they did not answer at all.
//
// Why: every operation goes to a random node, and a paused node (or one behind a partition that
// drops packets) answers nothing, so each request to it waits out the whole request timeout. With
// random choice, every client soon sits in such a wait, and the run's throughput fell to a few
// operations a second for as long as any node was paused. A real client's balancer does what this
// does: an endpoint that did not answer is skipped by every client for a short while, then one
// request probes it again.
//
// Rules (shared by all the workers of a run, as a client library's endpoint list is):
//  - An attempt that got no answer (a timeout, a refused or reset connection: an outcome of
//    outcome.ts `classifyError`, marked `noAnswer`) makes its node quiet for `quietMs` from when the
//    attempt ended.
//  - Any answer, whatever its status, makes the node responsive again at once.
//  - `choose` picks among the nodes that are not quiet. When a quiet period is over, the first
//    worker to choose the node probes it: the node stays skipped by the others until an attempt
//    at it ends (and either clears it or makes it quiet again), so usually one worker at a time
//    waits on a node that may still not answer. (An attempt sent before the node went quiet can
//    end while the probe is out and let a second worker in; that costs one more wait, nothing else.)
//  - When every candidate is quiet or being probed, `choose` picks among all of them: a run never
//    stops sending because of this, and a cluster that answers nowhere is still tried.
//
// What the checker sees does not change in kind: an attempt on a node that does not answer ends as
// it did (unknown, or failed when nothing was sent); there are only fewer of them. A live node
// that cannot serve (a minority side, a deposed leader) still answers, a 503 or 504 before the
// client's deadline (the nodes' own request timeout is three quarters of it, run-chaos.ts), so it
// is not skipped: only a node that answers nothing is.
import type { Outcome } from './outcome.js';

/** How long a node that did not answer is skipped, ms: about one election timeout of the chaos cluster. */
export const DEFAULT_QUIET_MS = 1000;

/**
 * One of `ids` (not empty) for an attempt, drawn with `randomInt` (uniform in [0, n)): around the
 * unresponsive nodes when the run tracks them, else uniformly (the same draw as SeededRandom.pick).
 */
export function chooseNode(
  ids: readonly string[],
  randomInt: (n: number) => number,
  unresponsive: UnresponsiveNodes | undefined,
): string {
  if (unresponsive !== undefined) return unresponsive.choose(ids, randomInt);
  const node = ids[randomInt(ids.length)];
  if (node === undefined) throw new RangeError('chooseNode: no node to choose from');
  return node;
}

export class UnresponsiveNodes {
  /** Quiet nodes: skipped until this time (ms on `now`'s clock). */
  private readonly quietUntil = new Map<string, number>();
  /** Nodes whose quiet period ended and that a worker is probing now. */
  private readonly probing = new Set<string>();

  constructor(
    private readonly now: () => number,
    private readonly quietMs = DEFAULT_QUIET_MS,
  ) {}

  /** Notes how an attempt at `node` ended. */
  observe(node: string, outcome: Outcome): void {
    this.probing.delete(node);
    if (outcome.noAnswer === true) this.quietUntil.set(node, this.now() + this.quietMs);
    else this.quietUntil.delete(node);
  }

  /** An attempt at `node` ended without an outcome (its sender threw): it is no longer a probe. */
  release(node: string): void {
    this.probing.delete(node);
  }

  /** Whether `node` is skipped now. */
  isSkipped(node: string): boolean {
    if (this.probing.has(node)) return true;
    const until = this.quietUntil.get(node);
    return until !== undefined && until > this.now();
  }

  /**
   * One of `ids` (not empty), drawn with `randomInt` (uniform in [0, n)) among those not skipped,
   * or among all of them when every one is. Choosing a node whose quiet period is over makes this
   * caller its probe.
   */
  choose(ids: readonly string[], randomInt: (n: number) => number): string {
    if (ids.length === 0) throw new RangeError('UnresponsiveNodes.choose: no node to choose from');
    const open = this.quietUntil.size + this.probing.size === 0 ? ids : ids.filter((id) => !this.isSkipped(id));
    const from = open.length > 0 ? open : ids;
    const node = from[randomInt(from.length)]!;
    if (this.quietUntil.has(node)) {
      // Quiet until now, or chosen anyway because every node is skipped: this attempt is the probe.
      this.quietUntil.delete(node);
      this.probing.add(node);
    }
    return node;
  }
}
