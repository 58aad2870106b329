// Prometheus metrics of one node (prom-client): Raft state, the write pipeline, fsync latency,
// and Node's own default metrics (event-loop lag among them).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { RaftStatus } from '../raft/core.js';
import type { Role } from '../raft/types.js';

const ROLES: readonly Role[] = ['follower', 'pre-candidate', 'candidate', 'leader'];

/** One lane to one peer, as the peer transport counts it (src/transport/peer-client.ts PeerStats). */
export interface PeerLaneCounters {
  readonly peer: string;
  readonly lane: string;
  readonly sentRequests: number;
  readonly streamedRequests: number;
  readonly sentMessages: number;
  readonly replies: number;
  readonly dropped: number;
  readonly failures: number;
}

export class NodeMetrics {
  readonly registry = new Registry();
  private readonly role = new Gauge({
    name: 'raftkv_role',
    help: '1 for the role this node is in, 0 for the others',
    labelNames: ['role'],
    registers: [this.registry],
  });
  private readonly term = new Gauge({ name: 'raftkv_term', help: 'current Raft term', registers: [this.registry] });
  private readonly commit = new Gauge({
    name: 'raftkv_commit_index',
    help: 'highest log index known committed',
    registers: [this.registry],
  });
  private readonly applied = new Gauge({
    name: 'raftkv_applied_index',
    help: 'highest log index applied to the state machine',
    registers: [this.registry],
  });
  private readonly lastIndex = new Gauge({
    name: 'raftkv_last_index',
    help: 'last index of the log',
    registers: [this.registry],
  });
  readonly proposalsPending = new Gauge({
    name: 'raftkv_proposals_pending',
    help: 'client writes waiting to be proposed or applied',
    registers: [this.registry],
  });
  readonly readsPending = new Gauge({
    name: 'raftkv_reads_pending',
    help: 'linearizable reads waiting for their read index or apply',
    registers: [this.registry],
  });
  readonly fsyncSeconds = new Histogram({
    name: 'raftkv_fsync_seconds',
    help: 'latency of the synchronous write of each Ready (hard state and entries)',
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [this.registry],
  });
  readonly fsyncs = new Counter({
    name: 'raftkv_fsyncs_total',
    help: 'synchronous writes of Readies',
    registers: [this.registry],
  });
  readonly entriesPersisted = new Counter({
    name: 'raftkv_entries_persisted_total',
    help: 'log entries written',
    registers: [this.registry],
  });
  readonly entriesApplied = new Counter({
    name: 'raftkv_entries_applied_total',
    help: 'log entries applied to the state machine',
    registers: [this.registry],
  });
  readonly writesAcknowledged = new Counter({
    name: 'raftkv_writes_acknowledged_total',
    help: 'client writes answered as committed and applied',
    registers: [this.registry],
  });
  readonly readBatches = new Counter({
    name: 'raftkv_read_batches_total',
    help: 'ReadIndex requests this node issued (leader: heartbeat rounds; follower: requests to the leader)',
    registers: [this.registry],
  });
  readonly readsBatched = new Counter({
    name: 'raftkv_read_batched_reads_total',
    help: 'linearizable reads served by those requests (divided by the batches: reads per round)',
    registers: [this.registry],
  });
  readonly snapshotsTaken = new Counter({
    name: 'raftkv_snapshots_taken_total',
    help: 'snapshot points recorded (log compactions)',
    registers: [this.registry],
  });
  readonly snapshotsSent = new Counter({
    name: 'raftkv_snapshots_sent_total',
    help: 'snapshots streamed to followers completely',
    registers: [this.registry],
  });
  readonly snapshotsInstalled = new Counter({
    name: 'raftkv_snapshots_installed_total',
    help: 'snapshots received from a leader and installed',
    registers: [this.registry],
  });
  readonly logEntries = new Gauge({
    name: 'raftkv_log_entries',
    help: 'entries in the retained (uncompacted) log',
    registers: [this.registry],
  });
  readonly logBytes = new Gauge({
    name: 'raftkv_log_bytes',
    help: 'bytes the retained log takes on disk (LevelDB estimate)',
    registers: [this.registry],
  });
  readonly leaderChanges = new Counter({
    name: 'raftkv_leader_changes_total',
    help: 'times this node saw the leader change',
    registers: [this.registry],
  });

  constructor(nodeId: string) {
    this.registry.setDefaultLabels({ node: nodeId });
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 10 });
  }

  /**
   * Exports the peer transport's counters per peer and lane, read when scraped: how many requests
   * carry the cluster's traffic (the write path's cost depends on it) and what was lost.
   */
  watchPeers(read: () => ReadonlyArray<PeerLaneCounters>): void {
    const counter = (name: string, help: string, pick: (c: PeerLaneCounters) => number): void => {
      new Counter({
        name,
        help,
        labelNames: ['peer', 'lane'],
        registers: [this.registry],
        collect() {
          this.reset();
          for (const c of read()) this.inc({ peer: c.peer, lane: c.lane }, pick(c));
        },
      });
    };
    counter('raftkv_peer_requests_total', 'peer requests answered 2xx, by peer and lane', (c) => c.sentRequests);
    counter(
      'raftkv_peer_streamed_requests_total',
      'of those, the ones sent over a message stream (the rest were POSTs: a peer without streams)',
      (c) => c.streamedRequests,
    );
    counter('raftkv_peer_messages_sent_total', 'messages in those requests', (c) => c.sentMessages);
    counter('raftkv_peer_replies_total', 'messages the peer put in its answers', (c) => c.replies);
    counter('raftkv_peer_dropped_total', 'messages dropped (queue bounds, failed requests)', (c) => c.dropped);
    counter('raftkv_peer_failures_total', 'failed peer requests', (c) => c.failures);
  }

  observe(status: RaftStatus): void {
    for (const r of ROLES) this.role.set({ role: r }, r === status.role ? 1 : 0);
    this.term.set(status.term);
    this.commit.set(status.commit);
    this.applied.set(status.applied);
    this.lastIndex.set(status.lastIndex);
    this.logEntries.set(Math.max(0, status.lastIndex - status.firstIndex + 1));
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
