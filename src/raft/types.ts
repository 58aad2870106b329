// Types shared by the Raft core and its drivers. Nothing here does anything: the core is in core.ts.
//
// Indices are 1-based. Index 0 / term 0 denote "nothing": the empty log's last entry is (0, 0).
// After log compaction the first index of a log is above 1: (firstIndex - 1) is the index of the
// snapshot the log starts after.

export type NodeId = string;

/** The "no node" value for vote and leader fields. */
export const NONE: NodeId = '';

export const EntryType = {
  /** A client command, or the empty entry a new leader appends (data of length 0). */
  Normal: 0,
  /**
   * A membership change. Its data is the driver's encoding of a ConfChange (and whatever the driver
   * needs besides, such as addresses); the driver applies it like any entry and then tells the core
   * (`RaftCore.applyConfChange`), so every node changes its configuration at the same log index.
   */
  ConfChange: 1,
} as const;
export type EntryType = (typeof EntryType)[keyof typeof EntryType];

export interface Entry {
  readonly index: number;
  readonly term: number;
  readonly type: EntryType;
  /** Opaque to the core. The empty entry of a new leader has `data.length === 0`. */
  readonly data: Uint8Array;
}

/** What must be durable before any message that depends on it leaves the node. */
export interface HardState {
  readonly term: number;
  readonly vote: NodeId;
  readonly commit: number;
}

export const EMPTY_HARD_STATE: HardState = { term: 0, vote: NONE, commit: 0 };

export type Role = 'follower' | 'pre-candidate' | 'candidate' | 'leader';

/** Volatile state the driver may want to show or act on; never persisted. */
export interface SoftState {
  readonly role: Role;
  readonly leader: NodeId;
  readonly term: number;
}

/**
 * A snapshot: the state machine's state after applying every entry up to `index` (of `term`), and
 * the membership then. The core handles only this metadata; the state itself is the driver's (it
 * streams it to a follower and installs it there before the follower's core sees the snapshot).
 */
export interface SnapshotMeta {
  readonly index: number;
  readonly term: number;
  readonly voters: readonly NodeId[];
  /** Members that replicate the log without voting (absent in snapshots older than learners: none). */
  readonly learners?: readonly NodeId[];
}

/** A configuration: who votes, and who replicates without voting. */
export interface ConfState {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

/**
 * One membership change (single-server changes, Raft thesis chapter 4, made safe by taking effect
 * only when applied and by allowing one at a time): a new member joins as a learner, a caught-up
 * learner is promoted to voter, a member is removed.
 */
export type ConfChange =
  | { readonly type: 'addLearner'; readonly node: NodeId }
  | { readonly type: 'promote'; readonly node: NodeId }
  | { readonly type: 'remove'; readonly node: NodeId };

// ---------------------------------------------------------------------------------------------
// Messages. Every message carries the sender's term; `to` and `from` are node ids.

interface MessageBase {
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: number;
}

/** Leader -> follower: entries after (index, logTerm), and the leader's commit index. */
export interface AppendMessage extends MessageBase {
  readonly type: 'app';
  readonly index: number;
  readonly logTerm: number;
  readonly entries: readonly Entry[];
  readonly commit: number;
}

/**
 * Follower -> leader. On success `index` is the follower's last index known to match the leader.
 * On reject, `index` echoes the rejected append's index and (`hintIndex`, `hintTerm`) is the
 * follower's largest entry with term <= the append's logTerm, which lets the leader skip back
 * a whole term per round trip instead of one entry.
 */
export interface AppendResponseMessage extends MessageBase {
  readonly type: 'appResp';
  readonly index: number;
  readonly reject: boolean;
  readonly hintIndex: number;
  readonly hintTerm: number;
  /**
   * Set by a node that has no configuration yet (it joined empty): it takes no entries before a
   * snapshot has given it the configuration they build on. The leader sends it one.
   */
  readonly needsSnapshot?: boolean;
}

/** Candidate (or pre-candidate) -> voter. `transfer` marks a campaign forced by leadership transfer. */
export interface VoteMessage extends MessageBase {
  readonly type: 'vote' | 'preVote';
  readonly index: number;
  readonly logTerm: number;
  readonly transfer: boolean;
}

export interface VoteResponseMessage extends MessageBase {
  readonly type: 'voteResp' | 'preVoteResp';
  readonly reject: boolean;
}

/** Leader -> follower. `commit` is capped at the follower's match; `round` is the ReadIndex round. */
export interface HeartbeatMessage extends MessageBase {
  readonly type: 'heartbeat';
  readonly commit: number;
  readonly round: number;
}

export interface HeartbeatResponseMessage extends MessageBase {
  readonly type: 'heartbeatResp';
  readonly round: number;
}

/** Follower -> leader: please confirm a read index for my request `ctx`. */
export interface ReadIndexMessage extends MessageBase {
  readonly type: 'readIndex';
  readonly ctx: number;
}

/** Leader -> follower: the read index for request `ctx`; reject when the leader could not serve it. */
export interface ReadIndexResponseMessage extends MessageBase {
  readonly type: 'readIndexResp';
  readonly ctx: number;
  readonly index: number;
  readonly reject: boolean;
}

/** Leader -> transfer target: start an election now, without PreVote. */
export interface TimeoutNowMessage extends MessageBase {
  readonly type: 'timeoutNow';
}

/**
 * Leader -> follower: install this snapshot (the follower needs entries the leader compacted away).
 * The leader's core sends it with the snapshot it expects to be sent (its applied index, at least);
 * the leader's driver streams the state at some index >= that and the follower's driver steps this
 * message, with the snapshot actually received, into its core only once the state is staged on disk.
 * So it never travels the normal peer route (the transport refuses it there).
 */
export interface SnapshotMessage extends MessageBase {
  readonly type: 'snap';
  readonly snapshot: SnapshotMeta;
}

export type Message =
  | AppendMessage
  | AppendResponseMessage
  | VoteMessage
  | VoteResponseMessage
  | HeartbeatMessage
  | HeartbeatResponseMessage
  | ReadIndexMessage
  | ReadIndexResponseMessage
  | TimeoutNowMessage
  | SnapshotMessage;

export type MessageType = Message['type'];

export const MESSAGE_TYPES: readonly MessageType[] = [
  'app',
  'appResp',
  'vote',
  'preVote',
  'voteResp',
  'preVoteResp',
  'heartbeat',
  'heartbeatResp',
  'readIndex',
  'readIndexResp',
  'timeoutNow',
  'snap',
];

// ---------------------------------------------------------------------------------------------
// The Ready / advance cycle.

/** A linearizable read point: once `applied >= index`, the read with context `ctx` may be served. */
export interface ReadState {
  readonly ctx: number;
  readonly index: number;
}

/**
 * Everything the driver must do, in this order:
 *  1. send `messages` (they do not depend on this Ready being persisted: a leader's appends may go
 *     out while its own write is in flight, Raft thesis 10.2.1);
 *  2. persist `snapshot` (if set), `hardState` (if set) and `entries` in one synchronous write;
 *     `entries` replace every stored entry from `entries[0].index` on (a conflicting suffix is
 *     truncated in the same write);
 *  3. only then send `persistedMessages` (vote grants, append responses...);
 *  4. apply `committedEntries` in order (they are all covered by step 2 or earlier);
 *  5. serve `readStates` once applied >= their index; fail the reads in `failedReads`;
 *  6. call `advance(ready)`.
 */
export interface Ready {
  readonly softState: SoftState | null;
  readonly hardState: HardState | null;
  /**
   * A snapshot to install (a follower's): the driver switches the state machine to the snapshot's
   * state (staged when it was received), and the log to start after it, in the same write as the
   * hard state and entries. Committed entries never come with one: they follow it.
   */
  readonly snapshot: SnapshotMeta | null;
  readonly entries: readonly Entry[];
  readonly committedEntries: readonly Entry[];
  readonly messages: readonly Message[];
  readonly persistedMessages: readonly Message[];
  readonly readStates: readonly ReadState[];
  /** Contexts of this node's read requests that will never get a ReadState (leader changed...). */
  readonly failedReads: readonly number[];
}

// ---------------------------------------------------------------------------------------------
// Results of client-facing calls. The core never throws for a refusal a caller must handle.

export type ProposeError =
  | 'change-in-progress'
  | 'invalid-change'
  | 'not-leader'
  | 'transferring-leadership'
  | 'too-many-uncommitted'
  | 'entry-too-large';

export type ProposeResult =
  | { readonly ok: true; readonly index: number; readonly term: number }
  | { readonly ok: false; readonly error: ProposeError; readonly leader: NodeId };

export type ReadIndexError = 'no-leader' | 'too-many-pending-reads';

export type ReadIndexResult =
  { readonly ok: true } | { readonly ok: false; readonly error: ReadIndexError; readonly leader: NodeId };

export type TransferError = 'not-leader' | 'unknown-target';

/** Whether a membership change may be proposed now; when not, a sentence that says why. */
export type ConfChangeCheck =
  | { readonly ok: true }
  | {
      readonly ok: false;
      readonly error: 'not-leader' | 'change-in-progress' | 'invalid-change';
      readonly reason: string;
    };

export type TransferResult = { readonly ok: true } | { readonly ok: false; readonly error: TransferError };
