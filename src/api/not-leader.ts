// What a node that is not the leader does with a client's write (or a read through the log): one
// rule for both paths of the client port (Fastify's routes and the PUT fast path). At most one hop:
// a request another node already forwarded is answered here, never forwarded again.
import type { IncomingHttpHeaders } from 'node:http';
import type { ErrorAnswer } from './errors.js';
import { FORWARDED_HEADER } from './forward.js';

export type NotLeaderAction =
  | { readonly kind: 'answer'; readonly answer: ErrorAnswer }
  | { readonly kind: 'redirect'; readonly location: string }
  | { readonly kind: 'forward'; readonly leaderUrl: string };

/**
 * `leader`: the leader this node knows ('' for none); `leaderUrl`: its client URL, if known;
 * `redirect`: the client asked for a 307 instead of forwarding (`?redirect=true`).
 */
export function notLeaderAction(
  leader: string,
  leaderUrl: string | undefined,
  request: { readonly url: string; readonly headers: IncomingHttpHeaders; readonly redirect: boolean },
): NotLeaderAction {
  if (leaderUrl === undefined) {
    return {
      kind: 'answer',
      answer: {
        status: 503,
        error: 'no_leader',
        message: 'no leader is known right now (an election may be under way); retry shortly',
        headers: { 'retry-after': '1' },
      },
    };
  }
  if (request.redirect) return { kind: 'redirect', location: `${leaderUrl}${request.url}` };
  if (request.headers[FORWARDED_HEADER] !== undefined) {
    return {
      kind: 'answer',
      answer: {
        status: 503,
        error: 'not_leader',
        message: `this node is not the leader (the leader is ${leader}) and the request was already forwarded once`,
        headers: { 'retry-after': '1', 'x-raft-leader': leader },
      },
    };
  }
  return { kind: 'forward', leaderUrl };
}
