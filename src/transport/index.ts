// The public surface of the peer transport. The node driver imports from here.
export { encodeMessages, decodeMessages, BadMessageError, MAX_ENTRIES_PER_BODY, MAX_MESSAGES_PER_BODY, MAX_VALUES_PER_BODY } from './codec.js';
export { FaultSwitch, type FaultState } from './faults.js';
export { PeerServer, type PeerServerOptions, type ListenAddress } from './peer-server.js';
export {
  PeerClient,
  DEFAULT_MAX_QUEUE_BYTES,
  DEFAULT_MAX_QUEUE_MESSAGES,
  DEFAULT_REQUEST_TIMEOUT_MS,
  type PeerClientOptions,
  type PeerStats,
} from './peer-client.js';
export { PeerTransport, type PeerTransportOptions } from './peer-transport.js';
export { DEV_PEER_TOKEN, devTokenRefusal, isLoopbackUrl, PEER_TOKEN_ENV, resolvePeerToken, type ResolvedPeerToken } from './token.js';
export {
  CLUSTER_HEADER,
  DEFAULT_BODY_LIMIT,
  FAULTS_PATH,
  FROM_HEADER,
  MESSAGES_PATH,
  MSGPACK_CONTENT_TYPE,
  type ErrorBody,
} from './protocol.js';
