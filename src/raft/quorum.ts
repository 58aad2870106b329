// Majority math for a single voter set (joint configurations would combine two of these).

import type { NodeId } from './types.js';

export function quorumSize(voters: number): number {
  return Math.floor(voters / 2) + 1;
}

/**
 * The largest index that a majority of voters have reached: sort the voters' indices in descending
 * order and take the quorum-th. Raft commits (subject to the current-term rule) up to this index.
 */
export function quorumIndex(indices: readonly number[]): number {
  const sorted = indices.slice().sort((a, b) => b - a);
  const value = sorted[quorumSize(indices.length) - 1];
  return value ?? 0;
}

export type VoteResult = 'won' | 'lost' | 'pending';

/** The outcome of an election given the votes received so far (true = granted). */
export function voteResult(voters: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  let granted = 0;
  let rejected = 0;
  for (const id of voters) {
    const vote = votes.get(id);
    if (vote === true) granted++;
    else if (vote === false) rejected++;
  }
  const needed = quorumSize(voters.length);
  if (granted >= needed) return 'won';
  if (rejected >= needed) return 'lost';
  return 'pending';
}
