// The key-value state machine of one node: what applying a committed entry does (the command
// format is this module's: the API encodes client writes with it), the applied index, and reads of
// the applied state. NodeStorage writes the apply operations in the same LevelDB batch as the Ready's
// log entries; this class prepares them and, once the batch is durable, moves the applied index.
//
// Invariant: the stored applied index and the key changes of every entry up to it are written in
// one synced batch, so the state on disk is always exactly the state at the applied index.

import { assert } from '../raft/assert.js';
import { EntryType, type Entry } from '../raft/types.js';
import { SM_APPLIED, encodeApplied, plainBytes, type AppliedState } from './codec.js';
import { decodeCommand, type Command } from './command.js';
import { delOp, putOp, type ByteBatchOperation, type ByteSublevel, type Database } from './database.js';
import { CorruptDataError, describeError } from './errors.js';
import { scanKv, type ScanOptions, type ScanPage } from './kv-scan.js';

export { encodeCommand, decodeCommand, MAX_COMMAND_KEY_BYTES, type Command } from './command.js';

/** What applying one committed entry did to the state machine. */
export interface ApplyOutcome {
  readonly index: number;
  readonly term: number;
  readonly op: 'put' | 'delete' | 'noop';
}

export class KvStateMachine {
  private readonly handles: Database;
  private appliedState: AppliedState;

  constructor(handles: Database, applied: AppliedState) {
    this.handles = handles;
    this.appliedState = applied;
  }

  /** The last applied entry ({0, 0} when none): the core's `applied` at start-up. */
  get applied(): AppliedState {
    return { index: this.appliedState.index, term: this.appliedState.term };
  }

  /** The state machine's sublevel, for read queries on the main thread. */
  get kv(): ByteSublevel {
    return this.handles.kv;
  }

  /**
   * Committed entries arrive in order, from applied + 1, and are in the durable log once their
   * batch is written: `logTerm` answers the term the log will hold at an index (undefined beyond it).
   */
  assertApplyContract(committed: readonly Entry[], logTerm: (index: number) => number | undefined, lastIndex: number): void {
    let expected = this.appliedState.index + 1;
    for (const entry of committed) {
      assert(entry.index === expected, () => `writeReady: committed entry ${entry.index} given, ${expected} expected next`);
      const term = logTerm(entry.index);
      assert(term !== undefined, () => `writeReady: committed entry ${entry.index} is beyond the durable log (${lastIndex})`);
      assert(term === entry.term, () => `writeReady: committed entry ${entry.index} has term ${entry.term}, the log says ${term}`);
      expected++;
    }
  }

  /**
   * Adds the changes of `committed` and the new applied index to `ops`; returns what each entry did
   * and the new applied state (null when nothing is applied).
   */
  addApplyOperations(committed: readonly Entry[], ops: ByteBatchOperation[]): { outcomes: ApplyOutcome[]; applied: AppliedState | null } {
    const outcomes = committed.map((entry) => this.applyOperation(entry, ops));
    const last = committed[committed.length - 1];
    if (last === undefined) return { outcomes, applied: null };
    const applied = { index: last.index, term: last.term };
    ops.push(putOp(this.handles.sm, SM_APPLIED, encodeApplied(applied)));
    return { outcomes, applied };
  }

  /** The batch holding the apply is durable. */
  rememberApplied(applied: AppliedState): void {
    this.appliedState = applied;
  }

  /** The value of `key` in the applied state, or undefined. */
  getSync(key: Uint8Array): Uint8Array | undefined {
    const value = this.handles.kv.getSync(key);
    return value === undefined ? undefined : plainBytes(value);
  }

  /** One page of the applied state in key order; continue with `start: page.nextStart`. */
  async scan(options: ScanOptions): Promise<ScanPage> {
    return scanKv(this.handles.kv, options);
  }

  /** Adds the state-machine change of `entry` to `ops` and says what it was. */
  private applyOperation(entry: Entry, ops: ByteBatchOperation[]): ApplyOutcome {
    const base = { index: entry.index, term: entry.term };
    if (entry.type !== EntryType.Normal) {
      throw new CorruptDataError(`entry ${entry.index} (term ${entry.term}) has type ${entry.type}, which this build cannot apply`);
    }
    if (entry.data.length === 0) return { ...base, op: 'noop' }; // a new leader's empty entry
    let command: Command;
    try {
      command = decodeCommand(entry.data);
    } catch (error) {
      throw new CorruptDataError(`entry ${entry.index} (term ${entry.term}) holds no valid command: ${describeError(error)}`, {
        cause: error,
      });
    }
    if (command.op === 'barrier') return { ...base, op: 'noop' };
    if (command.op === 'put') ops.push(putOp(this.handles.kv, command.key, command.value));
    else ops.push(delOp(this.handles.kv, command.key));
    return { ...base, op: command.op };
  }
}
