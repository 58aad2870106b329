// The nodes the clients talk to, kept current while the membership changes: a new node becomes a
// target once it has been added (a learner serves and forwards like a follower), a removed one
// stops being a target once its removal is applied. The workload picks from `ids` at each
// operation, and the clients connect to `urls` on first use, so both are shared and changed in place.
// (An operation already sent to a node being removed may fail or end unknown: the checker allows it.)

export class ClientTargets {
  /** Node ids, in the order they became targets. Shared: changed in place. */
  readonly ids: string[];
  /** Client URL by node id, of every node that ever was a target (a late answer may still need it). */
  readonly urls: Map<string, string>;

  constructor(initial: ReadonlyMap<string, string>) {
    this.ids = [...initial.keys()];
    this.urls = new Map(initial);
  }

  add(id: string, clientUrl: string): void {
    this.urls.set(id, clientUrl);
    if (!this.ids.includes(id)) this.ids.push(id);
  }

  remove(id: string): void {
    const at = this.ids.indexOf(id);
    if (at >= 0) this.ids.splice(at, 1);
  }
}
