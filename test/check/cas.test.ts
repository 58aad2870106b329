// The checker's compare-and-set register: hand-made histories, the brute-force definition on small
// arbitrary histories, and histories of real sequential executions at realistic sizes.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { OpStatus, Operation } from '../../scripts/harness/check/history.js';
import { checkLinearizability } from '../../scripts/harness/check/linearizability.js';
import type { CheckResult, KeyVerdict } from '../../scripts/harness/check/linearizability.js';
import { withObservations } from '../../scripts/harness/check/observations.js';

type OpSpec = Omit<Operation, 'id' | 'client' | 'status' | 'key'> & { status?: OpStatus; key?: string };

function history(...specs: OpSpec[]): Operation[] {
  return specs.map((spec, id) => ({
    key: 'k',
    ...spec,
    id,
    client: id,
    status: spec.status ?? (spec.complete === null ? 'unknown' : 'ok'),
  }));
}

const put = (value: string, invoke: number, complete: number | null, modIndex?: number): OpSpec => ({
  kind: 'put',
  value,
  invoke,
  complete,
  ...(modIndex === undefined ? {} : { modIndex }),
});
const get = (value: string | null, invoke: number, complete: number, modIndex?: number): OpSpec => ({
  kind: 'get',
  value,
  invoke,
  complete,
  ...(modIndex === undefined ? {} : { modIndex }),
});
/** A cas that succeeded (or, with complete null, of unknown outcome). */
const cas = (expected: string | null, value: string | null, invoke: number, complete: number | null): OpSpec => ({
  kind: 'cas',
  expected,
  value,
  invoke,
  complete,
  ...(complete === null ? {} : { succeeded: true }),
});
/** A cas whose condition did not hold; `saw`: what its answer says it saw instead. */
const failedCas = (
  expected: string | null,
  value: string | null,
  invoke: number,
  complete: number,
  saw: { observed: string | null } | { modIndex: number } | Record<string, never> = {},
): OpSpec => ({ kind: 'cas', expected, value, invoke, complete, succeeded: false, ...saw });

/** Checks with and without the impossible-read screening: both paths must agree. */
function verdictOf(ops: readonly Operation[]): CheckResult['result'] {
  const screened = checkLinearizability(ops);
  expect(checkLinearizability(ops, { prechecks: false }).result).toBe(screened.result);
  return screened.result;
}

function violationOf(ops: readonly Operation[], prechecks = true): Extract<KeyVerdict, { result: 'violation' }> {
  const verdict = checkLinearizability(ops, { prechecks }).keys.find((v) => v.key === 'k');
  if (verdict?.result !== 'violation') throw new Error(`expected a violation, got ${verdict?.result}`);
  return verdict;
}

describe('valid histories with compare-and-set', () => {
  it('a read-modify-write loop: each cas expects what the one before left', () => {
    const ops = history(
      put('a', 0, 1),
      get('a', 2, 3),
      cas('a', 'b', 4, 5),
      cas('b', 'c', 6, 7),
      get('c', 8, 9),
      cas('c', null, 10, 11),
      get(null, 12, 13),
      cas(null, 'd', 14, 15),
      get('d', 16, 17),
    );
    expect(verdictOf(ops)).toBe('ok');
  });

  it('two concurrent cas from one value: one succeeds, the other fails and may say what it saw', () => {
    expect(verdictOf(history(put('a', 0, 1), cas('a', 'b', 2, 10), failedCas('a', 'c', 3, 9)))).toBe('ok');
    expect(verdictOf(history(put('a', 0, 1), cas('a', 'b', 2, 10), failedCas('a', 'c', 3, 9, { observed: 'b' })))).toBe(
      'ok',
    );
    // The failed one may come first if the other write it saw came first: here the concurrent put.
    expect(
      verdictOf(
        history(put('a', 0, 1), put('x', 2, 10), failedCas('a', 'c', 3, 9, { observed: 'x' }), get('x', 11, 12)),
      ),
    ).toBe('ok');
  });

  it('a failed cas on a key that is absent, and one that saw it absent', () => {
    expect(verdictOf(history(failedCas('a', 'b', 0, 1), failedCas('a', 'c', 2, 3, { observed: null })))).toBe('ok');
  });

  it('a cas of unknown outcome may take effect late, or never', () => {
    expect(verdictOf(history(put('a', 0, 1), cas('a', 'b', 2, null), get('a', 10, 11), get('b', 20, 21)))).toBe('ok');
    expect(verdictOf(history(put('a', 0, 1), cas('a', 'b', 2, null), get('a', 10, 11), get('a', 20, 21)))).toBe('ok');
  });

  it('a failed cas that names only a modIndex saw the value the history shows at that modIndex', () => {
    const ops = history(put('a', 0, 1, 5), put('b', 2, 3, 7), failedCas('a', 'c', 4, 5, { modIndex: 7 }));
    expect(verdictOf(ops)).toBe('ok');
    expect(withObservations(ops)[2]).toMatchObject({ observed: 'b' });
  });
});

describe('violations with compare-and-set', () => {
  it('a cas that succeeded against a value nobody wrote', () => {
    const verdict = violationOf(history(put('a', 0, 1), cas('z', 'b', 2, 3)));
    expect(verdict.message).toContain("cas k 'z' -> 'b' succeeded, at [2, 3]");
    expect(verdict.message).toContain("no operation ever wrote 'z' to k");
    expect(violationOf(history(put('a', 0, 1), cas('z', 'b', 2, 3)), false).failedOp).toBe(1);
  });

  it('a cas that succeeded against a value overwritten before it began', () => {
    const ops = history(put('a', 0, 1), put('b', 2, 3), cas('a', 'c', 4, 5));
    expect(verdictOf(ops)).toBe('violation');
    expect(violationOf(ops).message).toContain("is overwritten by put k 'b' at [2, 3]");
    expect(violationOf(ops).message).toContain('which completes before the cas is invoked');
  });

  it('two cas from the same value both succeeding', () => {
    // Each alone is possible (the screening lets both through): only their pair is not.
    const ops = history(put('a', 0, 1), cas('a', 'b', 2, 10), cas('a', 'c', 3, 9));
    expect(verdictOf(ops)).toBe('violation');
    const verdict = violationOf(ops);
    expect(verdict.message).toMatch(
      /cas k 'a' -> '[bc]' succeeded, at \[[23], (9|10)\] \(op #[12], client [12]\) cannot be linearized/,
    );
  });

  it('a retried write applied twice: its value comes back after another write', () => {
    // The put of 'b' was retried (one operation for all its attempts); a second application after 'c'.
    expect(verdictOf(history(put('a', 0, 1), cas('a', 'b', 2, 20), put('c', 21, 22), get('b', 23, 24)))).toBe(
      'violation',
    );
  });

  it('a retried cas applied, then answered as failed by a retry that forgot the first attempt', () => {
    // Dedup lost: the retry re-evaluates the condition against the value its own first attempt wrote.
    expect(verdictOf(history(put('a', 0, 1), failedCas('a', 'b', 2, 20, { observed: 'b' })))).toBe('violation');
    expect(verdictOf(history(put('a', 0, 1), failedCas('a', 'b', 2, 20), get('b', 21, 22)))).toBe('violation');
    expect(violationOf(history(put('a', 0, 1), failedCas('a', 'b', 2, 20), get('b', 21, 22))).message).toContain(
      "no operation ever wrote 'b' to k",
    );
  });

  it('a cas that failed while the value was the one it expected', () => {
    expect(verdictOf(history(put('a', 0, 1), failedCas('a', 'b', 2, 3), get('a', 4, 5)))).toBe('violation');
    expect(verdictOf(history(failedCas(null, 'b', 2, 3)))).toBe('violation');
    const saw = history(put('a', 0, 1), failedCas('a', 'b', 2, 3, { observed: 'a' }));
    expect(verdictOf(saw)).toBe('violation');
    expect(violationOf(saw).message).toContain("it failed, yet the value it saw, 'a', is the one it expected");
    // Named by its modIndex: the put left 'a' at modIndex 4.
    expect(verdictOf(history(put('a', 0, 1, 4), failedCas('a', 'b', 2, 3, { modIndex: 4 })))).toBe('violation');
  });

  it('a cas of unknown outcome cannot take effect on a value it does not expect', () => {
    expect(verdictOf(history(put('a', 0, 1), put('b', 2, 3), cas('a', 'c', 4, null), get('c', 10, 11)))).toBe(
      'violation',
    );
  });

  it('versions that disagree derive nothing: the cas keeps its weaker meaning', () => {
    // Two values claim modIndex 4 (a system that mislabels versions): nothing is derived from it.
    const ops = history(put('a', 0, 1, 4), get('x', 2, 3, 4), failedCas('q', 'b', 5, 6, { modIndex: 4 }));
    expect(withObservations(ops)[2]).not.toHaveProperty('observed');
  });
});

describe('malformed cas histories', () => {
  it.each<[string, Operation[]]>([
    ['a cas without expected', history({ kind: 'cas', value: 'b', invoke: 0, complete: 1, succeeded: true })],
    ['an answered cas without succeeded', history({ kind: 'cas', expected: 'a', value: 'b', invoke: 0, complete: 1 })],
    ['an unknown cas with succeeded', history({ ...cas('a', 'b', 0, null), succeeded: true })],
    ['a cas that succeeded and observed', history({ ...cas('a', 'b', 0, 1), observed: 'x' })],
    ['a get with expected', history({ ...get('a', 0, 1), expected: 'a' })],
    ['a negative modIndex', history(put('a', 0, 1, -1))],
  ])('rejects %s', (_, ops) => {
    expect(() => checkLinearizability(ops)).toThrow(/malformed history/);
  });
});

// ---------------------------------------------------------------------------------------------------
// Small arbitrary histories against the brute-force definition

/** What an informative operation requires of the register, and what it leaves, or null if it cannot happen. */
function step(op: Operation, value: string | null): { ok: boolean; after: string | null } {
  switch (op.kind) {
    case 'get':
      return { ok: op.value === value, after: value };
    case 'put':
    case 'delete':
      return { ok: true, after: op.value };
    case 'cas':
      if (op.status === 'ok' && op.succeeded === false) {
        const sawOk = op.observed === undefined || op.observed === value;
        return { ok: value !== op.expected && sawOk, after: value };
      }
      return { ok: value === op.expected, after: op.value };
  }
}

/**
 * The definition, executed: try every order of the operations that respects real time, where ops of
 * unknown outcome may also be left out. Exponential: for a handful of ops only.
 */
function bruteForceLinearizable(ops: readonly Operation[], initial: string | null): boolean {
  const informative = ops.filter((op) => op.status === 'ok' || (op.status === 'unknown' && op.kind !== 'get'));
  const search = (remaining: readonly Operation[], value: string | null): boolean => {
    if (remaining.every((op) => op.status !== 'ok')) return true;
    return remaining.some((op) => {
      const blocked = remaining.some((other) => other.complete !== null && other.complete < op.invoke);
      if (blocked) return false;
      const { ok, after } = step(op, value);
      return (
        ok &&
        search(
          remaining.filter((other) => other !== op),
          after,
        )
      );
    });
  };
  return search(informative, initial);
}

const VALUES = ['x', 'y', 'z'] as const;

const smallCasHistory: fc.Arbitrary<Operation[]> = fc
  .array(
    fc.record({
      kind: fc.constantFrom('put', 'delete', 'get', 'get', 'cas', 'cas', 'cas'),
      value: fc.constantFrom(...VALUES, null),
      expected: fc.constantFrom(...VALUES, null),
      invoke: fc.nat({ max: 12 }),
      duration: fc.nat({ max: 6 }),
      status: fc.constantFrom<OpStatus>('ok', 'ok', 'ok', 'ok', 'unknown', 'fail'),
      succeeded: fc.boolean(),
      saw: fc.constantFrom('nothing', 'observed', 'observed'),
      observed: fc.constantFrom(...VALUES, null),
    }),
    { maxLength: 7, size: 'max' },
  )
  .map((specs) =>
    specs.map((s, id): Operation => {
      const complete = s.status === 'unknown' ? null : s.invoke + s.duration;
      const base = { id, client: id, key: 'k', invoke: s.invoke, complete, status: s.status };
      switch (s.kind) {
        case 'put':
          return { ...base, kind: 'put', value: s.value ?? 'x' };
        case 'delete':
          return { ...base, kind: 'delete', value: null };
        case 'get':
          return { ...base, kind: 'get', value: s.status === 'ok' ? s.value : null };
        default: {
          const cas: Operation = { ...base, kind: 'cas', value: s.value, expected: s.expected };
          if (s.status !== 'ok') return cas;
          if (s.succeeded) return { ...cas, succeeded: true };
          return s.saw === 'observed'
            ? { ...cas, succeeded: false, observed: s.observed }
            : { ...cas, succeeded: false };
        }
      }
    }),
  );

describe('small arbitrary histories with compare-and-set', () => {
  it('agree with the brute-force definition', () => {
    let linearizable = 0;
    fc.assert(
      fc.property(smallCasHistory, fc.constantFrom<string | null>(null, 'x'), (ops, initial) => {
        const expected = bruteForceLinearizable(ops, initial) ? 'ok' : 'violation';
        if (expected === 'ok') linearizable++;
        const initialMap = new Map([['k', initial]]);
        expect(checkLinearizability(ops, { initial: initialMap }).result).toBe(expected);
        expect(checkLinearizability(ops, { initial: initialMap, prechecks: false }).result).toBe(expected);
      }),
      { numRuns: 4000 },
    );
    // Both verdicts are exercised, not just one.
    expect(linearizable).toBeGreaterThan(400);
    expect(linearizable).toBeLessThan(3600);
  });
});

// ---------------------------------------------------------------------------------------------------
// Histories of real sequential executions

/** One request of a simulated client. */
interface Request {
  readonly client: number;
  readonly key: number;
  readonly kind: 'put' | 'delete' | 'get' | 'cas';
  /**
   * For a cas: expect one of the last three values written to its key by earlier requests (what a
   * client that read it lately saw: the latest, or one a little stale), or absent when there is none.
   */
  readonly expectPick: number;
  /** For a cas: write a value (else delete the key). */
  readonly casWrites: boolean;
  /** For a failed cas: what its answer says it saw. */
  readonly saw: 'nothing' | 'value' | 'modIndex';
  readonly think: number;
  readonly lead: number;
  readonly lag: number;
  readonly outcome: 'ok' | 'fail' | 'landed' | 'lost';
}

type MutableOp = { -readonly [K in keyof Operation]: Operation[K] };

/**
 * Runs the requests against one register per key, each taking effect at a single instant inside its
 * window, and returns what the clients observed (with the ETags and modIndexes the API would give):
 * a linearizable history by construction. A cas expects a value an earlier request wrote to its key,
 * so that many succeed and many fail.
 */
function execute(requests: readonly Request[]): Operation[] {
  const clientFreeAt = new Map<number, number>();
  const ops: MutableOp[] = [];
  const effects: { at: number; op: number }[] = [];
  const written = new Map<string, (string | null)[]>();
  requests.forEach((request, id) => {
    const invoke = (clientFreeAt.get(request.client) ?? 0) + request.think;
    const takesEffectAt = invoke + request.lead;
    const answered = request.outcome === 'ok' || request.outcome === 'fail';
    const complete = answered ? takesEffectAt + request.lag : null;
    clientFreeAt.set(request.client, complete ?? invoke + request.lag);
    const status: OpStatus = answered ? request.outcome : 'unknown';
    const key = `k${request.key}`;
    const value = request.kind === 'put' || (request.kind === 'cas' && request.casWrites) ? `v${id}` : null;
    const op: MutableOp = { id, client: request.client, key, kind: request.kind, value, invoke, complete, status };
    const ofKey = written.get(key) ?? [];
    if (request.kind === 'cas') {
      op.expected =
        ofKey.length === 0 ? null : ofKey[ofKey.length - 1 - (request.expectPick % Math.min(3, ofKey.length))]!;
    }
    if (request.kind !== 'get') written.set(key, [...ofKey.slice(-2), value]);
    ops.push(op);
    const takesEffect = request.outcome === 'ok' || (request.outcome === 'landed' && request.kind !== 'get');
    if (takesEffect) effects.push({ at: takesEffectAt, op: id });
  });
  effects.sort((a, b) => a.at - b.at || a.op - b.op);
  const registers = new Map<string, { value: string; modIndex: number }>();
  let index = 0;
  for (const { op: id } of effects) {
    index++;
    const op = ops[id]!;
    const request = requests[id]!;
    const current = registers.get(op.key);
    const write = (): void => {
      if (op.value === null) registers.delete(op.key);
      else registers.set(op.key, { value: op.value, modIndex: index });
      if (op.status === 'ok' && op.value !== null && index % 2 === 0) op.modIndex = index;
    };
    if (op.kind === 'get') {
      op.value = current?.value ?? null;
      if (current !== undefined && index % 3 !== 0) op.modIndex = current.modIndex;
    } else if (op.kind !== 'cas') {
      write();
    } else if ((current?.value ?? null) === op.expected) {
      if (op.status === 'ok') op.succeeded = true;
      write();
    } else if (op.status === 'ok') {
      op.succeeded = false;
      if (request.saw === 'value') op.observed = current?.value ?? null;
      // A 412 names the current modIndex, or says the key is absent.
      else if (request.saw === 'modIndex') {
        if (current === undefined) op.observed = null;
        else op.modIndex = current.modIndex;
      }
    }
  }
  return ops;
}

const requestArbitrary = (clients: number, keys: number): fc.Arbitrary<Request> =>
  fc.record({
    client: fc.nat({ max: clients - 1 }),
    key: fc.nat({ max: keys - 1 }),
    kind: fc.oneof(
      { weight: 3, arbitrary: fc.constant('put' as const) },
      { weight: 1, arbitrary: fc.constant('delete' as const) },
      { weight: 4, arbitrary: fc.constant('get' as const) },
      { weight: 4, arbitrary: fc.constant('cas' as const) },
    ),
    expectPick: fc.nat(),
    casWrites: fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
    saw: fc.constantFrom('nothing', 'value', 'modIndex', 'modIndex'),
    think: fc.nat({ max: 4 }),
    lead: fc.nat({ max: 12 }),
    lag: fc.nat({ max: 12 }),
    outcome: fc.oneof(
      { weight: 12, arbitrary: fc.constant('ok' as const) },
      { weight: 1, arbitrary: fc.constant('fail' as const) },
      { weight: 1, arbitrary: fc.constant('landed' as const) },
      { weight: 1, arbitrary: fc.constant('lost' as const) },
    ),
  });

describe('histories of sequential executions with compare-and-set', () => {
  it('accepts every one', () => {
    fc.assert(
      fc.property(fc.array(requestArbitrary(4, 2), { minLength: 1, maxLength: 80, size: 'max' }), (requests) => {
        expect(verdictOf(execute(requests))).toBe('ok');
      }),
      { numRuns: 300 },
    );
  });

  it('rejects one once a cas that failed is said to have succeeded', () => {
    fc.assert(
      fc.property(
        fc.array(requestArbitrary(1, 1), { minLength: 1, maxLength: 40, size: 'max' }),
        fc.nat(),
        (requests, pick) => {
          // One client, a pause between requests: no concurrency, so the outcome of every cas is determined.
          const sequential = requests.map((r): Request => ({
            ...r,
            think: r.think + 1,
            outcome: r.outcome === 'fail' ? 'fail' : 'ok',
          }));
          const ops = execute(sequential);
          const failed = ops.filter((op) => op.kind === 'cas' && op.succeeded === false);
          fc.pre(failed.length > 0);
          const victim = failed[pick % failed.length]!;
          const flipped = ops.map((op): Operation => {
            if (op !== victim) return op;
            const { observed: _observed, modIndex: _modIndex, ...rest } = op;
            return { ...rest, succeeded: true };
          });
          expect(verdictOf(flipped)).toBe('violation');
        },
      ),
      { numRuns: 300 },
    );
  });

  it('checks 8 clients x 2,000 ops over 10 keys, a third of them cas, in bounded time', () => {
    const random = seededRandom(7);
    const requests: Request[] = [];
    for (let i = 0; i < 16_000; i++) {
      const roll = random(100);
      const kind = roll < 25 ? 'put' : roll < 30 ? 'delete' : roll < 65 ? 'get' : 'cas';
      const unknown = kind !== 'get' && random(100) < 3;
      requests.push({
        client: i % 8,
        key: random(10),
        kind,
        expectPick: random(1 << 30),
        casWrites: random(10) < 8,
        saw: (['nothing', 'value', 'modIndex', 'modIndex'] as const)[random(4)]!,
        think: random(3),
        lead: random(20),
        lag: random(20),
        outcome: unknown ? (random(2) === 0 ? 'landed' : 'lost') : 'ok',
      });
    }
    const ops = execute(requests);
    expect(ops.filter((op) => op.kind === 'cas' && op.succeeded === true).length).toBeGreaterThan(300);
    expect(ops.filter((op) => op.kind === 'cas' && op.succeeded === false).length).toBeGreaterThan(1000);
    const started = performance.now();
    const result = checkLinearizability(ops);
    const elapsed = performance.now() - started;
    expect(result.result).toBe('ok');
    console.info(`checked ${ops.length} ops (cas among them) in ${elapsed.toFixed(0)} ms`);
    expect(elapsed).toBeLessThan(20_000);
  });
});

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
