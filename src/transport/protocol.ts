// Names shared by the peer client and server.

export const MESSAGES_PATH = '/raft/messages';
/**
 * GET here with `Upgrade: STREAM_PROTOCOL` (and the headers a POST to MESSAGES_PATH carries) turns
 * the connection into a message stream (frames.ts): the same batches and answers, without an HTTP
 * request around each. A server without it answers 404; the sender then posts (peer-client.ts).
 */
export const STREAM_PATH = '/raft/stream';
export const STREAM_PROTOCOL = 'raftkv-messages/1';
export const FAULTS_PATH = '/raft/faults';
/** One frame of a snapshot transfer per request (src/snapshot/format.ts). */
export const SNAPSHOT_PATH = '/raft/snapshot';
/** The transfer a snapshot frame belongs to (random per transfer) and its place in it (0, 1, ...). */
export const TRANSFER_HEADER = 'x-raftkv-transfer';
export const SEQ_HEADER = 'x-raftkv-seq';
/** The leader's term when it started the transfer. */
export const TERM_HEADER = 'x-raftkv-term';
/** Largest body of POST /raft/snapshot: one frame (format.ts MAX_FRAME_BYTES). */
export const SNAPSHOT_BODY_LIMIT = 24 * 1024 * 1024;
export const MSGPACK_CONTENT_TYPE = 'application/msgpack';

/** Header names in the lower case Node exposes them in. */
export const CLUSTER_HEADER = 'x-raftkv-cluster';
export const FROM_HEADER = 'x-raftkv-from';
/**
 * Sent by a client that takes messages in the answer to POST /raft/messages (200 with a msgpack
 * body instead of 204). The value names what it takes: `heartbeat` (heartbeat acknowledgements,
 * answered at once) or `heartbeat,append` (also the acknowledgements of the appends it carried,
 * for which the answer waits until they are on the receiver's disk). Without it the server never
 * puts messages in an answer, so a node that does not read answers (an older version, a test
 * stub) loses nothing; an older server that knows only `heartbeat` answers `heartbeat,append`
 * with 204 and acknowledges by requests of its own, as before.
 */
export const REPLIES_HEADER = 'x-raftkv-replies';
export const REPLIES_HEARTBEAT = 'heartbeat';
export const REPLIES_HEARTBEAT_AND_APPEND = 'heartbeat,append';
/**
 * What a sender takes in the answer: nothing, heartbeat acknowledgements, or those and the
 * acknowledgements of its appends (the answer then waits for the receiver's fsync).
 */
export type ReplyMode = 'none' | 'heartbeat' | 'append';

/** The reply mode a REPLIES_HEADER value asks for; anything unknown takes nothing. */
export function replyModeOf(header: unknown): ReplyMode {
  if (header === REPLIES_HEARTBEAT_AND_APPEND) return 'append';
  if (header === REPLIES_HEARTBEAT) return 'heartbeat';
  return 'none';
}
/** The largest answer body a client reads; acknowledgements take a few dozen bytes each. */
export const MAX_REPLY_BYTES = 1024 * 1024;

/** Default body limit of POST /raft/messages. */
export const DEFAULT_BODY_LIMIT = 32 * 1024 * 1024;

/** The JSON body of every error answer on the peer port. */
export interface ErrorBody {
  readonly error: string;
  readonly message: string;
}

/** Why a request, a stream or one of its frames is refused: a JSON error answer. */
export interface Refusal {
  readonly status: number;
  readonly code: string;
  readonly message: string;
  /** The connection closes after the answer (a caller that is not a peer gets no keep-alive). */
  readonly close?: boolean;
  /** Not logged as a rejected request (fault injection; a 500, logged as an error already). */
  readonly quiet?: boolean;
}

/** What a batch is answered: 200 with the acknowledgements (msgpack), 204, or a refusal. */
export type BatchAnswer = { readonly status: 200; readonly body: Uint8Array } | { readonly status: 204 } | Refusal;
