// The follower's side of InstallSnapshot: frames arrive one per request (POST /raft/snapshot), are
// checked in order (src/snapshot/format.ts StreamChecker: header, chunks, trailer with count and
// digest), and the pairs are written, synced, into the state machine's staging generation. Only
// once everything arrived intact is the core told (a 'snap' message from the leader), and only if
// the core takes it does the next Ready install it; otherwise the staged data is dropped.
//
// One transfer at a time: a header from a leader starts a new one and abandons the one in progress
// (the newest leader's snapshot is the one that counts). A frame that does not belong to the current
// transfer, or comes out of order, is refused (409): the sender gives up and the leader's core
// tries again later.

import type { Logger } from 'pino';
import type { NodeId, SnapshotMeta } from '../raft/types.js';
import type { SnapshotStaging } from '../storage/node-storage.js';
import type { SnapshotFrame as FrameRequest, SnapshotFrameAnswer as FrameAnswer } from '../transport/peer-server.js';
import { metaOf, SnapshotFormatError, StreamChecker } from './format.js';

export interface SnapshotReceiverOptions {
  readonly selfId: NodeId;
  readonly clusterId: string;
  readonly beginStaging: () => Promise<SnapshotStaging>;
  /** Steps the completed snapshot into the core; true if the core is installing it. */
  readonly deliver: (from: NodeId, term: number, snapshot: SnapshotMeta) => boolean;
  /** Drops a staged snapshot the core did not take. */
  readonly discard: (snapshot: SnapshotMeta) => void;
  readonly logger: Logger;
  readonly onInstalled?: (snapshot: SnapshotMeta, bytes: number) => void;
}

interface Incoming {
  readonly from: NodeId;
  readonly transfer: string;
  readonly term: number;
  readonly checker: StreamChecker;
  readonly staging: Promise<SnapshotStaging>;
  nextSeq: number;
  bytes: number;
  /** Frames are handled one at a time: a request arriving while one is written waits its turn. */
  busy: boolean;
}

export class SnapshotReceiver {
  private current: Incoming | null = null;
  private readonly log: Logger;

  constructor(private readonly options: SnapshotReceiverOptions) {
    this.log = options.logger.child({ component: 'snapshot-receiver' });
  }

  async frame(request: FrameRequest): Promise<FrameAnswer> {
    if (request.seq === 0) return this.begin(request);
    const incoming = this.current;
    if (incoming === null || incoming.transfer !== request.transfer || incoming.from !== request.from) {
      return {
        status: 409,
        error: 'unknown-transfer',
        message: 'no snapshot transfer of that id is in progress here (a newer one may have replaced it)',
      };
    }
    if (incoming.busy || request.seq !== incoming.nextSeq) {
      return {
        status: 409,
        error: 'out-of-order',
        message: `frame ${request.seq} of the transfer, ${incoming.nextSeq} expected`,
      };
    }
    incoming.busy = true;
    try {
      return await this.accept(incoming, request);
    } finally {
      incoming.busy = false;
    }
  }

  /** Abandons the transfer in progress (the node is stopping). */
  abandon(): void {
    const incoming = this.current;
    this.current = null;
    if (incoming !== null)
      void incoming.staging.then(
        (s) => s.abort(),
        () => undefined,
      );
  }

  private async begin(request: FrameRequest): Promise<FrameAnswer> {
    if (this.current !== null && this.current.term > request.term) {
      return {
        status: 409,
        error: 'stale-transfer',
        message: `a snapshot from a later term (${this.current.term}) is being received`,
      };
    }
    this.abandon();
    const checker = new StreamChecker();
    try {
      checker.accept(request.body);
    } catch (error) {
      return refusal(error);
    }
    const header = checker.snapshotHeader;
    if (header === null) return { status: 400, error: 'bad-snapshot', message: 'the first frame must be the header' };
    if (header.clusterId !== this.options.clusterId) {
      return {
        status: 400,
        error: 'bad-snapshot',
        message: `the snapshot is of cluster ${header.clusterId}, not ${this.options.clusterId}`,
      };
    }
    const staging = this.options.beginStaging();
    const incoming: Incoming = {
      from: request.from,
      transfer: request.transfer,
      term: request.term,
      checker,
      staging,
      nextSeq: 1,
      bytes: request.body.byteLength,
      busy: false,
    };
    this.current = incoming;
    try {
      await staging;
    } catch (error) {
      if (this.current === incoming) this.current = null;
      return { status: 503, error: 'cannot-stage', message: error instanceof Error ? error.message : String(error) };
    }
    this.log.info({ from: request.from, index: header.index, term: header.term }, 'receiving a snapshot');
    return { status: 204 };
  }

  private async accept(incoming: Incoming, request: FrameRequest): Promise<FrameAnswer> {
    let frame;
    try {
      frame = incoming.checker.accept(request.body);
    } catch (error) {
      this.abandonIf(incoming);
      return refusal(error);
    }
    const staging = await incoming.staging;
    incoming.bytes += request.body.byteLength;
    if (frame.kind === 'chunk') {
      try {
        await staging.write(frame.pairs);
      } catch (error) {
        this.abandonIf(incoming);
        return { status: 503, error: 'cannot-stage', message: error instanceof Error ? error.message : String(error) };
      }
      incoming.nextSeq++;
      return { status: 204 };
    }
    if (frame.kind !== 'trailer') {
      this.abandonIf(incoming);
      return { status: 400, error: 'bad-snapshot', message: 'a second header' };
    }
    const header = incoming.checker.snapshotHeader!;
    const meta = metaOf(header);
    if (this.current !== incoming)
      return { status: 409, error: 'unknown-transfer', message: 'the transfer was replaced by a newer one' };
    this.current = null;
    staging.complete(meta, header.membership);
    if (this.options.deliver(incoming.from, incoming.term, meta)) {
      this.log.info(
        { from: incoming.from, index: meta.index, bytes: incoming.bytes },
        'snapshot received: installing it',
      );
      this.options.onInstalled?.(meta, incoming.bytes);
    } else {
      this.log.info(
        { from: incoming.from, index: meta.index },
        'snapshot received but not needed (stale, or the log already has it)',
      );
      this.options.discard(meta);
    }
    return { status: 204 };
  }

  private abandonIf(incoming: Incoming): void {
    if (this.current === incoming) this.abandon();
  }
}

function refusal(error: unknown): FrameAnswer {
  if (error instanceof SnapshotFormatError) return { status: 400, error: 'bad-snapshot', message: error.message };
  throw error;
}
