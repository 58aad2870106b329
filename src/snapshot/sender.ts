// The leader's side of InstallSnapshot: when the core asks for a snapshot to be sent to a follower
// (a 'snap' message), stream a consistent view of the state machine to it, one frame per request,
// on a connection of its own (heartbeats and appends keep theirs), and report the outcome to the core.
//
// Bounds: one transfer per follower (a new request for the same follower aborts the old one); one
// request in flight per transfer; chunks of about 256 KiB (CHUNK_BYTES), read off the loop (LevelDB iterator) and
// encoded a chunk at a time, so a transfer of any size never holds the loop for long. A transfer
// ends (reported failed) when a request fails, when the leader's term changes, or on close.

import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { Pool } from 'undici';
import type { NodeId } from '../raft/types.js';
import type { SnapshotSource } from '../storage/node-storage.js';
import {
  CLUSTER_HEADER,
  FROM_HEADER,
  SEQ_HEADER,
  SNAPSHOT_PATH,
  TERM_HEADER,
  TRANSFER_HEADER,
} from '../transport/protocol.js';
import { keepErrorStart, post } from '../transport/peer-post.js';
import { CHUNK_BYTES, SNAPSHOT_FORMAT, StreamWriter } from './format.js';

export interface SnapshotSenderOptions {
  readonly selfId: NodeId;
  readonly clusterId: string;
  readonly token: string;
  /** A peer's base URL now (the membership may have changed since the transfer was asked for). */
  readonly peerUrlOf: (id: NodeId) => string | undefined;
  readonly openSource: () => Promise<SnapshotSource>;
  /** The core hears how a transfer ended. */
  readonly report: (to: NodeId, ok: boolean) => void;
  readonly logger: Logger;
  /** Deadline of one frame's request (the follower syncs each chunk to disk before answering). */
  readonly requestTimeoutMs?: number;
  readonly onSent?: (to: NodeId, bytes: number, pairs: number) => void;
}

interface Transfer {
  readonly to: NodeId;
  readonly term: number;
  aborted: boolean;
}

export class SnapshotSender {
  private readonly pools = new Map<NodeId, { origin: string; pool: Pool }>();
  private readonly transfers = new Map<NodeId, Transfer>();
  private readonly log: Logger;
  private closed = false;

  constructor(private readonly options: SnapshotSenderOptions) {
    this.log = options.logger.child({ component: 'snapshot-sender' });
  }

  /** Number of transfers running (for status). */
  get active(): number {
    return this.transfers.size;
  }

  /** Starts sending a snapshot to `to` for the leader of `term`; supersedes a transfer already running. */
  send(to: NodeId, term: number): void {
    if (this.closed) return;
    const running = this.transfers.get(to);
    if (running !== undefined) running.aborted = true;
    const transfer: Transfer = { to, term, aborted: false };
    this.transfers.set(to, transfer);
    void this.run(transfer).then((ok) => {
      if (this.transfers.get(to) === transfer) this.transfers.delete(to);
      // Only the current transfer reports: a superseded one is no news to the core.
      if (!transfer.aborted || ok) this.options.report(to, ok);
    });
  }

  /** Leadership ended (or moved to another term): every transfer stops. */
  abortAll(): void {
    for (const transfer of this.transfers.values()) transfer.aborted = true;
    this.transfers.clear();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.abortAll();
    await Promise.all([...this.pools.values()].map((entry) => entry.pool.destroy()));
  }

  private pool(to: NodeId): Pool | undefined {
    const url = this.options.peerUrlOf(to);
    if (url === undefined) return undefined;
    const origin = new URL(url).origin;
    let entry = this.pools.get(to);
    if (entry !== undefined && entry.origin !== origin) {
      void entry.pool.destroy();
      entry = undefined;
    }
    if (entry === undefined) {
      entry = { origin, pool: new Pool(origin, { connections: 1, pipelining: 1 }) };
      this.pools.set(to, entry);
    }
    return entry.pool;
  }

  /** Streams the snapshot; true once the follower accepted the trailer. Never rejects. */
  private async run(transfer: Transfer): Promise<boolean> {
    const pool = this.pool(transfer.to);
    if (pool === undefined) return false;
    const id = randomBytes(8).toString('hex');
    let source: SnapshotSource | null = null;
    const started = Date.now();
    let bytes = 0;
    let pairs = 0;
    try {
      source = await this.options.openSource();
      this.log.info({ to: transfer.to, index: source.index, term: source.term }, 'sending a snapshot');
      const writer = new StreamWriter();
      let seq = 0;
      const post = async (body: Uint8Array): Promise<void> => {
        if (transfer.aborted || this.closed) throw new Error('the transfer was superseded or the node stopped');
        await this.post(pool, transfer, id, seq++, body);
        bytes += body.byteLength;
      };
      await post(
        writer.header({
          format: SNAPSHOT_FORMAT,
          clusterId: this.options.clusterId,
          index: source.index,
          term: source.term,
          membership: source.membership,
        }),
      );
      for (let chunk = await source.next(CHUNK_BYTES); chunk !== null; chunk = await source.next(CHUNK_BYTES)) {
        pairs += chunk.length;
        await post(writer.chunk(chunk));
      }
      await post(writer.trailer());
      this.log.info({ to: transfer.to, index: source.index, bytes, pairs, ms: Date.now() - started }, 'snapshot sent');
      this.options.onSent?.(transfer.to, bytes, pairs);
      return true;
    } catch (error) {
      if (!transfer.aborted && !this.closed) {
        this.log.warn(
          { to: transfer.to, err: error instanceof Error ? error.message : String(error), bytes },
          'snapshot transfer failed',
        );
      }
      return false;
    } finally {
      await source?.close();
    }
  }

  private async post(pool: Pool, transfer: Transfer, id: string, seq: number, body: Uint8Array): Promise<void> {
    const result = await post(pool, {
      path: SNAPSHOT_PATH,
      headers: {
        authorization: `Bearer ${this.options.token}`,
        [CLUSTER_HEADER]: this.options.clusterId,
        [FROM_HEADER]: this.options.selfId,
        [TRANSFER_HEADER]: id,
        [SEQ_HEADER]: String(seq),
        [TERM_HEADER]: String(transfer.term),
        'content-type': 'application/octet-stream',
      },
      body,
      timeoutMs: this.options.requestTimeoutMs ?? 30_000,
      // A frame's answer is empty; an error's start goes in the log line.
      keep: keepErrorStart,
    });
    if (result.kind === 'failed') throw result.error;
    if (result.statusCode < 200 || result.statusCode >= 300)
      throw new Error(`HTTP ${result.statusCode} ${result.body.toString('utf8')}`);
  }
}
