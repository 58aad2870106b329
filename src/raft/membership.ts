// Membership changes as pure functions of a configuration: which changes make sense, and what a
// change leaves. The core allows one change at a time and applies each when its entry is applied,
// so every node walks through the same configurations at the same log indices. Two configurations
// one change apart (a voter added or removed; a learner added, promoted or removed) have majorities
// that intersect, which is what makes single-server changes safe (Raft thesis 4.1).
import type { ConfChange, ConfState, NodeId } from './types.js';

/** Why `change` cannot be made to `conf` (a sentence), or null when it can. */
export function invalidChange(change: ConfChange, conf: ConfState): string | null {
  const isVoter = conf.voters.includes(change.node);
  const isLearner = conf.learners.includes(change.node);
  switch (change.type) {
    case 'addLearner':
      return isVoter || isLearner ? `${change.node} is already a member` : null;
    case 'promote':
      if (isVoter) return `${change.node} is already a voter`;
      return isLearner ? null : `${change.node} is not a learner of the cluster (add it first)`;
    case 'remove':
      if (!isVoter && !isLearner) return `${change.node} is not a member`;
      return isVoter && conf.voters.length === 1
        ? `${change.node} is the only voter: removing it would leave no one to decide`
        : null;
  }
}

/** The configuration `change` leaves (the caller checked it with invalidChange). */
export function changedConf(conf: ConfState, change: ConfChange): ConfState {
  const without = (ids: readonly NodeId[]): NodeId[] => ids.filter((id) => id !== change.node);
  switch (change.type) {
    case 'addLearner':
      return { voters: conf.voters.slice(), learners: [...conf.learners, change.node] };
    case 'promote':
      return { voters: [...conf.voters, change.node], learners: without(conf.learners) };
    case 'remove':
      return { voters: without(conf.voters), learners: without(conf.learners) };
  }
}
