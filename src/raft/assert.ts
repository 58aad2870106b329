// Invariant assertions, TigerBeetle style: a broken invariant means the node's state can no longer be
// trusted, so the core stops with a precise message rather than risk replicating corruption.
// Pure (no node:assert), so the core stays free of Node imports.

export class RaftInvariantError extends Error {
  override readonly name = 'RaftInvariantError';
}

export function assert(condition: unknown, message: string | (() => string)): asserts condition {
  if (!condition) {
    throw new RaftInvariantError(typeof message === 'string' ? message : message());
  }
}
