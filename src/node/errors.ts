// What a client request can run into inside the node. The API maps each to an HTTP answer.

/** This node is not the leader (or no leader is known: `leader` is ''). Nothing was proposed. */
export class NotLeaderError extends Error {
  override readonly name = 'NotLeaderError';
  constructor(readonly leader: string) {
    super(leader === '' ? 'no leader is known right now' : `not the leader; the leader is ${leader}`);
  }
}

/**
 * This node is the leader but is handing leadership over to another node: it proposes nothing until
 * the transfer ends, within an election timeout. Nothing was proposed; retrying shortly is safe.
 */
export class LeaderTransferError extends Error {
  override readonly name = 'LeaderTransferError';
  constructor() {
    super('leadership is being handed over to another node; retry shortly');
  }
}

/** The node refuses more work for now (queue or uncommitted bound reached). Nothing was proposed. */
export class OverloadedError extends Error {
  override readonly name = 'OverloadedError';
}

/** The entry of this write was replaced by another leader's: it was definitely not applied. */
export class WriteLostError extends Error {
  override readonly name = 'WriteLostError';
  constructor(readonly index: number) {
    super(
      `the write was not committed: its log entry ${index} was replaced after a leader change; it is safe to retry`,
    );
  }
}

/** The write was proposed but its fate is unknown (not applied in time, or the node stopped). */
export class WriteUnknownError extends Error {
  override readonly name = 'WriteUnknownError';
  constructor(
    readonly index: number,
    why: string,
  ) {
    super(`the write was proposed at index ${index} but ${why}: it may or may not take effect`);
  }
}

/** A linearizable read could not be confirmed in time. It had no effect; retrying is safe. */
export class ReadTimeoutError extends Error {
  override readonly name = 'ReadTimeoutError';
}

/** The node is shutting down. */
export class StoppedError extends Error {
  override readonly name = 'StoppedError';
  constructor() {
    super('the node is shutting down');
  }
}

/**
 * A membership change was refused before anything was proposed: another change is not applied yet
 * (`conflict`: retry once it is), or the change makes no sense for the membership (`invalid`).
 */
export class MembershipChangeError extends Error {
  override readonly name = 'MembershipChangeError';
  constructor(
    readonly kind: 'conflict' | 'invalid',
    message: string,
  ) {
    super(message);
  }
}

/** This node was removed from the cluster: it serves nothing any more; ask another member. */
export class RemovedError extends Error {
  override readonly name = 'RemovedError';
  constructor() {
    super('this node was removed from the cluster: it serves nothing any more; ask another member');
  }
}
