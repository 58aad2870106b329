// The cluster's membership as the state machine keeps it: every member with its addresses and role,
// and the ids removed so far (an id is never used twice). It changes only by applying a ConfChange
// entry, at the same log index on every node, and is written in the same batch as that apply; it
// travels in snapshots. So a restart never depends on cluster.config.json being current: that file
// only bootstraps the first members.
//
// A ConfChange entry's data is a MemberChange: the core's ConfChange (type and node) plus what the
// driver needs besides (the new member's addresses).

import { Packr } from 'msgpackr';
import { changedConf, invalidChange } from '../raft/membership.js';
import type { ConfChange, ConfState, NodeId } from '../raft/types.js';
import { CorruptDataError } from './errors.js';

export type Role = 'voter' | 'learner';

export interface Member {
  readonly id: NodeId;
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly role: Role;
}

export interface Membership {
  readonly members: readonly Member[];
  /** Ids removed from the cluster: refused if added again, and a data dir of one refuses to start. */
  readonly removed: readonly NodeId[];
}

export type MemberChange =
  | { readonly type: 'addLearner'; readonly node: NodeId; readonly clientUrl: string; readonly peerUrl: string }
  | { readonly type: 'promote'; readonly node: NodeId }
  | { readonly type: 'remove'; readonly node: NodeId };

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

export function confStateOf(membership: Membership): ConfState {
  return {
    voters: membership.members.filter((m) => m.role === 'voter').map((m) => m.id),
    learners: membership.members.filter((m) => m.role === 'learner').map((m) => m.id),
  };
}

/** The core's view of a change (what it checks and applies). */
export function confChangeOf(change: MemberChange): ConfChange {
  return { type: change.type, node: change.node };
}

/**
 * Why `change` cannot be made to `membership`, or null. The core's rules (raft/membership.ts), and
 * the ones only addresses and history can tell: an id removed before, an address in use.
 */
export function invalidMemberChange(change: MemberChange, membership: Membership): string | null {
  if (change.type === 'addLearner') {
    if (membership.removed.includes(change.node)) {
      return `${change.node} was removed from this cluster: a member's id is never used again; join with a new id`;
    }
    for (const m of membership.members) {
      if (
        m.clientUrl === change.clientUrl ||
        m.peerUrl === change.peerUrl ||
        m.clientUrl === change.peerUrl ||
        m.peerUrl === change.clientUrl
      ) {
        return `an address of ${change.node} is already ${m.id}'s`;
      }
    }
  }
  return invalidChange(confChangeOf(change), confStateOf(membership));
}

/** The membership `change` leaves (the caller checked it). */
export function changedMembership(membership: Membership, change: MemberChange): Membership {
  const conf = changedConf(confStateOf(membership), confChangeOf(change));
  const known = new Map(membership.members.map((m) => [m.id, m]));
  if (change.type === 'addLearner') {
    known.set(change.node, { id: change.node, clientUrl: change.clientUrl, peerUrl: change.peerUrl, role: 'learner' });
  }
  const members: Member[] = [];
  for (const id of [...conf.voters, ...conf.learners]) {
    const m = known.get(id);
    if (m !== undefined) members.push({ ...m, role: conf.voters.includes(id) ? 'voter' : 'learner' });
  }
  const removed = change.type === 'remove' ? [...membership.removed, change.node] : membership.removed.slice();
  return { members, removed };
}

export function encodeMemberChange(change: MemberChange): Uint8Array {
  return packr.pack(change);
}

/** Decodes a ConfChange entry's data; anything malformed is corrupt data (a leader only writes valid ones). */
export function decodeMemberChange(data: Uint8Array, where: string): MemberChange {
  let value: unknown;
  try {
    value = packr.unpack(data);
  } catch {
    throw new CorruptDataError(`${where} holds no valid membership change`);
  }
  const f = value as Record<string, unknown> | null;
  const node = f?.['node'];
  if (typeof f !== 'object' || f === null || typeof node !== 'string' || node === '') {
    throw new CorruptDataError(`${where} holds no valid membership change`);
  }
  switch (f['type']) {
    case 'promote':
    case 'remove':
      return { type: f['type'], node };
    case 'addLearner': {
      const clientUrl = f['clientUrl'];
      const peerUrl = f['peerUrl'];
      if (typeof clientUrl === 'string' && typeof peerUrl === 'string')
        return { type: 'addLearner', node, clientUrl, peerUrl };
      break;
    }
  }
  throw new CorruptDataError(`${where} holds no valid membership change`);
}

export function encodeMembership(membership: Membership): Uint8Array {
  return packr.pack({ members: membership.members.map((m) => ({ ...m })), removed: [...membership.removed] });
}

export function decodeMembership(bytes: Uint8Array, where: string): Membership {
  let value: unknown;
  try {
    value = packr.unpack(bytes);
  } catch {
    throw new CorruptDataError(`${where} is not a valid membership record`);
  }
  return parseMembership(value, where);
}

/** A membership from a decoded value (a record, a snapshot header): strict, CorruptDataError otherwise. */
export function parseMembership(value: unknown, where: string): Membership {
  const f = value as { members?: unknown; removed?: unknown } | null;
  if (typeof f !== 'object' || f === null || !Array.isArray(f.members) || !Array.isArray(f.removed)) {
    throw new CorruptDataError(`${where} is not a valid membership record`);
  }
  const members = f.members.map((m: unknown): Member => {
    const r = m as Record<string, unknown> | null;
    const role = r?.['role'];
    if (
      typeof r !== 'object' ||
      r === null ||
      typeof r['id'] !== 'string' ||
      typeof r['clientUrl'] !== 'string' ||
      typeof r['peerUrl'] !== 'string' ||
      (role !== 'voter' && role !== 'learner')
    ) {
      throw new CorruptDataError(`${where} holds an invalid member`);
    }
    return { id: r['id'], clientUrl: r['clientUrl'], peerUrl: r['peerUrl'], role };
  });
  if (!f.removed.every((id: unknown) => typeof id === 'string'))
    throw new CorruptDataError(`${where} holds an invalid removed id`);
  return { members, removed: f.removed as string[] };
}
