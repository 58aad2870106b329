// The cluster's members as the client API shows them (GET /members, /status, join-info), and where a
// member's client port is: the membership the state machine keeps (it follows every change) before
// the cluster config (which only names the first members).
import type { Member, Membership } from '../storage/members.js';

/** A member as the API answers it: exactly these fields, in this order. */
export interface MemberView {
  readonly id: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly role: Member['role'];
}

export function memberViews(membership: Membership): MemberView[] {
  return membership.members.map((m) => ({ id: m.id, clientUrl: m.clientUrl, peerUrl: m.peerUrl, role: m.role }));
}

/**
 * The client URL of node `id`: the membership's, else `fallback`'s (the cluster config). A node
 * added at run time is only in the membership; a store that keeps none lists members without URLs.
 */
export function memberClientUrl(
  membership: Membership,
  id: string,
  fallback: (id: string) => string | undefined,
): string | undefined {
  const url = membership.members.find((m) => m.id === id)?.clientUrl;
  return url !== undefined && url !== '' ? url : fallback(id);
}
