// Writing a long stream of byte pieces to an HTTP response with back-pressure: the next piece is
// asked for only once the response has taken the last one ('drain' when write() returned false), so
// a slow client holds the producer back instead of making the node buffer everything it produces.
// A client that goes away, or that takes nothing for `stallTimeoutMs`, ends the writing with an
// error: the producer is never left waiting forever on a dead or stuck connection.

import type { Writable } from 'node:stream';

/** The client closed the connection, or stopped reading for too long. */
export class ClientGoneError extends Error {
  override readonly name = 'ClientGoneError';
}

/** Writes every piece of `pieces` to `response`, waiting for 'drain' whenever it asks to. Returns the bytes written. */
export async function writePieces(
  response: Writable,
  pieces: AsyncIterable<Uint8Array>,
  options: { readonly stallTimeoutMs: number },
): Promise<number> {
  let bytes = 0;
  for await (const piece of pieces) {
    if (response.destroyed || response.writableEnded) throw new ClientGoneError('the client closed the connection');
    bytes += piece.byteLength;
    if (!response.write(piece)) await drained(response, options.stallTimeoutMs);
  }
  return bytes;
}

/** Resolves on 'drain'; rejects when the response closes or errs first, or after `stallTimeoutMs`. */
function drained(response: Writable, stallTimeoutMs: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const settle = (error?: Error): void => {
      clearTimeout(timer);
      response.off('drain', onDrain);
      response.off('close', onClose);
      response.off('error', onError);
      if (error === undefined) resolve();
      else reject(error);
    };
    const onDrain = (): void => settle();
    const onClose = (): void => settle(new ClientGoneError('the client closed the connection'));
    const onError = (error: Error): void => settle(new ClientGoneError(`the connection failed: ${error.message}`));
    const timer = setTimeout(
      () => settle(new ClientGoneError(`the client took no data for ${stallTimeoutMs} ms`)),
      stallTimeoutMs,
    );
    response.on('drain', onDrain);
    response.on('close', onClose);
    response.on('error', onError);
    if (response.destroyed) onClose();
  });
}
