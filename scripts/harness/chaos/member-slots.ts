// Places in the cluster, for a run whose membership changes. The fault schedule is drawn before the
// run (schedule.ts) and names the first nodes (n1..nN); once n1 has been replaced by n4, "n1" in a
// later plan means n4: the node in n1's place. A voter added by a grow holds an extra place, which a
// shrink gives back (if the shrink removes a node in a first place, the extra node moves into it).
// A place whose node was removed while its replacement could not be promoted is vacant until a
// later membership turn fills it; a plan that names it hits the next occupied place instead.
//
// Invariant: every node holds at most one place, and the first places are filled before extra ones.

export class MemberSlots {
  /** Index i: the node in the place of the i-th first node, or null while vacant. */
  private readonly places: (string | null)[];
  private readonly extras: string[] = [];

  constructor(private readonly firstIds: readonly string[]) {
    this.places = [...firstIds];
  }

  /** The node a plan's `planned` id (one of the first ids) means now; other ids are returned as they are. */
  resolve(planned: string): string {
    const at = this.firstIds.indexOf(planned);
    if (at < 0) return planned;
    for (let step = 0; step < this.places.length; step++) {
      const node = this.places[(at + step) % this.places.length];
      if (node !== null && node !== undefined) return node;
    }
    return this.extras[0] ?? planned;
  }

  /** The voters the run means to have: one per place, vacant or not. */
  get size(): number {
    return this.places.length + this.extras.length;
  }

  get vacancies(): number {
    return this.places.filter((node) => node === null).length;
  }

  /** Voters added by grows and not yet given back. */
  get extraCount(): number {
    return this.extras.length;
  }

  /** Whether `node` holds a place (first or extra). */
  holds(node: string): boolean {
    return this.places.includes(node) || this.extras.includes(node);
  }

  /** The first place of `node`, e.g. 'n1' for the node that replaced n1; null for an extra or unknown node. */
  placeOf(node: string): string | null {
    const at = this.places.indexOf(node);
    return at < 0 ? null : this.firstIds[at]!;
  }

  /** `node` became a voter: it fills the first vacant place, or holds an extra one. */
  filled(node: string): void {
    if (this.holds(node)) return;
    const vacant = this.places.indexOf(null);
    if (vacant >= 0) this.places[vacant] = node;
    else this.extras.push(node);
  }

  /**
   * `node` is no voter any more. `shrink`: its place goes away with it (an extra node moves into a
   * first place it leaves); otherwise the place stays, vacant until filled.
   */
  vacated(node: string, shrink: boolean): void {
    const extra = this.extras.indexOf(node);
    if (extra >= 0) {
      this.extras.splice(extra, 1);
      return;
    }
    const at = this.places.indexOf(node);
    if (at < 0) return;
    this.places[at] = shrink && this.extras.length > 0 ? this.extras.shift()! : null;
  }
}
