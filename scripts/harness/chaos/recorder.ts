// The history of a chaos run: every operation in the checker's Operation format, plus what the
// report needs (which node was asked, why it failed, when the client gave up on an unknown one).
// Kept in memory for the checker and appended to history.jsonl as each operation completes.
// Bounded: past `maxOps` no new operation may start (the run notes that the cap was reached).
// An operation retried under its idempotency key (retries.ts) is recorded once, when its last
// attempt ended.
import { createWriteStream, type WriteStream } from 'node:fs';
import type { OpKind, Operation } from '../check/history.js';
import type { Outcome } from './outcome.js';

export interface ChaosOp extends Operation {
  /** The node the request was sent to (of its last attempt, when it was retried). */
  readonly node: string;
  /** Why it ended as it did: "200", "503 no_leader", "ECONNREFUSED", "timeout"... (its last attempt's). */
  readonly reason: string;
  /** When the client got its answer or gave up. For ok/fail it equals `complete`. */
  readonly end: number;
  /** The final reads after the run (not part of the workload's statistics). */
  readonly final?: true;
  /** How many times it was sent, when more than once (retries with its idempotency key). */
  readonly attempts?: number;
  /** Its answer was the first answer to its idempotency key, replayed (an earlier attempt was applied). */
  readonly replayed?: true;
  /** A cas sent as a one-key transaction (POST /txn), not as a conditional PUT or DELETE. */
  readonly viaTxn?: true;
}

/** An operation as it began, and how it was sent. */
export interface BegunOp {
  readonly id: number;
  readonly client: number;
  readonly node: string;
  readonly kind: OpKind;
  readonly key: string;
  /** put and cas: the value written (null: a conditional delete). */
  readonly value: string | null;
  readonly invoke: number;
  /** cas only: the value its condition requires (null: absent). */
  readonly expected?: string | null;
  readonly viaTxn?: boolean;
  /** Attempts made (1 when it was not retried). */
  readonly attempts?: number;
}

export interface Counts {
  ok: number;
  fail: number;
  unknown: number;
}

export class HistoryRecorder {
  readonly ops: ChaosOp[] = [];
  readonly counts: Counts = { ok: 0, fail: 0, unknown: 0 };
  unexpected = 0;
  private nextId = 0;
  private readonly out: WriteStream | null;

  constructor(
    private readonly maxOps: number,
    file: string | null,
  ) {
    this.out = file === null ? null : createWriteStream(file, { flags: 'w' });
  }

  /** Whether another operation may start. */
  get hasRoom(): boolean {
    return this.nextId < this.maxOps;
  }

  /**
   * Reserves an id for an operation about to start; null once the cap is reached. The final reads
   * pass `force` (they are few and bounded by their own retries, and the check needs them).
   */
  begin(force = false): number | null {
    if (!this.hasRoom && !force) return null;
    return this.nextId++;
  }

  /**
   * Records a finished operation; `end` is when the answer (or the give-up) came. `unexpected`
   * overrides the outcome's flag (an earlier attempt's answer may have been the unexpected one).
   */
  record(begun: BegunOp, outcome: Outcome, end: number, final = false, unexpected = outcome.unexpected): ChaosOp {
    const op = toOperation(begun, outcome, end, final);
    this.ops.push(op);
    this.counts[op.status]++;
    if (unexpected) this.unexpected++;
    this.out?.write(`${JSON.stringify(op)}\n`);
    return op;
  }

  async close(): Promise<void> {
    const out = this.out;
    if (out === null) return;
    await new Promise<void>((resolve) => out.end(() => resolve()));
  }
}

function toOperation(begun: BegunOp, outcome: Outcome, end: number, final: boolean): ChaosOp {
  // A cas answered without saying whether its condition held cannot be checked as answered; as an
  // operation of unknown outcome it is still sound (outcome.ts never produces one: a safety net).
  const status =
    begun.kind === 'cas' && outcome.status === 'ok' && outcome.succeeded === undefined ? 'unknown' : outcome.status;
  const ok = status === 'ok';
  const base = {
    id: begun.id,
    client: begun.client,
    key: begun.key,
    kind: begun.kind,
    // A put or cas carries its value whatever happened; a get only carries what it read.
    value:
      begun.kind === 'put' || begun.kind === 'cas' ? begun.value : begun.kind === 'get' && ok ? outcome.value : null,
    invoke: begun.invoke,
    complete: status === 'unknown' ? null : end,
    status,
  };
  const cas =
    begun.kind !== 'cas'
      ? {}
      : {
          expected: begun.expected ?? null,
          ...(ok ? { succeeded: outcome.succeeded === true } : {}),
          ...(ok && outcome.succeeded === false && outcome.observed !== undefined
            ? { observed: outcome.observed }
            : {}),
        };
  return {
    ...base,
    ...cas,
    ...(ok && outcome.modIndex !== undefined ? { modIndex: outcome.modIndex } : {}),
    node: begun.node,
    reason: outcome.reason,
    end,
    ...(final ? { final: true as const } : {}),
    ...(begun.attempts !== undefined && begun.attempts > 1 ? { attempts: begun.attempts } : {}),
    ...(ok && outcome.replayed === true ? { replayed: true as const } : {}),
    ...(begun.viaTxn === true ? { viaTxn: true as const } : {}),
  };
}
