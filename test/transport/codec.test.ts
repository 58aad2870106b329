import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { RaftCore } from '../../src/raft/core.js';
import { SeededRandom } from '../../src/raft/prng.js';
import { MemoryStorage } from '../../src/raft/storage.js';
import { EntryType, type Message } from '../../src/raft/types.js';
import {
  BadMessageError,
  decodeMessages,
  encodeMessages,
  MAX_MESSAGES_PER_BODY,
  SUPPORTED_ENTRY_TYPES,
  UnsupportedEntryTypeError,
} from '../../src/transport/codec.js';
import { message, normalize } from './arbitraries.js';

/** Packs anything, bypassing encodeMessages' own checks, as a hostile or buggy peer could. */
const rawPackr = new Packr({ useRecords: true });
const pack = (value: unknown): Uint8Array => rawPackr.pack(value);

const validHeartbeat = { type: 'heartbeat', from: 'n1', to: 'n2', term: 3, commit: 2, round: 7 };
const validAppend = {
  type: 'app',
  from: 'n1',
  to: 'n2',
  term: 3,
  index: 4,
  logTerm: 2,
  commit: 4,
  entries: [
    { index: 5, term: 2, type: 0, data: new Uint8Array([1, 2]) },
    { index: 6, term: 3, type: 0, data: new Uint8Array(0) },
  ],
};

function rejects(value: unknown, reason?: RegExp): void {
  const attempt = (): Message[] => decodeMessages(pack(value));
  expect(attempt).toThrow(BadMessageError);
  if (reason !== undefined) expect(attempt).toThrow(reason);
}

describe('codec round trip', () => {
  it('decodes what it encodes, for every message type', () => {
    fc.assert(
      fc.property(fc.array(message, { maxLength: 20 }), (messages) => {
        const decoded = decodeMessages(encodeMessages(messages));
        expect(normalize(decoded)).toEqual(normalize(messages));
        for (const m of decoded)
          if (m.type === 'app') for (const e of m.entries) expect(e.data).toBeInstanceOf(Uint8Array);
      }),
      { numRuns: 300 },
    );
  });

  it('covers all eleven message types', () => {
    const seen = new Set(fc.sample(message, 2000).map((m) => m.type));
    expect(seen.size).toBe(11);
  });

  it('copies entry data out of the body, so entries do not pin it', () => {
    const body = encodeMessages([validAppend as Message]);
    const [decoded] = decodeMessages(body);
    if (decoded?.type !== 'app') throw new Error('expected an append');
    expect(decoded.entries[0]?.data.buffer).not.toBe(body.buffer);
  });

  it('keeps entry data in one buffer per append, holding exactly their bytes, and none of the body', () => {
    const other = {
      ...validAppend,
      to: 'n3',
      entries: [{ index: 5, term: 2, type: 0, data: new Uint8Array([7, 8, 9]) }],
    };
    // A copy of its own (a Buffer's slice would be a view of the encoder's buffer), so that writing
    // over it below touches nothing else.
    const body = new Uint8Array(encodeMessages([validAppend as Message, other as Message]));
    const [first, second] = decodeMessages(body);
    if (first?.type !== 'app' || second?.type !== 'app') throw new Error('expected two appends');
    const [a, b] = first.entries;
    expect(a?.data.buffer).toBe(b?.data.buffer);
    expect(a?.data.buffer.byteLength).toBe(2);
    expect(second.entries[0]?.data.buffer.byteLength).toBe(3);
    expect(second.entries[0]?.data.buffer).not.toBe(a?.data.buffer);
    body.fill(0);
    expect([...(a?.data ?? [])]).toEqual([1, 2]);
    expect(b?.data.length).toBe(0);
    expect([...(second.entries[0]?.data ?? [])]).toEqual([7, 8, 9]);
  });

  it('accepts plain msgpack maps as well as records, and drops unknown fields', () => {
    const plain = new Packr({ useRecords: false }).pack([{ ...validHeartbeat, extra: 'ignored' }]);
    expect(decodeMessages(plain)).toEqual([validHeartbeat]);
  });

  it('accepts every message a running Raft cluster produces', () => {
    // Three cores exchanging every message through the codec: an election, proposals, heartbeats
    // and ReadIndex requests from a follower. Any shape check stricter than the core would throw.
    const ids = ['n1', 'n2', 'n3'];
    const cores = new Map(
      ids.map((id, i) => {
        const storage = new MemoryStorage(ids);
        const core = new RaftCore({
          id,
          voters: ids,
          storage,
          random: new SeededRandom(i + 1),
          electionTicks: 10,
          heartbeatTicks: 1,
        });
        return [id, { core, storage }] as const;
      }),
    );
    const seenTypes = new Set<string>();
    let network: Message[] = [];
    const drain = (): void => {
      for (let guard = 0; guard < 1000; guard++) {
        for (const { core, storage } of cores.values()) {
          while (core.hasReady()) {
            const rd = core.ready();
            network.push(...rd.messages);
            if (rd.hardState !== null) storage.setHardState(rd.hardState);
            storage.append(rd.entries);
            network.push(...rd.persistedMessages);
            core.advance(rd);
          }
        }
        if (network.length === 0) return;
        const batch = decodeMessages(encodeMessages(network));
        network = [];
        for (const m of batch) {
          seenTypes.add(m.type);
          cores.get(m.to)?.core.step(m);
        }
      }
    };
    let leader: RaftCore | undefined;
    for (let tick = 0; tick < 100 && leader === undefined; tick++) {
      for (const { core } of cores.values()) core.tick();
      drain();
      leader = [...cores.values()].map((n) => n.core).find((core) => core.status().role === 'leader');
    }
    if (leader === undefined) throw new Error('no leader elected');
    for (let i = 0; i < 5; i++) {
      expect(leader.propose([new TextEncoder().encode(`cmd ${i}`)]).ok).toBe(true);
      drain();
    }
    const follower = [...cores.values()].map((n) => n.core).find((core) => core !== leader);
    follower?.readIndex(42);
    for (let tick = 0; tick < 3; tick++) {
      for (const { core } of cores.values()) core.tick();
      drain();
    }
    expect(leader.status().commit).toBeGreaterThanOrEqual(6);
    for (const type of [
      'preVote',
      'preVoteResp',
      'vote',
      'voteResp',
      'app',
      'appResp',
      'heartbeat',
      'heartbeatResp',
      'readIndex',
      'readIndexResp',
    ]) {
      expect(seenTypes).toContain(type);
    }
  });
});

describe('decodeMessages rejects', () => {
  it('random bytes (or decodes them to valid messages, never anything else)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 256 }), (bytes) => {
        try {
          const messages = decodeMessages(bytes);
          // A few byte strings are valid bodies (0x90 is the empty array): they must re-validate.
          expect(decodeMessages(encodeMessages(messages))).toEqual(messages);
        } catch (error) {
          expect(error).toBeInstanceOf(BadMessageError);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('bodies that are not msgpack, or have trailing bytes', () => {
    expect(() => decodeMessages(new Uint8Array(0))).toThrow(BadMessageError);
    expect(() => decodeMessages(Buffer.from('GET / HTTP/1.1\r\n\r\n'))).toThrow(BadMessageError);
    const valid = pack([validHeartbeat]);
    expect(() => decodeMessages(Buffer.concat([valid, Buffer.from([0xc0])]))).toThrow(/undecodable/);
  });

  it('anything but an array of objects', () => {
    rejects({ messages: [validHeartbeat] }, /not an array/);
    rejects('heartbeat', /not an array/);
    rejects([null], /not an object/);
    rejects([[validHeartbeat]], /not an object/);
    rejects([new Date()]);
  });

  it('unknown or missing types', () => {
    rejects([{ ...validHeartbeat, type: 'snapshot' }], /unknown type/);
    rejects([{ ...validHeartbeat, type: 7 }], /unknown type/);
    const { type: _type, ...untyped } = validHeartbeat;
    rejects([untyped], /missing field "type"/);
  });

  it('a missing field, for every field of every type', () => {
    fc.assert(
      fc.property(message, fc.nat(), (m, pick) => {
        // needsSnapshot is the one optional field (absent means false).
        const keys = Object.keys(m).filter((k) => k !== 'type' && k !== 'needsSnapshot');
        const victim = keys[pick % keys.length] ?? 'from';
        const mutilated: Record<string, unknown> = { ...m };
        delete mutilated[victim];
        rejects([mutilated], new RegExp(`missing field "${victim}"`));
      }),
      { numRuns: 300 },
    );
  });

  it('a field of the wrong type or out of range, for every field of every type', () => {
    const badCounts: unknown[] = [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, '3', null, true, 2n ** 60n];
    const badIds: unknown[] = ['', 5, null, 'x'.repeat(257), ['n1']];
    const badFlags: unknown[] = [0, 1, 'true', null];
    fc.assert(
      fc.property(message, fc.nat(), fc.nat(), (m, pick, pickValue) => {
        const keys = Object.keys(m).filter((k) => k !== 'type' && k !== 'entries');
        const victim = keys[pick % keys.length] ?? 'from';
        const original: unknown = (m as unknown as Record<string, unknown>)[victim];
        const choices = typeof original === 'boolean' ? badFlags : typeof original === 'string' ? badIds : badCounts;
        const mutated = { ...m, [victim]: choices[pickValue % choices.length] };
        rejects([mutated]);
      }),
      { numRuns: 500 },
    );
  });

  it('negative, NaN and fractional terms', () => {
    rejects([{ ...validHeartbeat, term: -1 }], /"term" must be a non-negative safe integer/);
    rejects([{ ...validHeartbeat, term: Number.NaN }], /"term"/);
    rejects([{ ...validHeartbeat, term: 2.5 }], /"term"/);
    rejects([{ ...validHeartbeat, term: 2 ** 64 }], /"term"/);
  });

  it('ill-formed appends', () => {
    const [first, second] = validAppend.entries;
    rejects([{ ...validAppend, entries: 'none' }], /"entries" must be an array/);
    rejects([{ ...validAppend, entries: [first, { ...second, index: 7 }] }], /entry 1 has index 7, expected 6/);
    rejects([{ ...validAppend, entries: [{ ...first, index: 4 }] }], /entry 0 has index 4, expected 5/);
    rejects([{ ...validAppend, entries: [second, first] }], /index/);
    rejects(
      [
        {
          ...validAppend,
          entries: [
            { ...first, term: 3 },
            { ...second, term: 2, index: 6 },
          ],
        },
      ],
      /term 2 outside/,
    );
    rejects([{ ...validAppend, entries: [{ ...first, term: 1 }] }], /term 1 outside \[2, 3\]/);
    rejects([{ ...validAppend, entries: [{ ...first, term: 4 }] }], /outside/);
    rejects([{ ...validAppend, logTerm: 4, entries: [] }], /logTerm 4 above term 3/);
    rejects(
      [{ ...validAppend, entries: [{ ...first, type: 'normal' }] }],
      /entry 0: "type" must be an entry type this build supports \(0, 1\)/,
    );
    rejects([{ ...validAppend, entries: [{ ...first, type: '0' }] }], /"type" must be an entry type/);
    rejects([{ ...validAppend, entries: [{ ...first, data: 'bytes' }] }], /"data" must be binary/);
    rejects([{ ...validAppend, entries: [{ ...first, data: [1, 2] }] }], /"data" must be binary/);
    rejects([{ ...validAppend, entries: [null] }], /not an object/);
    const { data: _data, ...noData } = first ?? {};
    rejects([{ ...validAppend, entries: [noData] }], /missing field "data"/);
  });

  it('entries this build cannot apply: an entry type from a newer build is refused, naming the entry', () => {
    const [first, second] = validAppend.entries;
    const body = pack([validHeartbeat, { ...validAppend, entries: [first, { ...second, type: 7 }] }]);
    const attempt = (): Message[] => decodeMessages(body);
    expect(attempt).toThrow(UnsupportedEntryTypeError);
    expect(attempt).toThrow(
      'message 1 (app) entry 1 (index 6) has entry type 7, which this build cannot apply (it applies 0, 1): upgrade this node',
    );
    try {
      attempt();
    } catch (error) {
      expect(error).toBeInstanceOf(BadMessageError);
      expect((error as BadMessageError).code).toBe('unsupported-entry-type');
    }
    // Membership changes replicate like any entry.
    expect(SUPPORTED_ENTRY_TYPES.has(EntryType.ConfChange)).toBe(true);
    const withChange = pack([{ ...validAppend, entries: [first, { ...second, type: EntryType.ConfChange }] }]);
    expect(decodeMessages(withChange)[0]).toMatchObject({ entries: [{}, { type: EntryType.ConfChange }] });
  });

  it('more messages than a body may carry', () => {
    const many = Array.from({ length: MAX_MESSAGES_PER_BODY + 1 }, () => validHeartbeat);
    rejects(many, /exceed the limit/);
    expect(() => encodeMessages(many as Message[])).toThrow(RangeError);
    expect(decodeMessages(pack(many.slice(1)))).toHaveLength(MAX_MESSAGES_PER_BODY);
  });

  it('deeply nested garbage without overflowing into anything but BadMessageError', () => {
    const depth = 200_000;
    const nested = Buffer.alloc(depth + 1, 0x91); // [[[[...]]]]
    nested[depth] = 0x90;
    expect(() => decodeMessages(nested)).toThrow(BadMessageError);
  });

  it('a __proto__ key cannot reach the core', () => {
    const body = new Packr({ useRecords: false }).pack([
      JSON.parse('{"__proto__": {"polluted": true}, "type": "timeoutNow", "from": "n1", "to": "n2", "term": 1}'),
    ]);
    const [m] = decodeMessages(body);
    expect(Object.getPrototypeOf(m)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });
});
