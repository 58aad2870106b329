// The node's outbound side: one PeerClient per peer, messages routed by their `to`.

import type { Logger } from 'pino';
import type { Message, NodeId } from '../raft/types.js';
import { LogLimiter } from './log-limiter.js';
import { PeerClient, type PeerClientOptions, type PeerStats } from './peer-client.js';

/** A PeerClient's options, less the per-peer ones, plus every peer's base URL. */
export interface PeerTransportOptions extends Omit<PeerClientOptions, 'peerId' | 'baseUrl'> {
  /** Every peer's base URL, e.g. http://127.0.0.1:7102. An entry for selfId is ignored. */
  readonly peers: ReadonlyMap<NodeId, string>;
}

export class PeerTransport {
  private readonly clients = new Map<NodeId, PeerClient>();
  private readonly log: Logger;
  private readonly misrouteLog = new LogLimiter(10_000);
  private misrouted = 0;

  constructor(private readonly options: PeerTransportOptions) {
    this.log = options.logger.child({ component: 'peer-transport', node: options.selfId });
    this.setPeers(options.peers);
  }

  /**
   * The peers now (the membership changed): a client for each new one, the clients of those gone
   * closed (their queues dropped), a client whose address changed replaced.
   */
  setPeers(peers: ReadonlyMap<NodeId, string>): void {
    for (const [peerId, client] of this.clients) {
      if (peers.get(peerId) !== client.baseUrl) {
        this.clients.delete(peerId);
        void client.close();
      }
    }
    for (const [peerId, baseUrl] of peers) {
      if (peerId === this.options.selfId || this.clients.has(peerId)) continue;
      this.clients.set(peerId, new PeerClient({ ...this.options, peerId, baseUrl }));
    }
  }

  /** Queues each message for its `to`; never blocks. Messages for unknown nodes are dropped and logged. */
  send(messages: readonly Message[]): void {
    for (const message of messages) {
      const client = this.clients.get(message.to);
      if (client === undefined) {
        this.misrouted++;
        if (this.misrouteLog.admit(message.to) !== null) {
          this.log.error({ to: message.to, type: message.type }, 'dropped a message for a node that is not a peer');
        }
        continue;
      }
      client.enqueue(message);
    }
  }

  /** Per-peer counters, keyed by peer id (a plain object, ready for JSON). */
  stats(): Record<NodeId, PeerStats> {
    const result: Record<NodeId, PeerStats> = {};
    for (const [peerId, client] of this.clients) result[peerId] = client.stats();
    return result;
  }

  /** Messages addressed to no peer (a driver bug if ever non-zero). */
  misroutedMessages(): number {
    return this.misrouted;
  }

  /** Destroys every pool and drops every queue. */
  async close(): Promise<void> {
    await Promise.all([...this.clients.values()].map((client) => client.close()));
  }
}
