// The node's outbound side: two PeerClients per peer (lanes), messages routed by their `to` and
// their type.
//
// Lanes: appends travel in their own lane, everything else (heartbeats, votes, ReadIndex rounds,
// acknowledgements, TimeoutNow) in another, each with its own connection and its one request in
// flight. An append request can be large (up to the in-flight byte window) and its answer waits
// for the peer's fsync (its acknowledgements ride in it); a heartbeat or a read's round queued
// behind it would wait as long, and on a starved machine a heartbeat late by an election timeout
// costs an election. Raft needs no order between the lanes (any message may be delayed or
// reordered); within the append lane the core's order is kept, so appends are never reordered
// (no spurious rejections and re-probes).

import type { Logger } from 'pino';
import type { Message, NodeId } from '../raft/types.js';
import { LogLimiter } from './log-limiter.js';
import { DEFAULT_MAX_QUEUE_BYTES, PeerClient, type PeerClientOptions, type PeerStats } from './peer-client.js';

/** A PeerClient's options, less the per-peer ones, plus every peer's base URL. */
export interface PeerTransportOptions extends Omit<PeerClientOptions, 'peerId' | 'baseUrl'> {
  /** Every peer's base URL, e.g. http://127.0.0.1:7102. An entry for selfId is ignored. */
  readonly peers: ReadonlyMap<NodeId, string>;
}

/**
 * The control lane's queue bound: its messages are small (a heartbeat, a vote, a read's round:
 * tens of bytes), so the append window's room (maxQueueBytes) would only double what a peer that
 * stalls may make us hold.
 */
export const CONTROL_LANE_MAX_QUEUE_BYTES = 1024 * 1024;

/** One peer's two lanes (see the top of this file). */
interface Lanes {
  readonly baseUrl: string;
  readonly appends: PeerClient;
  readonly control: PeerClient;
}

export class PeerTransport {
  private readonly clients = new Map<NodeId, Lanes>();
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
    for (const [peerId, lanes] of this.clients) {
      if (peers.get(peerId) !== lanes.baseUrl) {
        this.clients.delete(peerId);
        void lanes.appends.close();
        void lanes.control.close();
      }
    }
    for (const [peerId, baseUrl] of peers) {
      if (peerId === this.options.selfId || this.clients.has(peerId)) continue;
      this.clients.set(peerId, {
        baseUrl,
        appends: new PeerClient({ ...this.options, peerId, baseUrl }),
        control: new PeerClient({
          ...this.options,
          peerId,
          baseUrl,
          maxQueueBytes: Math.min(this.options.maxQueueBytes ?? DEFAULT_MAX_QUEUE_BYTES, CONTROL_LANE_MAX_QUEUE_BYTES),
        }),
      });
    }
  }

  /** Queues each message for its `to`; never blocks. Messages for unknown nodes are dropped and logged. */
  send(messages: readonly Message[]): void {
    for (const message of messages) {
      const lanes = this.clients.get(message.to);
      if (lanes === undefined) {
        this.misrouted++;
        if (this.misrouteLog.admit(message.to) !== null) {
          this.log.error({ to: message.to, type: message.type }, 'dropped a message for a node that is not a peer');
        }
        continue;
      }
      (message.type === 'app' ? lanes.appends : lanes.control).enqueue(message);
    }
  }

  /** Per-peer counters (both lanes together), keyed by peer id (a plain object, ready for JSON). */
  stats(): Record<NodeId, PeerStats> {
    const result: Record<NodeId, PeerStats> = {};
    for (const [peerId, lanes] of this.clients) result[peerId] = sumStats(lanes.appends.stats(), lanes.control.stats());
    return result;
  }

  /** Per-peer, per-lane counters, for the metrics. */
  laneStats(): Array<PeerStats & { readonly peer: NodeId; readonly lane: 'append' | 'control' }> {
    return [...this.clients].flatMap(([peer, lanes]) => [
      { ...lanes.appends.stats(), peer, lane: 'append' as const },
      { ...lanes.control.stats(), peer, lane: 'control' as const },
    ]);
  }

  /** Messages addressed to no peer (a driver bug if ever non-zero). */
  misroutedMessages(): number {
    return this.misrouted;
  }

  /** Destroys every pool and drops every queue. */
  async close(): Promise<void> {
    await Promise.all([...this.clients.values()].flatMap((lanes) => [lanes.appends.close(), lanes.control.close()]));
  }
}

function sumStats(a: PeerStats, b: PeerStats): PeerStats {
  const sum = { ...a };
  for (const key of Object.keys(sum) as Array<keyof PeerStats>) sum[key] = a[key] + b[key];
  return sum;
}
