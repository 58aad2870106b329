// The membership on /metrics: how many members of each role (every node), and how many entries the
// leader's log is ahead of each other member (the leader only: no other node knows). Set when
// /metrics is scraped, from the node's state at that moment, like NodeMetrics.observe.
import { Gauge, type Registry } from 'prom-client';
import type { Membership, Role } from '../storage/members.js';

const ROLES: readonly Role[] = ['voter', 'learner'];

export class MemberMetrics {
  private readonly members: Gauge;
  private readonly lag: Gauge;

  constructor(registry: Registry) {
    this.members = new Gauge({
      name: 'raftkv_members',
      help: 'members of the cluster in each role, as this node has applied the membership',
      labelNames: ['role'],
      registers: [registry],
    });
    this.lag = new Gauge({
      name: 'raftkv_member_lag_entries',
      help: "leader only: how many entries the leader's log is ahead of each other member (a learner may be promoted once this is small)",
      labelNames: ['member'],
      registers: [registry],
    });
  }

  /** `lagOf` answers null where the node tracks no progress (any node but the leader). */
  observe(membership: Membership, selfId: string, lagOf: (id: string) => number | null): void {
    for (const role of ROLES) this.members.set({ role }, membership.members.filter((m) => m.role === role).length);
    // Reset first: a member removed, or this node no longer the leader, must not keep its last value.
    this.lag.reset();
    for (const m of membership.members) {
      if (m.id === selfId) continue;
      const lag = lagOf(m.id);
      if (lag !== null) this.lag.set({ member: m.id }, lag);
    }
  }
}
