// Names shared by the peer client and server.

export const MESSAGES_PATH = '/raft/messages';
export const FAULTS_PATH = '/raft/faults';
export const MSGPACK_CONTENT_TYPE = 'application/msgpack';

/** Header names in the lower case Node exposes them in. */
export const CLUSTER_HEADER = 'x-raftkv-cluster';
export const FROM_HEADER = 'x-raftkv-from';

/** Default body limit of POST /raft/messages. */
export const DEFAULT_BODY_LIMIT = 32 * 1024 * 1024;

/** The JSON body of every error answer on the peer port. */
export interface ErrorBody {
  readonly error: string;
  readonly message: string;
}
