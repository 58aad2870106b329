// The history of a chaos run: every operation in the checker's Operation format, plus what the
// report needs (which node was asked, why it failed, when the client gave up on an unknown one).
// Kept in memory for the checker and appended to history.jsonl as each operation completes.
// Bounded: past `maxOps` no new operation may start (the run notes that the cap was reached).
import { createWriteStream, type WriteStream } from 'node:fs';
import type { OpKind, Operation } from '../check/history.js';
import type { Outcome } from './outcome.js';

export interface ChaosOp extends Operation {
  /** The node the request was sent to. */
  readonly node: string;
  /** Why it ended as it did: "200", "503 no_leader", "ECONNREFUSED", "timeout"... */
  readonly reason: string;
  /** When the client got its answer or gave up. For ok/fail it equals `complete`. */
  readonly end: number;
  /** The final reads after the run (not part of the workload's statistics). */
  readonly final?: true;
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

  /** Records a finished operation; `end` is when the answer (or the give-up) came. */
  record(
    begun: {
      id: number;
      client: number;
      node: string;
      kind: OpKind;
      key: string;
      value: string | null;
      invoke: number;
    },
    outcome: Outcome,
    end: number,
    final = false,
  ): ChaosOp {
    const op: ChaosOp = {
      id: begun.id,
      client: begun.client,
      key: begun.key,
      kind: begun.kind,
      // A put carries its value whatever happened; a get only carries what it read.
      value:
        begun.kind === 'put' ? begun.value : begun.kind === 'get' && outcome.status === 'ok' ? outcome.value : null,
      invoke: begun.invoke,
      complete: outcome.status === 'unknown' ? null : end,
      status: outcome.status,
      node: begun.node,
      reason: outcome.reason,
      end,
      ...(final ? { final: true as const } : {}),
    };
    this.ops.push(op);
    this.counts[op.status]++;
    if (outcome.unexpected) this.unexpected++;
    this.out?.write(`${JSON.stringify(op)}\n`);
    return op;
  }

  async close(): Promise<void> {
    const out = this.out;
    if (out === null) return;
    await new Promise<void>((resolve) => out.end(() => resolve()));
  }
}
