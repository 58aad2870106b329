// The simulation's clients: each runs one operation at a time against the node it believes leads,
// and the history of what they saw is what the linearizability checker reads.
//
// Operations: plain puts and deletes (half of them with an idempotency key), linearizable gets, and
// read-modify-writes on the key a client read last: a conditional write (If-Match the modIndex it
// read, If-None-Match when it read the key absent; a put, or now and then a delete) or a one-key
// transaction (compare value = what it read, or exists = false; success: put + get; failure: get).
// Every conditional write and transaction carries an idempotency key.
//
// Versions and values: every write writes a value no other write uses (`v<op id>`), so the modIndex
// a get returned (the log index of the write that left the value) names exactly the value it
// returned, and "modIndex = M" is the same condition as "value = V": the history records every
// conditional write as cas(V -> new), which the checker understands.
//
// Retries: an attempt whose outcome is unknown (its node crashed, it timed out, the node refused a
// retry while an earlier attempt may still apply) is sent again with the same idempotency key, to the
// node the client now believes leads, while the operation is younger than RETRY_WINDOW_STEPS and
// has had fewer than MAX_ATTEMPTS attempts. Every attempt of an operation is ONE operation in the
// history: invoked when the first attempt was, completed with the answer of the attempt that got
// one (the first answer, if the request was applied before: a replay), unknown if none did. An
// answer to an attempt the client gave up on is never heard (the real client closed that connection).
import type { SeededRandom } from '../../../src/raft/prng.js';
import type { Command } from '../../../src/storage/command.js';
import type { RequestAnswer } from '../../../src/storage/apply-request.js';
import type { RequestResult } from '../../../src/storage/idempotency.js';
import type { StoredValue } from '../../../src/storage/key-meta.js';
import type { Idempotency, Request } from '../../../src/storage/request.js';
import type { Operation } from '../check/history.js';
import { encodeLegacyCommand } from './legacy-command.js';
import type { ProposalOutcome, ProposeResult, SimNode } from './node.js';

/** Steps per tick: message delays are 1-3 steps, so a round trip takes about a tick. */
export const STEPS_PER_TICK = 4;
/** A client gives up on an attempt after this many ticks: its outcome is then unknown. */
export const CLIENT_TIMEOUT_TICKS = 40;
/** The most attempts of one operation. */
const MAX_ATTEMPTS = 5;
/** No attempt of an operation starts later than this many steps after its first. */
export const RETRY_WINDOW_STEPS = 3 * CLIENT_TIMEOUT_TICKS * STEPS_PER_TICK;
/**
 * The idempotency records' time to live, in steps (a record's `at` is the step its write was
 * proposed). Longer than the retry window, so a retry never finds its record evicted: a record R is
 * evicted only by one whose `at` is more than a TTL after R's, and such a record is applied after
 * every entry proposed before it (an entry of an older term precedes it in every log, one of the
 * same term was proposed by the same leader before it), so after every attempt of R's operation.
 * Shorter than a long schedule, so eviction happens, on every node alike, across snapshots and restarts.
 */
export const RECORD_TTL_STEPS = 2 * RETRY_WINDOW_STEPS;
const KEYS = ['a', 'b', 'c'];

const utf8 = new TextEncoder();
const text = new TextDecoder();
const KEY_BYTES = new Map(KEYS.map((key) => [key, utf8.encode(key)]));

function keyBytes(key: string): Uint8Array {
  const bytes = KEY_BYTES.get(key);
  if (bytes === undefined) throw new Error(`the simulation's keys are ${KEYS.join(', ')}, not ${key}`);
  return bytes;
}

/** One operation as the client builds it up; becomes an Operation of the history. */
interface SimOp {
  readonly id: number;
  readonly client: number;
  readonly key: string;
  readonly kind: Operation['kind'];
  /** put, cas: the value written (null: a conditional delete); get: the value read. */
  value: string | null;
  /** cas: the value expected (null: absent); undefined for the others. */
  readonly expected: string | null | undefined;
  readonly invoke: number;
  complete: number | null;
  status: Operation['status'];
  succeeded: boolean | undefined;
  observed: string | null | undefined;
  modIndex: number | undefined;
  /** What is proposed; null for a get. */
  readonly command: Command | null;
  /** The plain workload's entry, proposed as these bytes rather than `command` (legacy-command.ts). */
  legacyEntry: Uint8Array | null;
  /** A cas sent as a transaction (its answer is a transaction's). */
  readonly viaTxn: boolean;
  attempts: number;
  /** Whether some attempt may have been applied: then a definite refusal of a retry settles nothing. */
  mayHaveApplied: boolean;
  /** Where the last attempt was proposed, to count retries that reach another leader. */
  proposedAt: { readonly node: number; readonly term: number } | null;
}

interface Client {
  readonly id: number;
  busy: {
    readonly op: SimOp;
    /** The attempt in flight: its id (what the node answers to), node and deadline; null between attempts. */
    attempt: { readonly id: number; readonly node: number; readonly deadline: number } | null;
    /** When the next attempt goes, while none is in flight. */
    retryAt: number;
  } | null;
  leaderHint: number;
  /** The last key this client read, with the value and modIndex it saw; used by its next cas. */
  lastRead: { readonly key: string; readonly value: string | null; readonly modIndex: number } | null;
}

export interface ClientStats {
  operations: number;
  operationsOk: number;
  operationsUnknown: number;
  /** Conditional writes and transactions answered, and how many of them succeeded. */
  casAnswered: number;
  casSucceeded: number;
  /** Attempts after the first. */
  retries: number;
  /** Answers that were a replay of the first answer (the request had been applied by an earlier attempt). */
  replays: number;
  /** Retries proposed to another leader (node or term) than the attempt before them. */
  retriesToNewLeader: number;
}

/**
 * versioned: the workload above. plain: the clients of before conditional writes (put 45%, delete
 * 10%, get 45%; no idempotency keys, so no retries; a crash noticed only by a timeout), drawing the
 * same random numbers in the same order as they did, and proposing the same entry bytes (the core
 * sizes messages by them; legacy-command.ts): schedules recorded then replay as they ran.
 */
export type Workload = 'versioned' | 'plain';

export class SimClients {
  private readonly clients: Client[];
  private readonly ops: SimOp[] = [];
  /** Attempts in flight by id: what a node's answer is for. */
  private readonly attempts = new Map<number, Client>();
  private nextAttempt = 1;
  private readonly counts = { retries: 0, replays: 0, retriesToNewLeader: 0 };

  constructor(
    count: number,
    private readonly nodes: readonly SimNode[],
    private readonly random: SeededRandom,
    private readonly now: () => number,
    private readonly nextCtx: () => number,
    private readonly workload: Workload = 'versioned',
  ) {
    this.clients = Array.from({ length: count }, (_, id) => ({ id, busy: null, leaderHint: 0, lastRead: null }));
  }

  get anyBusy(): boolean {
    return this.clients.some((c) => c.busy !== null);
  }

  /** One step: attempts that timed out, retries that are due, and (if allowed) new operations. */
  run(mayStart: boolean): void {
    const now = this.now();
    for (const client of this.clients) {
      const busy = client.busy;
      if (busy?.attempt != null && busy.attempt.deadline <= now) this.attemptUnknown(client);
      if (client.busy !== null) {
        if (client.busy.attempt === null && client.busy.retryAt <= now) this.attempt(client);
        continue;
      }
      if (!mayStart || !this.random.chance(0.15)) continue;
      this.start(client);
    }
  }

  /** A node crashed: its connections broke, so the attempts in flight there have an unknown outcome. */
  nodeCrashed(node: number): void {
    if (this.workload === 'plain') return;
    for (const client of this.clients) if (client.busy?.attempt?.node === node) this.attemptUnknown(client);
  }

  /** The entry an attempt waited for was applied (outcome), or another entry took its index (null). */
  proposalResolved(attemptId: number, outcome: ProposalOutcome | null): void {
    const client = this.current(attemptId);
    if (client === null) return;
    if (outcome === null) this.attemptRefused(client);
    else this.answered(client, outcome.answer, outcome.index);
  }

  readServed(attemptId: number, read: StoredValue | null): void {
    const client = this.current(attemptId);
    const op = client?.busy?.op;
    if (client == null || op === undefined) return;
    op.value = read === null ? null : text.decode(read.value);
    if (read !== null) op.modIndex = read.meta.modIndex;
    client.lastRead = { key: op.key, value: op.value, modIndex: read?.meta.modIndex ?? 0 };
    this.finish(client, 'ok');
  }

  readFailed(attemptId: number): void {
    const client = this.current(attemptId);
    if (client !== null) this.attemptRefused(client);
  }

  /** The clients stop: operations still in flight stay unknown. */
  abandonAll(): void {
    for (const client of this.clients) this.abandon(client);
  }

  history(): Operation[] {
    return this.ops.map((op) => {
      const base: Operation = {
        id: op.id,
        client: op.client,
        key: op.key,
        kind: op.kind,
        value: op.kind === 'get' && op.status !== 'ok' ? null : op.value,
        invoke: op.invoke,
        complete: op.complete,
        status: op.status,
      };
      if (op.status !== 'ok') return op.kind === 'cas' ? { ...base, expected: op.expected ?? null } : base;
      return {
        ...base,
        ...(op.kind === 'cas' ? { expected: op.expected ?? null, succeeded: op.succeeded === true } : {}),
        ...(op.observed === undefined ? {} : { observed: op.observed }),
        ...(op.modIndex === undefined ? {} : { modIndex: op.modIndex }),
      };
    });
  }

  stats(): ClientStats {
    const cas = this.ops.filter((op) => op.kind === 'cas' && op.status === 'ok');
    return {
      operations: this.ops.length,
      operationsOk: this.ops.filter((o) => o.status === 'ok').length,
      operationsUnknown: this.ops.filter((o) => o.status === 'unknown').length,
      casAnswered: cas.length,
      casSucceeded: cas.filter((op) => op.succeeded === true).length,
      ...this.counts,
    };
  }

  // ---------------------------------------------------------------------------------------------

  private start(client: Client): void {
    const id = this.ops.length + 1;
    if (this.workload === 'plain') {
      const op = this.plainOp(client, id);
      this.ops.push(op);
      client.busy = { op, attempt: null, retryAt: this.now() };
      this.attempt(client);
      return;
    }
    const roll = this.random.float();
    const read = client.lastRead;
    let op: SimOp;
    // Writes are 55% of the operations, as before conditional writes existed: 28% plain, 27% cas.
    if (roll < 0.22) op = this.plainWrite(client, id, 'put');
    else if (roll < 0.28) op = this.plainWrite(client, id, 'delete');
    else if (roll < 0.73 || read === null)
      op = this.newOp(client, id, this.random.pick(KEYS), 'get', null, null, false);
    else op = this.readModifyWrite(client, id, read, roll < 0.9 ? 'condition' : 'txn');
    this.ops.push(op);
    client.busy = { op, attempt: null, retryAt: this.now() };
    this.attempt(client);
  }

  private newOp(
    client: Client,
    id: number,
    key: string,
    kind: Operation['kind'],
    value: string | null,
    command: Command | null,
    viaTxn: boolean,
    expected?: string | null,
  ): SimOp {
    return {
      id,
      client: client.id,
      key,
      kind,
      value,
      expected,
      invoke: this.now(),
      complete: null,
      status: 'unknown',
      succeeded: undefined,
      observed: undefined,
      modIndex: undefined,
      command,
      legacyEntry: null,
      viaTxn,
      attempts: 0,
      mayHaveApplied: false,
      proposedAt: null,
    };
  }

  /** An operation of the plain workload, drawn as the clients of before conditional writes drew it. */
  private plainOp(client: Client, id: number): SimOp {
    const key = this.random.pick(KEYS);
    const roll = this.random.float();
    const kind = roll < 0.45 ? 'put' : roll < 0.55 ? 'delete' : 'get';
    const value = kind === 'put' ? `v${id}` : null;
    const bytes = keyBytes(key);
    const command: Command | null =
      kind === 'get'
        ? null
        : value === null
          ? { op: 'delete', key: bytes }
          : { op: 'put', key: bytes, value: utf8.encode(value) };
    const op = this.newOp(client, id, key, kind, value, command, false);
    if (kind !== 'get') op.legacyEntry = encodeLegacyCommand(id, kind, key, value);
    return op;
  }

  private plainWrite(client: Client, id: number, kind: 'put' | 'delete'): SimOp {
    const key = this.random.pick(KEYS);
    const bytes = keyBytes(key);
    const value = kind === 'put' ? `v${id}` : null;
    const request: Request =
      value === null ? { kind: 'delete', key: bytes } : { kind: 'put', key: bytes, value: utf8.encode(value) };
    const command: Command = this.random.chance(0.5)
      ? { op: 'request', request, idempotency: idempotency(id) }
      : value === null
        ? { op: 'delete', key: bytes }
        : { op: 'put', key: bytes, value: utf8.encode(value) };
    return this.newOp(client, id, key, kind, value, command, false);
  }

  /**
   * A cas on the key the client read last, expecting what it read: by its modIndex (If-Match) or its
   * absence (If-None-Match: *), or by its value in a transaction. Values are unique per write, so the
   * modIndex of the value read is the same condition as that value (see the file comment).
   */
  private readModifyWrite(
    client: Client,
    id: number,
    read: NonNullable<Client['lastRead']>,
    how: 'condition' | 'txn',
  ): SimOp {
    client.lastRead = null;
    const key = keyBytes(read.key);
    const value = how === 'condition' && this.random.chance(0.2) ? null : `v${id}`;
    let request: Request;
    if (how === 'txn') {
      const compare =
        read.value === null
          ? { key, target: 'exists' as const, exists: false }
          : { key, target: 'value' as const, cmp: '=' as const, bytes: utf8.encode(read.value) };
      request = {
        kind: 'txn',
        compare: [compare],
        success: [
          { op: 'put', key, value: utf8.encode(value ?? '') },
          { op: 'get', key },
        ],
        failure: [{ op: 'get', key }],
      };
    } else {
      const condition = read.value === null ? { absent: true as const } : { modIndex: read.modIndex };
      request =
        value === null
          ? { kind: 'delete', key, condition }
          : { kind: 'put', key, value: utf8.encode(value), condition };
    }
    const command: Command = { op: 'request', request, idempotency: idempotency(id) };
    return this.newOp(client, id, read.key, 'cas', value, command, how === 'txn', read.value);
  }

  /** Sends the operation's next attempt to the node the client believes leads (or, at times, any). */
  private attempt(client: Client): void {
    const busy = client.busy;
    if (busy === null) return;
    const op = busy.op;
    const now = this.now();
    op.attempts++;
    if (op.attempts > 1) this.counts.retries++;
    const target = this.random.chance(0.7) ? client.leaderHint : this.random.int(this.nodes.length);
    const node = this.nodes[target];
    const attemptId = this.nextAttempt++;
    busy.attempt = { id: attemptId, node: target, deadline: now + CLIENT_TIMEOUT_TICKS * STEPS_PER_TICK };
    this.attempts.set(attemptId, client);
    if (node === undefined || !node.up) {
      client.leaderHint = this.random.int(this.nodes.length);
      this.attemptRefused(client); // connection refused: nothing was sent
      return;
    }
    if (op.command === null) {
      if (!node.read(attemptId, this.nextCtx(), keyBytes(op.key))) {
        client.leaderHint = this.hintFrom(node);
        this.attemptRefused(client);
      }
      return;
    }
    // `at` is the proposing node's clock: each attempt is proposed anew.
    const command: Command =
      op.command.op === 'request' && op.command.idempotency !== undefined
        ? { ...op.command, idempotency: { ...op.command.idempotency, at: now } }
        : op.command;
    const result: ProposeResult | null = node.propose(attemptId, op.legacyEntry ?? command);
    if (result === null || result.kind === 'refused') {
      client.leaderHint = this.hintFrom(node);
      this.attemptRefused(client); // refused before proposing: this attempt is not applied
    } else if (result.kind === 'answered') {
      this.answered(client, result.answer, null);
    } else {
      if (op.attempts > 1 && (op.proposedAt?.node !== target || op.proposedAt.term !== result.term)) {
        this.counts.retriesToNewLeader++;
      }
      op.proposedAt = { node: target, term: result.term };
    }
  }

  /** The client whose attempt in flight is `attemptId`, or null (an attempt it gave up on). */
  private current(attemptId: number): Client | null {
    return this.attempts.get(attemptId) ?? null;
  }

  /** The attempt definitely did nothing (refused, overwritten, a read that failed). */
  private attemptRefused(client: Client): void {
    const busy = client.busy;
    if (busy === null) return;
    if (!busy.op.mayHaveApplied) {
      this.finish(client, 'fail');
      return;
    }
    // An earlier attempt may still apply: the operation stays unknown unless a retry gets an answer.
    this.retryOrAbandon(client);
  }

  /** The attempt's outcome is unknown (timeout, a crash of its node). */
  private attemptUnknown(client: Client): void {
    const busy = client.busy;
    if (busy === null) return;
    if (busy.op.command === null) {
      this.abandon(client); // a read that never answered tells nothing
      return;
    }
    busy.op.mayHaveApplied = true;
    this.retryOrAbandon(client, true);
  }

  /**
   * Schedules the next attempt after a short pause (to a random node when `anyNode`: the one it
   * tried is down or cut off, as far as the client can tell), or gives up when the operation carries
   * no idempotency key, has had its attempts, or is past the retry window.
   */
  private retryOrAbandon(client: Client, anyNode = false): void {
    const busy = client.busy;
    if (busy === null) return;
    const op = busy.op;
    const retryable = op.command?.op === 'request' && op.command.idempotency !== undefined;
    if (!retryable || op.attempts >= MAX_ATTEMPTS) {
      this.abandon(client);
      return;
    }
    const retryAt = this.now() + STEPS_PER_TICK * (1 + this.random.int(4));
    if (retryAt - op.invoke > RETRY_WINDOW_STEPS) {
      this.abandon(client);
      return;
    }
    if (anyNode) client.leaderHint = this.random.int(this.nodes.length);
    this.endAttempt(client);
    busy.retryAt = retryAt;
  }

  /**
   * A write's answer: `answer` is null for a plain put or delete; `appliedAt` is the index of the
   * entry that answered (null when none did: the planted bug conditionAtPropose).
   */
  private answered(client: Client, answer: RequestAnswer | null, appliedAt: number | null): void {
    const op = client.busy?.op;
    if (op === undefined) return;
    if (answer === null) {
      if (op.kind === 'put' && appliedAt !== null) op.modIndex = appliedAt;
      this.finish(client, 'ok');
      return;
    }
    if (answer.kind === 'mismatch') {
      throw new Error(
        `op #${op.id}: idempotency key reused at index ${answer.index}: the simulated client sent two requests under one key`,
      );
    }
    if (answer.kind === 'replayed') this.counts.replays++;
    // A replay answers with the first application's index, as the API does.
    this.takeResult(op, answer.result, answer.kind === 'replayed' ? answer.index : appliedAt);
    this.finish(client, 'ok');
  }

  /** What the answer says about the operation; `index`: the entry that wrote, when known. */
  private takeResult(op: SimOp, result: RequestResult, index: number | null): void {
    switch (result.kind) {
      case 'written':
        if (op.kind === 'cas') op.succeeded = true;
        if (op.value !== null && index !== null) op.modIndex = index;
        return;
      case 'failed':
        op.succeeded = false;
        // A 412 names the key's metadata then, or says it was absent.
        if (result.current === null) op.observed = null;
        else op.modIndex = result.current.modIndex;
        return;
      case 'txn': {
        op.succeeded = result.succeeded;
        const first = result.results[0];
        if (result.succeeded && first?.op === 'put') op.modIndex = first.modIndex;
        if (!result.succeeded && first?.op === 'get')
          op.observed = first.value === null ? null : text.decode(first.value);
        return;
      }
      case 'too_large':
        throw new Error(`op #${op.id}: a transaction of the simulation answered too_large`);
    }
  }

  private finish(client: Client, status: 'ok' | 'fail'): void {
    const busy = client.busy;
    if (busy === null) return;
    busy.op.status = status;
    busy.op.complete = this.now();
    this.endAttempt(client);
    client.busy = null;
  }

  /** The client stops waiting: a write's outcome is unknown; a read that never answered tells nothing. */
  private abandon(client: Client): void {
    if (client.busy === null) return;
    this.endAttempt(client);
    client.busy = null;
    client.leaderHint = this.random.int(this.nodes.length);
  }

  /** The attempt in flight is over: an answer to it is no longer heard. */
  private endAttempt(client: Client): void {
    const attempt = client.busy?.attempt;
    if (attempt == null) return;
    this.attempts.delete(attempt.id);
    client.busy!.attempt = null;
  }

  private hintFrom(node: SimNode): number {
    const leader = node.core?.status().leader ?? '';
    const index = this.nodes.findIndex((n) => n.id === leader);
    return index >= 0 ? index : this.random.int(this.nodes.length);
  }
}

/** The idempotency of operation `id`: one key per operation, the same request under it every time. */
function idempotency(id: number): Idempotency {
  return { id: `s${id}`, fingerprint: utf8.encode(`op ${id}`), at: 0 };
}
