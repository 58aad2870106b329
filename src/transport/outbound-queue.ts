// The per-peer outbound queue: bounded in messages and in (estimated) bytes, dropping the oldest
// messages first when a bound is exceeded.
//
// Why drop the oldest: Raft tolerates the loss of any message, and newer messages supersede older
// ones to the same peer (a newer heartbeat carries a newer commit and read round). Dropping from the
// head also keeps the freshest term information flowing. Appends are the exception that must not go
// silently: the leader counts them in flight, so the queue counts dropped appends and its owner
// tells the core (which then probes and resends from what the follower has). The core's in-flight
// byte bound keeps appends well below the queue's, so this happens only when something is wrong.

import type { Message } from '../raft/types.js';

/** Fixed per-message cost in the estimate: header fields, ids, record overhead. */
const MESSAGE_OVERHEAD_BYTES = 64;
/** Per-entry cost besides its data: index, term, type, bin header. */
const ENTRY_OVERHEAD_BYTES = 24;

/**
 * A cheap upper-bound-ish estimate of a message's encoded size, so bounding the queue does not
 * require encoding each message twice. Only appends carry payload.
 */
export function estimateMessageBytes(message: Message): number {
  let bytes = MESSAGE_OVERHEAD_BYTES;
  if (message.type === 'app') {
    for (const entry of message.entries) bytes += ENTRY_OVERHEAD_BYTES + entry.data.byteLength;
  }
  return bytes;
}

export class OutboundQueue {
  // A deque as an array plus a head offset, so dropping from the head is O(1) amortized even when a
  // stalled peer keeps the queue at its bound while new messages keep coming.
  private items: Message[] = [];
  private sizes: number[] = [];
  private head = 0;
  private queuedBytes = 0;
  private droppedAppendCount = 0;

  constructor(
    readonly maxMessages: number,
    readonly maxBytes: number,
  ) {
    if (!(maxMessages >= 1) || !(maxBytes >= 1)) throw new RangeError('queue bounds must be positive');
  }

  get length(): number {
    return this.items.length - this.head;
  }

  get bytes(): number {
    return this.queuedBytes;
  }

  /** Appends dropped by the bounds so far (the leader counted them in flight). */
  get droppedAppends(): number {
    return this.droppedAppendCount;
  }

  /**
   * Appends `message` and drops the oldest messages until both bounds hold again; returns how many
   * were dropped. Invariant: the newest message is always kept, even alone above maxBytes (a
   * single large append is the core's business: its maxMsgBytes bounds it).
   */
  push(message: Message): number {
    const size = estimateMessageBytes(message);
    this.items.push(message);
    this.sizes.push(size);
    this.queuedBytes += size;
    let dropped = 0;
    while (this.length > 1 && (this.length > this.maxMessages || this.queuedBytes > this.maxBytes)) {
      if (this.items[this.head]?.type === 'app') this.droppedAppendCount++;
      this.queuedBytes -= this.sizes[this.head] ?? 0;
      this.head++;
      dropped++;
    }
    this.compact();
    return dropped;
  }

  /**
   * Removes and returns the oldest messages, in order: at most `max` of them, carrying at most
   * `maxEntries` entries in all, but always at least one message (a single append is bounded by the
   * core's maxMsgBytes, and codec.ts MAX_ENTRIES_PER_BODY is chosen to hold any one append).
   */
  take(max: number, maxEntries = Number.POSITIVE_INFINITY): Message[] {
    const limit = Math.min(this.items.length, this.head + max);
    let end = this.head;
    let entries = 0;
    while (end < limit) {
      const message = this.items[end];
      const carried = message?.type === 'app' ? message.entries.length : 0;
      if (end > this.head && entries + carried > maxEntries) break;
      entries += carried;
      end++;
    }
    const batch = this.items.slice(this.head, end);
    for (let i = this.head; i < end; i++) this.queuedBytes -= this.sizes[i] ?? 0;
    this.head = end;
    this.compact();
    return batch;
  }

  /** Drops everything; returns how many messages were dropped. */
  clear(): number {
    const dropped = this.length;
    this.items = [];
    this.sizes = [];
    this.head = 0;
    this.queuedBytes = 0;
    return dropped;
  }

  private compact(): void {
    if (this.head === this.items.length) {
      this.items = [];
      this.sizes = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      // Release the dropped prefix once it dominates the arrays (amortized O(1) per message).
      this.items = this.items.slice(this.head);
      this.sizes = this.sizes.slice(this.head);
      this.head = 0;
    }
  }
}
