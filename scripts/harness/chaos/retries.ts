// One operation of a chaos client, sent until its outcome is known: a write that carries an
// Idempotency-Key is retried AS IS (the same key, the same request) while its outcome is unknown,
// to another node each time, a bounded number of times within a bounded window. The server applies
// it at most once and answers every retry after that with the first answer (idempotent-replayed).
//
// The whole is ONE operation of the history (scripts/harness/check/history.ts): invoked when the
// first attempt was sent, completed with the answer of the attempt that got one, and unknown when no
// attempt did. An attempt that was definitely not applied (refused, never sent) settles the operation
// as failed only while no earlier attempt may have been: otherwise that earlier attempt may still be
// applied, and only a later answer settles anything.
//
// A 422 idempotency_key_reused ends the retries: the request never changes, so the server mistook
// it for another one; the operation stays unknown and the answer counts as unexpected.
import { sleep } from './clock.js';
import type { KvRequest } from './kv-client.js';
import type { Outcome } from './outcome.js';
import { chooseNode, type UnresponsiveNodes } from './unresponsive-nodes.js';

/** The most attempts of one operation (the first included). */
export const MAX_ATTEMPTS = 5;
/** No retry starts later than this after the first attempt. */
export const RETRY_WINDOW_MS = 15_000;
/** Pause before the n-th retry: RETRY_BASE_MS * 2^(n-1), at most RETRY_MAX_PAUSE_MS, plus up to as much again. */
const RETRY_BASE_MS = 50;
const RETRY_MAX_PAUSE_MS = 800;

export interface Sender {
  send(node: string, request: KvRequest): Promise<Outcome>;
}

export interface RetryContext {
  readonly nodeIds: readonly string[];
  /** Uniform in [0, n): the node of each retry, and the pauses' jitter. */
  readonly randomInt: (n: number) => number;
  readonly now: () => number;
  /** Aborted when the workload stops: no retry starts after that (the operation stays as it is). */
  readonly signal: AbortSignal;
  /** Pauses between attempts (tests pass a fake). */
  readonly pause?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Told how each attempt ended, and asked for the node of each retry (unresponsive-nodes.ts). */
  readonly unresponsive?: UnresponsiveNodes;
}

export interface Performed {
  /** The operation's outcome: the answer of the attempt that got one, or unknown / fail (see above). */
  readonly outcome: Outcome;
  /** The node of the last attempt. */
  readonly node: string;
  readonly attempts: number;
  /** Some attempt's answer was unexpected (outcome.ts): worth a warning even if a retry settled it. */
  readonly unexpected: boolean;
}

/** Sends `request` to `node`, then retries it while its outcome is unknown (see the file comment). */
export async function performWithRetries(
  kv: Sender,
  firstNode: string,
  request: KvRequest,
  context: RetryContext,
): Promise<Performed> {
  const retryable = request.kind !== 'get' && request.idempotencyKey !== undefined;
  const pause = context.pause ?? sleep;
  const started = context.now();
  let node = firstNode;
  let attempts = 0;
  let unexpected = false;
  let mayHaveApplied = false;
  for (;;) {
    attempts++;
    let outcome: Outcome;
    try {
      outcome = await kv.send(node, request);
    } catch (error) {
      // A sender that throws is a broken harness (KvClient never throws for a node it knows): the
      // worker dies, but the node must not stay marked as being probed.
      context.unresponsive?.release(node);
      throw error;
    }
    context.unresponsive?.observe(node, outcome);
    unexpected ||= outcome.unexpected;
    const done = (final: Outcome): Performed => ({ outcome: final, node, attempts, unexpected });
    if (outcome.status === 'ok') return done(outcome);
    if (outcome.status === 'fail' && !mayHaveApplied) return done(outcome);
    if (outcome.status === 'unknown') mayHaveApplied = true;
    const unknown: Outcome = { ...outcome, status: 'unknown' };
    if (!retryable || outcome.reason === '422 idempotency_key_reused' || attempts >= MAX_ATTEMPTS) {
      return done(unknown);
    }
    const wait = Math.min(RETRY_MAX_PAUSE_MS, RETRY_BASE_MS * 2 ** (attempts - 1));
    const retryAt = context.now() + wait + context.randomInt(wait + 1);
    if (retryAt - started > RETRY_WINDOW_MS || context.signal.aborted) return done(unknown);
    await pause(retryAt - context.now(), context.signal);
    if (context.signal.aborted) return done(unknown);
    node = otherNode(context, node);
  }
}

/**
 * A random node other than `node` (the one that did not answer), when there is another; one that
 * answers, when the run tracks them.
 */
function otherNode(context: RetryContext, node: string): string {
  const others = context.nodeIds.filter((id) => id !== node);
  if (others.length === 0) return node;
  return chooseNode(others, context.randomInt, context.unresponsive);
}
