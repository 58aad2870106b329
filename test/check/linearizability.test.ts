import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { OpKind, OpStatus, Operation } from '../../scripts/harness/check/history.js';
import { ConfigurationSet } from '../../scripts/harness/check/configuration-set.js';
import { DecidedSet } from '../../scripts/harness/check/decided-set.js';
import { checkLinearizability } from '../../scripts/harness/check/linearizability.js';
import type { CheckOptions, CheckResult, KeyVerdict } from '../../scripts/harness/check/linearizability.js';

// ---------------------------------------------------------------------------------------------------
// Hand-written histories

/** An operation without id; `history` numbers them in order. Status defaults from `complete`. */
type OpSpec = Omit<Operation, 'id' | 'client' | 'status'> & { client?: number; status?: OpStatus };

function history(...specs: OpSpec[]): Operation[] {
  return specs.map((spec, id) => ({
    ...spec,
    id,
    client: spec.client ?? id,
    status: spec.status ?? (spec.complete === null ? 'unknown' : 'ok'),
  }));
}

const put = (value: string, invoke: number, complete: number | null, key = 'k'): OpSpec => ({
  key,
  kind: 'put',
  value,
  invoke,
  complete,
});
const del = (invoke: number, complete: number | null, key = 'k'): OpSpec => ({
  key,
  kind: 'delete',
  value: null,
  invoke,
  complete,
});
const get = (value: string | null, invoke: number, complete: number | null, key = 'k'): OpSpec => ({
  key,
  kind: 'get',
  value,
  invoke,
  complete,
});
const failed = (spec: OpSpec): OpSpec => ({ ...spec, status: 'fail' });

/** Checks with and without the impossible-read screening: both paths must agree. */
function verdictOf(ops: readonly Operation[], options: CheckOptions = {}): CheckResult['result'] {
  const screened = checkLinearizability(ops, options);
  const searchOnly = checkLinearizability(ops, { ...options, prechecks: false });
  expect(searchOnly.result).toBe(screened.result);
  return screened.result;
}

function verdictFor(result: CheckResult, key: string): KeyVerdict {
  const verdict = result.keys.find((v) => v.key === key);
  if (verdict === undefined) throw new Error(`no verdict for key ${key}`);
  return verdict;
}

describe('linearizable histories', () => {
  it('accepts sequential puts and gets', () => {
    const ops = history(put('v1', 0, 1), get('v1', 2, 3), put('v2', 4, 5), get('v2', 6, 7), get('v2', 8, 9));
    expect(verdictOf(ops)).toBe('ok');
  });

  it('accepts a get concurrent with a put seeing the old value or the new one', () => {
    expect(verdictOf(history(put('v1', 0, 1), put('v2', 2, 10), get('v1', 3, 4)))).toBe('ok');
    expect(verdictOf(history(put('v1', 0, 1), put('v2', 2, 10), get('v2', 3, 4)))).toBe('ok');
  });

  it('treats operations that touch at one instant as concurrent', () => {
    // The get is invoked exactly when the put completes, so it may be ordered before it.
    expect(verdictOf(history(put('v1', 0, 5), get(null, 5, 6)))).toBe('ok');
  });

  it('accepts an empty history and a key that starts absent', () => {
    expect(checkLinearizability([])).toEqual({ result: 'ok', keys: [] });
    expect(verdictOf(history(get(null, 0, 1)))).toBe('ok');
  });

  it('uses the initial values', () => {
    const ops = history(get('v0', 0, 1), put('v1', 2, 3), get('v1', 4, 5));
    expect(verdictOf(ops, { initial: new Map([['k', 'v0']]) })).toBe('ok');
    expect(verdictOf(ops)).toBe('violation');
  });
});

describe('violations', () => {
  it('reports a stale read', () => {
    const ops = history(put('v1', 0, 10), put('v2', 20, 30), get('v1', 50, 51));
    expect(verdictOf(ops)).toBe('violation');
  });

  it('reports a lost write', () => {
    const ops = history(put('v1', 0, 10), get(null, 20, 21), get(null, 30, 31));
    expect(verdictOf(ops)).toBe('violation');
  });

  it('reports a read of a value never written', () => {
    const ops = history(put('v1', 0, 10), get('v9', 20, 21));
    expect(verdictOf(ops)).toBe('violation');
  });

  it('reports a value that reverts to an older one', () => {
    // Both values are concurrent with the gets' predecessors, so no single read is impossible: only the
    // order of the two gets is. The screening lets this through; the search must catch it.
    const ops = history(put('v1', 0, 100), put('v2', 0, 100), get('v1', 10, 11), get('v2', 20, 21), get('v1', 30, 31));
    expect(verdictOf(ops)).toBe('violation');
  });

  it('explains the violation with the operation and its time window', () => {
    const ops = history(put('v1', 0, 10), put('v2', 20, 30), get('v1', 50, 51));
    for (const prechecks of [true, false]) {
      const verdict = verdictFor(checkLinearizability(ops, { prechecks }), 'k');
      if (verdict.result !== 'violation') throw new Error(`expected a violation, got ${verdict.result}`);
      expect(verdict.failedOp).toBe(2);
      expect(verdict.message).toContain("get k -> 'v1' at [50, 51]");
      expect(verdict.message).toContain("put k 'v2' at [20, 30]");
      expect(verdict.culprits).toContain(2);
    }
  });

  it.each<[string, Operation[], string]>([
    ['a value never written', history(put('v1', 0, 10), get('v9', 20, 21)), "no operation ever wrote 'v9' to k"],
    [
      'a value written only later',
      history(get('v1', 1, 2), put('v1', 10, null)),
      "every write of 'v1' starts after the get completed",
    ],
    [
      'a value overwritten before the read',
      history(put('v1', 0, 10), put('v1', 5, 12), put('v2', 20, 30), get('v1', 50, 51)),
      "(put k 'v1' at [0, 10] (op #0, client 0), put k 'v1' at [5, 12] (op #1, client 1)) " +
        "is overwritten by put k 'v2' at [20, 30]",
    ],
    [
      'an initial value overwritten',
      history(put('v1', 0, 10), get(null, 20, 21)),
      "the initial value absent is overwritten by put k 'v1'",
    ],
  ])('says why a read is impossible: %s', (_, ops, reason) => {
    const verdict = verdictFor(checkLinearizability(ops), 'k');
    if (verdict.result !== 'violation') throw new Error(`expected a violation, got ${verdict.result}`);
    expect(verdict.message).toContain(reason);
    expect(verdict.failedOp).toBe(ops.find((op) => op.kind === 'get')?.id);
  });

  it('lists the longest linearizable prefix, the failed op and the ops concurrent with it', () => {
    const ops = history(put('v1', 0, 10), put('v2', 20, 30), put('v3', 40, 60), get('v1', 50, 51));
    const verdict = verdictFor(checkLinearizability(ops, { prechecks: false }), 'k');
    if (verdict.result !== 'violation') throw new Error(`expected a violation, got ${verdict.result}`);
    // The longest prefix is put v1, put v2, put v3 (which may precede the get); then the get fails,
    // with nothing else pending.
    expect(verdict.culprits).toEqual([0, 1, 2, 3]);
    expect(verdict.failedOp).toBe(3);
  });
});

describe('writes of unknown outcome', () => {
  it('lets an unknown write take effect late', () => {
    const ops = history(put('v1', 1, null), get(null, 10, 11), get('v1', 20, 21));
    expect(verdictOf(ops)).toBe('ok');
  });

  it('never makes an unknown write visible before its invoke', () => {
    const ops = history(get('v1', 1, 2), put('v1', 10, null));
    expect(verdictOf(ops)).toBe('violation');
  });

  it('accepts an unknown write that never takes effect', () => {
    const ops = history(put('v0', 0, 1), put('v1', 2, null), get('v0', 10, 11), get('v0', 20, 21), get('v0', 30, 31));
    expect(verdictOf(ops)).toBe('ok');
  });

  it('accepts an unknown write that never takes effect although its value is read', () => {
    // The delete's value (absent) is read, but only before the put; had it landed, the last get fails.
    const ops = history(get(null, 0, 10), put('v1', 1, 2), del(3, null), get('v1', 11, 12));
    expect(verdictOf(ops)).toBe('ok');
  });

  it('does not let an unknown write that became visible disappear again', () => {
    const ops = history(put('v1', 1, null), get('v1', 10, 11), get(null, 20, 21));
    expect(verdictOf(ops)).toBe('violation');
  });

  it('lets an unknown write land between two reads of other values', () => {
    const ops = history(
      put('v1', 0, 1),
      put('v2', 2, null),
      get('v1', 10, 11),
      get('v2', 20, 21),
      put('v3', 30, 31),
      get('v3', 40, 41),
    );
    expect(verdictOf(ops)).toBe('ok');
  });

  it('ignores gets without an answer', () => {
    const ops = history(put('v1', 0, 1), get(null, 2, null), failed(get(null, 3, 4)), get('v1', 5, 6));
    expect(verdictOf(ops)).toBe('ok');
  });
});

describe('deletes', () => {
  it('makes the key absent', () => {
    expect(verdictOf(history(put('v1', 0, 1), del(2, 3), get(null, 4, 5)))).toBe('ok');
    expect(verdictOf(history(put('v1', 0, 1), del(2, 3), get('v1', 4, 5)))).toBe('violation');
  });

  it('may take effect anywhere in its window', () => {
    expect(verdictOf(history(put('v1', 0, 1), del(2, 10), get('v1', 3, 4), get(null, 5, 6)))).toBe('ok');
    expect(verdictOf(history(put('v1', 0, 1), del(2, 10), get(null, 3, 4), get('v1', 5, 6)))).toBe('violation');
  });

  it('may take effect when its outcome is unknown', () => {
    expect(verdictOf(history(put('v1', 0, 1), del(2, null), get(null, 10, 11)))).toBe('ok');
    expect(verdictOf(history(put('v1', 0, 1), del(2, null), get('v1', 10, 11)))).toBe('ok');
  });
});

describe('failed operations', () => {
  it('never takes effect', () => {
    const ops = history(put('v1', 0, 1), failed(put('v2', 2, 3)), get('v2', 4, 5));
    expect(verdictOf(ops)).toBe('violation');
  });

  it('leaves the previous value visible', () => {
    const ops = history(put('v1', 0, 1), failed(put('v2', 2, 3)), failed(del(4, 5)), get('v1', 6, 7));
    expect(verdictOf(ops)).toBe('ok');
  });
});

describe('keys', () => {
  it('checks each key independently and reports the violation on its key only', () => {
    const ops = history(
      put('a1', 0, 1, 'a'),
      put('b1', 0, 1, 'b'),
      put('b2', 2, 3, 'b'),
      get('a1', 4, 5, 'a'),
      get('b1', 4, 5, 'b'),
      put('c1', 0, 1, 'c'),
    );
    const result = checkLinearizability(ops);
    expect(result.result).toBe('violation');
    expect(result.keys.map((v) => [v.key, v.result, v.ops])).toEqual([
      ['a', 'ok', 2],
      ['b', 'violation', 3],
      ['c', 'ok', 1],
    ]);
  });

  it('reports a key whose operations all failed as ok', () => {
    const result = checkLinearizability(history(failed(put('v1', 0, 1))));
    expect(result).toEqual({ result: 'ok', keys: [{ key: 'k', result: 'ok', ops: 0 }] });
  });
});

describe('search budget', () => {
  /**
   * n puts all concurrent, each value read by a concurrent get, then reads of two of the values one
   * after the other. Every single read is possible, so only the search can refute the pair, and as every
   * value is read, it must try every order of the puts (the configurations are the 2^n subsets of them).
   */
  function concurrentPutsThenTwoReads(n: number, key = 'k'): OpSpec[] {
    const puts = Array.from({ length: n }, (_, i) => put(`v${i}`, 0, 100, key));
    const reads = Array.from({ length: n }, (_, i) => get(`v${i}`, 0, 100, key));
    return [...puts, ...reads, get('v0', 200, 201, key), get('v1', 202, 203, key)];
  }

  it('finds the violation when the budget allows', () => {
    expect(verdictOf(history(...concurrentPutsThenTwoReads(6)))).toBe('violation');
  });

  it("gives up with 'unknown' rather than a verdict", () => {
    const result = checkLinearizability(history(...concurrentPutsThenTwoReads(16)), { maxStepsPerKey: 1000 });
    expect(result.result).toBe('unknown');
    const verdict = verdictFor(result, 'k');
    expect(verdict.result).toBe('unknown');
    if (verdict.result === 'unknown') expect(verdict.message).toContain('1000 search steps');
  });

  it("does not give up on an easy key because another one is hard, and ranks violation above 'unknown'", () => {
    const hard = concurrentPutsThenTwoReads(16, 'hard');
    const easy = [put('v1', 0, 1, 'easy'), get('v1', 2, 3, 'easy')];
    const stale = [put('s1', 0, 1, 'stale'), put('s2', 2, 3, 'stale'), get('s1', 4, 5, 'stale')];
    const result = checkLinearizability(history(...hard, ...easy), { maxStepsPerKey: 1000 });
    expect(result.result).toBe('unknown');
    expect(verdictFor(result, 'easy').result).toBe('ok');
    expect(checkLinearizability(history(...hard, ...stale), { maxStepsPerKey: 1000 }).result).toBe('violation');
  });
});

describe('malformed histories', () => {
  it.each<[string, Operation[]]>([
    ['complete before invoke', history(put('v1', 5, 4))],
    ['an unknown outcome with a completion', history({ ...put('v1', 0, 1), status: 'unknown' })],
    ['an ok op without completion', history({ ...put('v1', 0, null), status: 'ok' })],
    ['a put without a value', history({ ...put('v1', 0, 1), value: null })],
    ['a delete with a value', history({ ...del(0, 1), value: 'x' })],
    ['duplicate ids', [...history(put('v1', 0, 1)), ...history(get('v1', 2, 3))]],
    ['a non-finite invoke', history(put('v1', Number.NaN, 1))],
  ])('rejects %s', (_, ops) => {
    expect(() => checkLinearizability(ops)).toThrow(/malformed history/);
  });
});

// ---------------------------------------------------------------------------------------------------
// Memoization

describe('remembered configurations', () => {
  /** Toggles of random elements, and mostly "add the smallest absent one", to fill whole words. */
  const changesArbitrary = fc.array(
    fc.record({
      element: fc.oneof({ weight: 5, arbitrary: fc.constant(-1) }, { weight: 1, arbitrary: fc.nat({ max: 69 }) }),
      state: fc.nat({ max: 1 }),
    }),
    { maxLength: 300, size: 'max' },
  );

  function checkAgainstReference(random: (() => number) | undefined): void {
    fc.assert(
      fc.property(changesArbitrary, (changes) => {
        const size = 70; // three words, the last one partial
        const set = random === undefined ? new DecidedSet(size) : new DecidedSet(size, random);
        const explored = new ConfigurationSet();
        const members = new Set<number>();
        const seen = new Set<string>();
        for (const { element, state } of changes) {
          let e = element;
          if (e < 0) {
            e = 0;
            while (members.has(e)) e++;
            if (e === size) continue;
          }
          if (members.has(e)) {
            members.delete(e);
            set.remove(e);
          } else {
            members.add(e);
            set.add(e);
          }
          const config = `${[...members].sort((a, b) => a - b).join(',')}|${state}`;
          expect(explored.addIfAbsent(set, state)).toBe(!seen.has(config));
          seen.add(config);
        }
      }),
      { numRuns: 300 },
    );
  }

  it('tells configurations apart exactly', () => checkAgainstReference(undefined));

  it('tells configurations apart even when every hash collides', () => checkAgainstReference(() => 0));
});

// ---------------------------------------------------------------------------------------------------
// Histories generated from real sequential executions

/** One request of a simulated client. Times are relative, so any values make a well-formed history. */
interface ClientRequest {
  readonly client: number;
  readonly key: number;
  readonly kind: OpKind;
  /** Idle time of the client before it sends the request. */
  readonly think: number;
  /** From invoke to the moment the request takes effect. */
  readonly lead: number;
  /** From taking effect to the answer; for an unknown outcome, from invoke until the client gives up. */
  readonly lag: number;
  /** landed / lost: the client never learns the outcome; the request did / did not take effect. */
  readonly outcome: 'ok' | 'fail' | 'landed' | 'lost';
}

/**
 * Runs the requests against one sequential register per key, each taking effect at a single instant
 * inside its window, and returns what the clients observed: a linearizable history by construction.
 */
function simulate(requests: readonly ClientRequest[]): Operation[] {
  const clientFreeAt = new Map<number, number>();
  const ops: { -readonly [K in keyof Operation]: Operation[K] }[] = [];
  const effects: { at: number; op: number }[] = [];
  requests.forEach((request, id) => {
    const invoke = (clientFreeAt.get(request.client) ?? 0) + request.think;
    const takesEffectAt = invoke + request.lead;
    const answered = request.outcome === 'ok' || request.outcome === 'fail';
    const complete = answered ? takesEffectAt + request.lag : null;
    clientFreeAt.set(request.client, complete ?? invoke + request.lag);
    const status: OpStatus = answered ? request.outcome : 'unknown';
    const value = request.kind === 'put' ? `v${id}` : null;
    const { client, kind } = request;
    ops.push({ id, client, key: `k${request.key}`, kind, value, invoke, complete, status });
    const takesEffect = request.outcome === 'ok' || (request.outcome === 'landed' && request.kind !== 'get');
    if (takesEffect) effects.push({ at: takesEffectAt, op: id });
  });
  // Ties in time are broken by request order: both orders fit the windows.
  effects.sort((a, b) => a.at - b.at || a.op - b.op);
  const registers = new Map<string, string | null>();
  for (const { op: id } of effects) {
    const op = ops[id] as (typeof ops)[number];
    if (op.kind === 'get') op.value = registers.get(op.key) ?? null;
    else registers.set(op.key, op.value);
  }
  return ops;
}

const requestArbitrary = (clients: number, keys: number): fc.Arbitrary<ClientRequest> =>
  fc.record({
    client: fc.nat({ max: clients - 1 }),
    key: fc.nat({ max: keys - 1 }),
    kind: fc.oneof(
      { weight: 4, arbitrary: fc.constant<OpKind>('put') },
      { weight: 1, arbitrary: fc.constant<OpKind>('delete') },
      { weight: 5, arbitrary: fc.constant<OpKind>('get') },
    ),
    think: fc.nat({ max: 4 }),
    lead: fc.nat({ max: 12 }),
    lag: fc.nat({ max: 12 }),
    outcome: fc.oneof(
      { weight: 12, arbitrary: fc.constant<ClientRequest['outcome']>('ok') },
      { weight: 1, arbitrary: fc.constant<ClientRequest['outcome']>('fail') },
      { weight: 1, arbitrary: fc.constant<ClientRequest['outcome']>('landed') },
      { weight: 1, arbitrary: fc.constant<ClientRequest['outcome']>('lost') },
    ),
  });

/** Up to `maxLength` requests, the whole range of lengths being tried (not only short arrays). */
const requestsArbitrary = (request: fc.Arbitrary<ClientRequest>, maxLength: number): fc.Arbitrary<ClientRequest[]> =>
  fc.array(request, { minLength: 1, maxLength, size: 'max' });

const okGets = (ops: readonly Operation[]): Operation[] => ops.filter((op) => op.kind === 'get' && op.status === 'ok');

function replaceValue(ops: readonly Operation[], id: number, value: string | null): Operation[] {
  return ops.map((op) => (op.id === id ? { ...op, value } : op));
}

describe('generated histories', () => {
  it('accepts every history of a real sequential execution', () => {
    fc.assert(
      fc.property(requestsArbitrary(requestArbitrary(4, 3), 80), (requests) => {
        expect(verdictOf(simulate(requests))).toBe('ok');
      }),
      { numRuns: 300 },
    );
  });

  it('rejects such a history once a get returns a value never written', () => {
    fc.assert(
      fc.property(requestsArbitrary(requestArbitrary(4, 3), 80), fc.nat(), (requests, pick) => {
        const ops = simulate(requests);
        const gets = okGets(ops);
        fc.pre(gets.length > 0);
        const victim = gets[pick % gets.length] as Operation;
        expect(verdictOf(replaceValue(ops, victim.id, 'never-written'))).toBe('violation');
      }),
      { numRuns: 300 },
    );
  });

  it('rejects a sequential history once a get returns any other value', () => {
    // Without concurrency each get can only return the value of the latest write before it.
    const sequentialRequest = requestArbitrary(1, 2).map((r): ClientRequest => ({
      ...r,
      think: r.think + 1,
      outcome: r.outcome === 'fail' ? 'fail' : 'ok',
    }));
    fc.assert(
      fc.property(requestsArbitrary(sequentialRequest, 60), fc.nat(), fc.nat(), (requests, pick, other) => {
        const ops = simulate(requests);
        const gets = okGets(ops);
        fc.pre(gets.length > 0);
        const victim = gets[pick % gets.length] as Operation;
        const candidates = [null, ...ops.filter((op) => op.kind === 'put').map((op) => op.value)];
        const wrong = candidates.filter((v) => v !== victim.value);
        fc.pre(wrong.length > 0);
        const mutated = replaceValue(ops, victim.id, wrong[other % wrong.length] ?? null);
        expect(verdictOf(mutated)).toBe('violation');
      }),
      { numRuns: 300 },
    );
  });
});

// ---------------------------------------------------------------------------------------------------
// Small arbitrary histories against a brute-force oracle

/**
 * The definition, executed: try every order of the operations that respects real time (an op may come
 * next only if no remaining answered op completed before it was invoked), where ops of unknown outcome
 * may also be left out. Exponential: for a handful of ops only.
 */
function bruteForceLinearizable(ops: readonly Operation[], initial: string | null): boolean {
  const informative = ops.filter((op) => op.status === 'ok' || (op.status === 'unknown' && op.kind !== 'get'));
  const search = (remaining: readonly Operation[], value: string | null): boolean => {
    if (remaining.every((op) => op.status !== 'ok')) return true;
    return remaining.some((op) => {
      const blocked = remaining.some((other) => other.complete !== null && other.complete < op.invoke);
      if (blocked) return false;
      if (op.kind === 'get' && op.value !== value) return false;
      const after = op.kind === 'get' ? value : op.value;
      return search(
        remaining.filter((other) => other !== op),
        after,
      );
    });
  };
  return search(informative, initial);
}

const smallHistoryArbitrary: fc.Arbitrary<Operation[]> = fc
  .array(
    fc.record({
      kind: fc.constantFrom<OpKind>('put', 'put', 'delete', 'get', 'get', 'get'),
      // Few values, so that several puts write the same one.
      value: fc.constantFrom('x', 'y', 'z'),
      invoke: fc.nat({ max: 12 }),
      duration: fc.nat({ max: 6 }),
      status: fc.constantFrom<OpStatus>('ok', 'ok', 'ok', 'ok', 'unknown', 'fail'),
    }),
    { maxLength: 8, size: 'max' },
  )
  .map((specs) =>
    specs.map(({ kind, value, invoke, duration, status }, id): Operation => {
      const answered = status !== 'unknown';
      const carriesValue = kind === 'put' || (kind === 'get' && status === 'ok');
      return {
        id,
        client: id,
        key: 'k',
        kind,
        value: carriesValue && !(kind === 'get' && value === 'z') ? value : null,
        invoke,
        complete: answered ? invoke + duration : null,
        status,
      };
    }),
  );

describe('small arbitrary histories', () => {
  it('agree with the brute-force definition', () => {
    fc.assert(
      fc.property(smallHistoryArbitrary, fc.constantFrom<string | null>(null, 'x'), (ops, initial) => {
        const expected = bruteForceLinearizable(ops, initial) ? 'ok' : 'violation';
        expect(verdictOf(ops, { initial: new Map([['k', initial]]) })).toBe(expected);
      }),
      { numRuns: 3000 },
    );
  });
});

// ---------------------------------------------------------------------------------------------------
// Realistic sizes

/** A small seeded generator (mulberry32) for big deterministic histories. */
function seededRandom(seed: number): (n: number) => number {
  let s = seed >>> 0;
  return (n) => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

/** `perClient` requests for each client, interleaved, with ~2% of the writes of unknown outcome. */
function realisticRequests(seed: number, clients: number, perClient: number, keys: number): ClientRequest[] {
  const random = seededRandom(seed);
  const requests: ClientRequest[] = [];
  for (let i = 0; i < clients * perClient; i++) {
    const roll = random(100);
    const kind: OpKind = roll < 45 ? 'put' : roll < 50 ? 'delete' : 'get';
    const unknown = kind !== 'get' && random(100) < 2;
    requests.push({
      client: i % clients,
      key: random(keys),
      kind,
      think: random(3),
      lead: random(20),
      lag: random(20),
      outcome: unknown ? (random(2) === 0 ? 'landed' : 'lost') : 'ok',
    });
  }
  return requests;
}

describe('realistic sizes', () => {
  it('checks 8 clients x 2,000 ops over 10 keys', () => {
    const ops = simulate(realisticRequests(1, 8, 2000, 10));
    expect(ops.filter((op) => op.status === 'unknown').length).toBeGreaterThan(100);
    const started = performance.now();
    const result = checkLinearizability(ops);
    const elapsed = performance.now() - started;
    expect(result.result).toBe('ok');
    expect(result.keys).toHaveLength(10);
    console.info(`checked ${ops.length} ops in ${elapsed.toFixed(0)} ms`);
  });

  it('checks 30,000 ops on a single key without recursion', () => {
    const ops = simulate(realisticRequests(2, 4, 7500, 1));
    expect(checkLinearizability(ops).result).toBe('ok');
    // And the same history with one stale read at the very end.
    const lastGet = okGets(ops).at(-1) as Operation;
    const firstPut = ops.find((op) => op.kind === 'put' && op.status === 'ok') as Operation;
    expect(checkLinearizability(replaceValue(ops, lastGet.id, firstPut.value)).result).toBe('violation');
  });
});
