// The three ways storage fails, each with its own meaning for the node:
//  - StorageRefusedError: the node must not start on this data dir (wrong node, newer format, corrupt,
//    unusable path). The message says what is wrong and what the operator can do about it.
//  - StorageFatalError: an I/O operation failed at runtime. The store is now in an unknown state, so the
//    node logs the error and exits non-zero; it never keeps running on it.
//  - CorruptDataError: bytes that should decode (a command, a stored record) do not. At open time the
//    storage turns it into a StorageRefusedError; at runtime it is as fatal as an I/O error.

export class StorageRefusedError extends Error {
  override readonly name = 'StorageRefusedError';

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export class StorageFatalError extends Error {
  override readonly name = 'StorageFatalError';

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export class CorruptDataError extends Error {
  override readonly name = 'CorruptDataError';

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/**
 * The message of any thrown value, with its code and cause chain, for wrapping it in one of the errors
 * above. LevelDB errors say little at the top ("Database failed to open") and the reason in `cause`.
 */
export function describeError(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current !== undefined && current !== null; depth++) {
    parts.push(describeOne(current));
    current = current instanceof Error ? current.cause : undefined;
  }
  return parts.join(': ');
}

function describeOne(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = 'code' in error ? error.code : undefined;
  return typeof code === 'string' && !error.message.includes(code) ? `${code} ${error.message}` : error.message;
}
