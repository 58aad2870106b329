// Whether a node's store can still be trusted. The first failed write or read marks it failed: from
// then on every operation refuses to run, because after an I/O error the state on disk is unknown
// and the node must stop rather than go on from a guess.

import { StorageFatalError, describeError } from './errors.js';

export class StoreHealth {
  private failure: StorageFatalError | null = null;
  private closed = false;

  constructor(readonly location: string) {}

  get usable(): boolean {
    return this.failure === null && !this.closed;
  }

  markClosed(): void {
    this.closed = true;
  }

  /** Closed on purpose (and not failed): background work that finds it so just stops. */
  get isClosed(): boolean {
    return this.closed && this.failure === null;
  }

  /** Throws StorageFatalError when an earlier operation failed or the store is closed. */
  assertUsable(operation: string): void {
    if (this.failure !== null) {
      throw new StorageFatalError(
        `${operation} refused: an earlier storage operation failed and the store in ${this.location} is in an unknown state (${this.failure.message})`,
        { cause: this.failure },
      );
    }
    if (this.closed) throw new StorageFatalError(`${operation} called on closed storage ${this.location}`);
  }

  /** Records an I/O failure and returns the error to throw: this and every later operation fails. */
  fail(what: string, error: unknown): StorageFatalError {
    const fatal = new StorageFatalError(`${what} failed in ${this.location}: ${describeError(error)}`, {
      cause: error,
    });
    this.failure ??= fatal;
    return fatal;
  }
}
