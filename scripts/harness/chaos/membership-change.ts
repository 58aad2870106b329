// What a membership turn did, step by step, as summary.json and the report keep it (attached to
// the turn's FaultRecord), and the counts the summary prints.

export type MembershipAction =
  /** Remove a voter, stop it, add a new node that joins and is promoted in its place. */
  | 'replace'
  /** Add a new node and promote it: one voter more. */
  | 'grow'
  /** Remove a voter and stop it: one voter less (after a grow). */
  | 'shrink'
  /** Add a new node in a place an earlier turn vacated (it removed a voter, then gave up). */
  | 'refill';

export type MembershipStepName =
  /** POST /leader/transfer: leadership handed away from the victim before its removal. */
  | 'transfer'
  /** DELETE /members/<id> applied. */
  | 'remove'
  /** The removed node's process stopped (SIGTERM). */
  | 'stop'
  /** POST /members applied: the new node is a learner. */
  | 'add'
  /** The new node's process started with --join. */
  | 'start'
  /** POST /members/<id>/promote applied: the new node is a voter. */
  | 'promote'
  /** After giving up: the learner that could not be promoted removed again (and stopped). */
  | 'undo';

export interface MembershipStep {
  readonly step: MembershipStepName;
  readonly node: string;
  /** Run-clock time the step completed (or was abandoned). */
  readonly at: number;
  readonly ok: boolean;
  /** E.g. "409 not_caught_up ×12" for a step that needed retries, or why it failed. */
  readonly detail?: string;
}

export interface MembershipChange {
  readonly action: MembershipAction;
  /** The voter removed (replace, shrink), or null. */
  readonly victim: string | null;
  /** Whether the victim led when the change began. */
  readonly victimLed: boolean;
  /** The new node (replace, grow, refill), or null. */
  readonly newcomer: string | null;
  readonly steps: MembershipStep[];
  /** 'done', or 'gave-up' with `gaveUp` saying at which step and why. */
  outcome: 'running' | 'done' | 'gave-up';
  gaveUp?: string;
  /** The voters once the change ended, as the cluster answered GET /members (null if it could not be read). */
  voters: readonly string[] | null;
}

export interface MembershipCounts {
  readonly replace: number;
  readonly grow: number;
  readonly shrink: number;
  readonly refill: number;
  readonly gaveUp: number;
}

/** Completed changes by action, and the turns that gave up. */
export function membershipCounts(changes: readonly MembershipChange[]): MembershipCounts {
  const done = (action: MembershipAction): number =>
    changes.filter((c) => c.action === action && c.outcome === 'done').length;
  return {
    replace: done('replace'),
    grow: done('grow'),
    shrink: done('shrink'),
    refill: done('refill'),
    gaveUp: changes.filter((c) => c.outcome === 'gave-up').length,
  };
}

/** "replace n1 -> n4", "grow +n4", "shrink -n2", "refill +n6"; "(gave up: ...)" after a turn that gave up. */
export function describeChange(change: MembershipChange): string {
  const victim = change.victim === null ? '?' : `${change.victim}${change.victimLed ? ' (leader)' : ''}`;
  const newcomer = change.newcomer ?? '?';
  const what =
    change.action === 'replace'
      ? `replace ${victim} -> ${newcomer}`
      : change.action === 'shrink'
        ? `shrink -${victim}`
        : `${change.action} +${newcomer}`;
  return change.outcome === 'gave-up' ? `${what} (gave up)` : what;
}
