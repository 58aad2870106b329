// The faults a chaos run can inject, their names on the command line, and the group aliases.
// One fault is active at a time; each is healed after its duration (see nemesis.ts). Membership
// changes (membership-nemesis.ts) take turns with the faults, one at a time too.

/** The faults proper: `all`, and the default of a run. */
export const FAULT_KINDS = [
  'kill-random', // kill -9 a random node, restart it when healed
  'kill-leader', // kill -9 the current leader, restart it when healed
  'kill-all', // kill -9 every node at once, restart them all when healed
  'pause-random', // SIGSTOP a random node, SIGCONT when healed
  'pause-leader', // SIGSTOP the current leader, SIGCONT when healed
  'partition-leader', // cut the leader off from every other node, both ways
  'partition-split', // split the nodes into a random minority and majority, both ways
  'partition-link', // cut one link between two nodes, both ways; each still reaches the others (non-transitive)
  'partition-oneway', // drop the Raft messages one node sends to another; the other direction works
] as const;

/**
 * Every kind, in canonical order: the faults, then `membership` (replace a voter by a new node, or
 * grow by one and later shrink back). Not in `all`, so the schedules of `all` (and of every seed run
 * before it existed) stay as they were: ask for it with `--nemesis all,membership`. Last, so that
 * adding it changed no fault's position in the order schedules draw kinds from.
 */
export const NEMESIS_KINDS = [...FAULT_KINDS, 'membership'] as const;

export type NemesisKind = (typeof NEMESIS_KINDS)[number];

/** Aliases for families of kinds: `--nemesis kill,pause` means every kill and every pause. */
export const NEMESIS_GROUPS: Readonly<Record<string, readonly NemesisKind[]>> = {
  all: FAULT_KINDS,
  kill: ['kill-random', 'kill-leader', 'kill-all'],
  pause: ['pause-random', 'pause-leader'],
  partition: ['partition-leader', 'partition-split', 'partition-link', 'partition-oneway'],
  none: [],
};

const KIND_SET: ReadonlySet<string> = new Set(NEMESIS_KINDS);

export function isNemesisKind(name: string): name is NemesisKind {
  return KIND_SET.has(name);
}

/**
 * Parses a comma-separated list of kinds and group aliases into the kinds it names, in the
 * canonical order of NEMESIS_KINDS (so the schedule of a seed does not depend on how the list was
 * spelled). Throws with the known names on anything unknown.
 */
export function parseNemesisList(spec: string): NemesisKind[] {
  const chosen = new Set<NemesisKind>();
  for (const raw of spec.split(',')) {
    const name = raw.trim();
    if (name === '') continue;
    const group = NEMESIS_GROUPS[name];
    if (group !== undefined) for (const kind of group) chosen.add(kind);
    else if (isNemesisKind(name)) chosen.add(name);
    else {
      throw new Error(
        `unknown nemesis "${name}"; kinds: ${NEMESIS_KINDS.join(', ')}; groups: ${Object.keys(NEMESIS_GROUPS).join(', ')}`,
      );
    }
  }
  return NEMESIS_KINDS.filter((kind) => chosen.has(kind));
}

/** Kinds that need the cluster's peer links cut (the fault switch or netns). */
export function isPartition(kind: NemesisKind): boolean {
  return kind.startsWith('partition-');
}
