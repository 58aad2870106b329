// One POST to a peer through undici's `dispatch`, settled as one plain result: the peer client's
// batches to a peer without message streams (peer-client.ts; peer-stream.ts settles a streamed
// batch in the same shape) and the snapshot sender's frames (src/snapshot/sender.ts).
//
// Why not `pool.request()`: that API builds, per request, a body stream (a Readable the caller
// iterates), an abort-signal listener and the AbortController behind it. A peer request is a small
// msgpack body out and, at most, a small msgpack body back, at up to a few thousand requests a
// second; those objects were several percent of a leader's main thread (BENCHMARKS.md, step 12).
// Here the answer's chunks land in an array, and the deadline aborts through the dispatch
// controller.
//
// Invariants:
// - The promise settles exactly once, and always: on the answer's end, on an error, on an abort
//   (a body over its limit), or at the deadline, even when the request never got a connection
//   (it is then aborted if it ever starts). It never rejects.
// - At most `keep` bytes of an answer's body are kept (decided from its status and content type);
//   an answer that would need more is cut off (aborted), so a peer cannot make us buffer more. A
//   body kept at 0 bytes is read and dropped up to DISCARD_LIMIT (the socket stays usable), and
//   cut off beyond that, as undici's `dump()` does.
// - Once the final status has arrived, the result is `answered` with that status, whatever happens
//   to the body (cut off, lost with the connection, or the deadline passed): the peer answered.
//   `pool.request()` gave the same, since its callers only drained or sampled such bodies.

import type { Dispatcher } from 'undici';

/** How much of an answer we keep none of is read (and dropped) before it is cut off. */
export const DISCARD_LIMIT = 128 * 1024;

export type PostResult =
  | {
      readonly kind: 'answered';
      readonly statusCode: number;
      readonly contentType: string | undefined;
      /** The body's kept bytes: all of it when it fit its limit and arrived whole, else what came first. */
      readonly body: Buffer;
      /**
       * Why the body is not whole, when it is not: it was over its limit and we cut it off, or the
       * connection failed (or the deadline passed) after the status arrived. The peer answered
       * either way, and the status is what it answered.
       */
      readonly incomplete: string | undefined;
    }
  | { readonly kind: 'failed'; readonly error: Error };

export interface PostOptions {
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: Uint8Array;
  /** Deadline of the whole request (connect, send, answer). */
  readonly timeoutMs: number;
  /** How many bytes of an answer with this status and content type to keep (0: discard it). */
  readonly keep: (statusCode: number, contentType: string | undefined) => number;
}

/** How much of an error answer is kept for a log line (our peers answer short JSON errors). */
export const ERROR_START_BYTES = 256;

/** A `keep` for answers that carry nothing we need: none of a 2xx, the start of an error. */
export function keepErrorStart(statusCode: number): number {
  return statusCode >= 200 && statusCode < 300 ? 0 : ERROR_START_BYTES;
}

/** Sends one POST on `dispatcher`; never rejects. */
export function post(dispatcher: Dispatcher, options: PostOptions): Promise<PostResult> {
  return new Promise<PostResult>((resolve) => {
    const handler = new PostHandler(options, resolve);
    dispatcher.dispatch({ path: options.path, method: 'POST', headers: options.headers, body: options.body }, handler);
  });
}

class PostHandler implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | undefined;
  /** Why to abort the request as soon as undici hands us its controller (the deadline passed first). */
  private abortReason: Error | undefined;
  private settled = false;
  private statusCode = 0;
  private contentType: string | undefined;
  private limit = 0;
  private readonly chunks: Buffer[] = [];
  private size = 0;
  /** Set once the body stops being read (see PostResult's `incomplete`). */
  private incomplete: string | undefined;
  private discarded = 0;
  private readonly deadline: NodeJS.Timeout;

  constructor(
    private readonly options: PostOptions,
    private readonly resolve: (result: PostResult) => void,
  ) {
    // A timer cleared on completion, not AbortSignal.timeout(): that one always fires eventually,
    // building an abort DOMException for every request long after it finished.
    this.deadline = setTimeout(() => {
      const error = new Error(`no answer within ${options.timeoutMs} ms`);
      if (this.controller !== undefined) {
        this.controller.abort(error); // undici answers with onResponseError
        return;
      }
      // Not started yet (connecting, or queued behind another request): fail now, abort at start.
      this.abortReason = error;
      this.settle({ kind: 'failed', error });
    }, options.timeoutMs);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.abortReason !== undefined) controller.abort(this.abortReason);
  }

  onResponseStart(
    _controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
  ): void {
    // 1xx answers come first and may come more than once; the last call is the final answer.
    this.statusCode = statusCode;
    const type = headers['content-type'];
    this.contentType = typeof type === 'string' ? type : undefined;
    this.limit = this.options.keep(statusCode, this.contentType);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.incomplete !== undefined) return;
    if (this.limit === 0) {
      // An answer we keep none of: drain it, up to a bound.
      this.discarded += chunk.length;
      if (this.discarded > DISCARD_LIMIT) this.cutOffAnswer(controller, DISCARD_LIMIT);
      return;
    }
    const room = this.limit - this.size;
    if (chunk.length > room) {
      if (room > 0) this.keepChunk(chunk.subarray(0, room));
      this.cutOffAnswer(controller, this.limit);
      return;
    }
    this.keepChunk(chunk);
  }

  onResponseEnd(): void {
    this.settleAnswered();
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    // Must not throw (undici would re-emit it as an 'error' event nobody listens to).
    // After a final status the peer did answer (it took our batch, or refused it with that status):
    // our own cut-off, or a body interrupted by the network or the deadline. Before it, it failed.
    if (this.statusCode >= 200) {
      this.incomplete ??= error.message;
      this.settleAnswered();
    } else {
      this.settle({ kind: 'failed', error });
    }
  }

  private cutOffAnswer(controller: Dispatcher.DispatchController, limit: number): void {
    this.incomplete = `an answer over ${limit} bytes`;
    controller.abort(new Error(this.incomplete));
  }

  private keepChunk(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
  }

  private settleAnswered(): void {
    this.settle({
      kind: 'answered',
      statusCode: this.statusCode,
      contentType: this.contentType,
      body: this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks, this.size),
      incomplete: this.incomplete,
    });
  }

  private settle(result: PostResult): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.deadline);
    this.resolve(result);
  }
}
