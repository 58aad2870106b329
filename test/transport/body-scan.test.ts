// The pre-scan of peer bodies (body-scan.ts): it must accept every body our encoder writes, count
// exactly what msgpackr decodes (records included), never count less than msgpackr builds from any
// body it accepts, and refuse hostile bodies before msgpackr decodes any of them.
import fc from 'fast-check';
import { Packr, Unpackr } from 'msgpackr';
import { afterEach, beforeEach, describe, expect, it, vi, type MockInstance } from 'vitest';
import { RaftCore } from '../../src/raft/core.js';
import { SeededRandom } from '../../src/raft/prng.js';
import { MemoryStorage } from '../../src/raft/storage.js';
import { EntryType, type AppendMessage, type Entry, type Message } from '../../src/raft/types.js';
import { scanBody, type BodyLimits } from '../../src/transport/body-scan.js';
import {
  BadMessageError,
  BODY_LIMITS,
  decodeMessages,
  encodeMessages,
  MAX_ENTRIES_PER_BODY,
  MAX_MESSAGES_PER_BODY,
  MAX_VALUES_PER_BODY,
} from '../../src/transport/codec.js';
import { OutboundQueue } from '../../src/transport/outbound-queue.js';
import { message } from './arbitraries.js';
import { heartbeat } from './helpers.js';

/** Packs anything with the codec's encoder settings, bypassing encodeMessages' checks. */
const rawPackr = new Packr({ useRecords: true });
const pack = (value: unknown): Uint8Array => rawPackr.pack(value);
/** msgpackr's decoder with the codec's settings, without the scan in front of it. */
const rawUnpackr = new Unpackr({ useRecords: true, mapsAsObjects: true, copyBuffers: true, structuredClone: false });

/** What msgpackr built: values (containers, their elements or property values, scalars), buffers, nesting. */
interface Tree {
  values: number;
  binaries: number;
  depth: number;
}

function measure(value: unknown): Tree {
  if (value instanceof Uint8Array) return { values: 1, binaries: 1, depth: 0 };
  if (typeof value !== 'object' || value === null) return { values: 1, binaries: 0, depth: 0 };
  const children = Array.isArray(value) ? (value as unknown[]) : Object.values(value as Record<string, unknown>);
  const tree = { values: 1, binaries: 0, depth: 1 };
  for (const child of children) {
    const sub = measure(child);
    tree.values += sub.values;
    tree.binaries += sub.binaries;
    tree.depth = Math.max(tree.depth, sub.depth + 1);
  }
  return tree;
}

function refusal(body: Uint8Array, limits: BodyLimits = BODY_LIMITS): string {
  try {
    scanBody(body, limits);
  } catch (error) {
    expect(error).toBeInstanceOf(BadMessageError);
    return (error as Error).message;
  }
  throw new Error('the scan accepted the body');
}

function emptyEntries(first: number, count: number, term = 1): Entry[] {
  return Array.from({ length: count }, (_, i) => ({
    index: first + i,
    term,
    type: EntryType.Normal,
    data: new Uint8Array(0),
  }));
}

function appendOf(entries: Entry[], index = 0): AppendMessage {
  return {
    type: 'app',
    from: 'n1',
    to: 'n2',
    term: 1,
    index,
    logTerm: entries.length === 0 ? 0 : 1,
    commit: 0,
    entries,
  };
}

/** A value tree of what msgpack can carry without extensions: records of random shapes, arrays, scalars, binaries. */
const { tree: anyValue } = fc.letrec((tie) => ({
  tree: fc.oneof({ depthSize: 'small', withCrossShrink: true }, tie('leaf'), tie('array'), tie('object')),
  leaf: fc.oneof(
    fc.string({ maxLength: 40 }),
    fc.integer(),
    fc.nat({ max: 2 ** 40 }),
    fc.double(),
    fc.boolean(),
    fc.constant(null),
    fc.uint8Array({ maxLength: 20 }),
  ),
  array: fc.array(tie('tree'), { maxLength: 6 }),
  // Short keys from a small alphabet: shapes repeat (record references) and vary (definitions,
  // more than the encoder's 64 record ids per body, so it recycles them).
  object: fc.dictionary(fc.string({ unit: fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f'), maxLength: 3 }), tie('tree'), {
    maxKeys: 5,
  }),
}));

/** Flat records over ten keys: hundreds of shapes, so one body outruns the encoder's 64 record ids. */
const manyShapes = fc.dictionary(fc.constantFrom(...'abcdefghij'), fc.oneof(fc.nat(), fc.string({ maxLength: 3 })), {
  minKeys: 1,
  maxKeys: 6,
});

const looseLimits: BodyLimits = {
  maxMessages: 1_000_000,
  maxValues: 10_000_000,
  maxBinaries: 1_000_000,
  maxDepth: 64,
  maxRecordFields: 1_000,
};

describe('scanBody accepts what the encoder writes, and counts what msgpackr decodes', () => {
  it('every batch of every message type, counted exactly', () => {
    fc.assert(
      fc.property(fc.array(message, { maxLength: 40 }), (messages) => {
        const body = encodeMessages(messages);
        const shape = scanBody(body, BODY_LIMITS);
        const tree = measure(rawUnpackr.unpack(body));
        expect(shape.messages).toBe(messages.length);
        expect(shape.values - shape.definitionValues).toBe(tree.values);
        expect(shape.binaries).toBe(messages.reduce((n, m) => n + (m.type === 'app' ? m.entries.length : 0), 0));
        expect(shape.depth).toBe(tree.depth);
        expect(shape.depth).toBeLessThanOrEqual(4);
        expect(decodeMessages(body)).toHaveLength(messages.length);
      }),
      { numRuns: 500 },
    );
  });

  it('any tree of records, arrays and scalars (record ids recycled past 64 shapes), counted exactly', () => {
    let recycled = 0;
    fc.assert(
      fc.property(
        fc.array(anyValue, { maxLength: 30 }),
        fc.array(manyShapes, { minLength: 70, maxLength: 200 }),
        (values, shaped) => {
          const body = pack([...values, ...shaped, ...shaped.slice(0, 20)]);
          const shape = scanBody(body, looseLimits);
          const tree = measure(rawUnpackr.unpack(body));
          expect(shape.values - shape.definitionValues).toBe(tree.values);
          expect(shape.binaries).toBe(tree.binaries);
          expect(shape.depth).toBe(tree.depth);
          // Definitions past the 64th reuse a record id.
          if (shape.definitions > 64) recycled++;
        },
      ),
      { numRuns: 1000 },
    );
    // The property covered slot recycling, not only bodies with few shapes.
    expect(recycled).toBeGreaterThan(0);
  });

  it('the largest legitimate bodies: 10,000 messages carrying 65,536 empty entries, and one full 1 MiB append', () => {
    const half = MAX_ENTRIES_PER_BODY / 2;
    const messages: Message[] = [appendOf(emptyEntries(1, half)), appendOf(emptyEntries(half + 1, half), half)];
    for (let i = messages.length; i < MAX_MESSAGES_PER_BODY; i++) {
      messages.push(
        i % 2 === 0
          ? heartbeat('n1', 'n2', i)
          : { type: 'appResp', from: 'n1', to: 'n2', term: 1, index: i, reject: true, hintIndex: i, hintTerm: 1 },
      );
    }
    const body = encodeMessages(messages);
    const shape = scanBody(body, BODY_LIMITS);
    expect(shape.binaries).toBe(MAX_ENTRIES_PER_BODY);
    expect(shape.values).toBeLessThan(MAX_VALUES_PER_BODY / 2);
    expect(decodeMessages(body)).toHaveLength(MAX_MESSAGES_PER_BODY);
    // One append of the core's maxMsgBytes (1 MiB) of empty entries, 24 bytes each by entryBytes.
    const full = encodeMessages([appendOf(emptyEntries(1, Math.floor((1 << 20) / 24)))]);
    expect(scanBody(full, BODY_LIMITS).binaries).toBe(43_690);
  });

  it('a leader never puts more entries in one append than a body may carry', () => {
    // A three-node cluster of cores with the default configuration, as main.ts runs it; the leader
    // is handed 60,000 empty commands at once (the most entries per byte an append can carry).
    const ids = ['n1', 'n2', 'n3'];
    const cores = new Map(
      ids.map((id, i) => {
        const storage = new MemoryStorage(ids);
        const core = new RaftCore({
          id,
          voters: ids,
          storage,
          random: new SeededRandom(i + 7),
          electionTicks: 10,
          heartbeatTicks: 1,
        });
        return [id, { core, storage }] as const;
      }),
    );
    let largest = 0;
    const run = (): void => {
      let network: Message[] = [];
      for (let guard = 0; guard < 200; guard++) {
        for (const { core, storage } of cores.values()) {
          while (core.hasReady()) {
            const rd = core.ready();
            if (rd.hardState !== null) storage.setHardState(rd.hardState);
            storage.append(rd.entries);
            network.push(...rd.messages, ...rd.persistedMessages);
            core.advance(rd);
          }
        }
        if (network.length === 0) return;
        for (const m of network) {
          if (m.type === 'app') largest = Math.max(largest, m.entries.length);
          cores.get(m.to)?.core.step(m);
        }
        network = [];
      }
    };
    let leader: RaftCore | undefined;
    for (let tick = 0; tick < 100 && leader === undefined; tick++) {
      for (const { core } of cores.values()) core.tick();
      run();
      leader = [...cores.values()].map((n) => n.core).find((core) => core.status().role === 'leader');
    }
    if (leader === undefined) throw new Error('no leader elected');
    expect(leader.propose(Array.from({ length: 60_000 }, () => new Uint8Array(0))).ok).toBe(true);
    run();
    expect(largest).toBeGreaterThan(40_000); // the test reached the core's per-append byte limit
    expect(largest).toBeLessThanOrEqual(MAX_ENTRIES_PER_BODY);
  });
});

describe('scanBody never undercounts what msgpackr builds', () => {
  it('throws nothing but BadMessageError on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => {
        try {
          scanBody(bytes, BODY_LIMITS);
        } catch (error) {
          expect(error).toBeInstanceOf(BadMessageError);
        }
      }),
      { numRuns: 5000 },
    );
  });

  it('on mutated real bodies: whatever it accepts, msgpackr decodes into no more than it counted', () => {
    let accepted = 0;
    let decoded = 0;
    const mutation = fc.record({
      at: fc.nat(),
      byte: fc.integer({ min: 0, max: 255 }),
      kind: fc.constantFrom('set', 'insert', 'delete'),
    });
    fc.assert(
      fc.property(
        fc.array(fc.oneof(message, anyValue), { minLength: 1, maxLength: 12 }),
        fc.array(mutation, { minLength: 1, maxLength: 3 }),
        (values, mutations) => {
          const bytes = Array.from(pack(values));
          for (const { at, byte, kind } of mutations) {
            const i = at % (bytes.length + 1);
            if (kind === 'set' && i < bytes.length) bytes[i] = byte;
            else if (kind === 'insert') bytes.splice(i, 0, byte);
            else if (kind === 'delete' && i < bytes.length) bytes.splice(i, 1);
          }
          const body = Uint8Array.from(bytes);
          let shape;
          try {
            shape = scanBody(body, looseLimits);
          } catch (error) {
            expect(error).toBeInstanceOf(BadMessageError);
            return;
          }
          accepted++;
          let tree: Tree;
          try {
            tree = measure(rawUnpackr.unpack(body));
          } catch {
            return; // refused by msgpackr itself: nothing was built to keep
          }
          decoded++;
          expect(tree.values).toBeLessThanOrEqual(shape.values - shape.definitionValues);
          expect(tree.binaries).toBeLessThanOrEqual(shape.binaries);
          expect(tree.depth).toBeLessThanOrEqual(shape.depth);
        },
      ),
      { numRuns: 3000 },
    );
    // Not vacuous: many mutated bodies still scan and decode (a changed scalar, a key, a length).
    expect(accepted).toBeGreaterThan(100);
    expect(decoded).toBeGreaterThan(100);
  });
});

describe('scanBody refuses hostile bodies before any decoding', () => {
  let unpack: MockInstance<Unpackr['unpack']>;
  beforeEach(() => {
    unpack = vi.spyOn(Unpackr.prototype, 'unpack');
  });
  afterEach(() => unpack.mockRestore());

  /** decodeMessages(body) must throw BadMessageError matching `reason` without msgpackr running; returns the ms it took. */
  function refusedWithoutDecoding(body: Uint8Array, reason: RegExp): number {
    const started = performance.now();
    expect(() => decodeMessages(body)).toThrow(reason);
    const ms = performance.now() - started;
    expect(unpack).not.toHaveBeenCalled();
    return ms;
  }

  it('the spy sees a real decode (so its silence below means something)', () => {
    decodeMessages(encodeMessages([heartbeat('n1', 'n2', 1)]));
    expect(unpack).toHaveBeenCalledTimes(1);
  });

  it('a 30 MiB body of millions of one-byte empty maps', () => {
    const size = 30 * 1024 * 1024;
    const body = Buffer.alloc(size, 0x80);
    body.set([0x91, 0xdd], 0); // [ [ {}, {}, ... ] ]
    body.writeUInt32BE(size - 6, 2);
    const ms = refusedWithoutDecoding(
      body,
      /body refused before decoding: more than 1000000 values \(at byte 100000\d\)/,
    );
    expect(ms).toBeLessThan(1_000); // it read about 1 MB of the 30 before it stopped (milliseconds)
    console.log(`30 MiB of empty maps refused in ${ms.toFixed(1)} ms`);
  });

  it('one huge map nested in an otherwise valid message', () => {
    const pairs = 5_000_000;
    const huge = Buffer.alloc(5 + pairs * 2);
    huge[0] = 0xdf;
    huge.writeUInt32BE(pairs, 1);
    for (let i = 0; i < pairs; i++) huge.set([0xa0, 0xc0], 5 + i * 2); // "": null, 5 million times
    const head = pack([{ type: 'heartbeat', from: 'n1', to: 'n2', term: 1, commit: 0, round: 0, extra: 0 }]);
    // Replace the trailing `extra: 0` value (one byte) with the huge map.
    const body = Buffer.concat([head.subarray(0, head.length - 1), huge]);
    expect(head[head.length - 1]).toBe(0x00);
    refusedWithoutDecoding(body, /more than 1000000 values/);
  });

  it('an append with more entries than a body may carry (each a copied buffer)', () => {
    const body = pack([appendOf(emptyEntries(1, MAX_ENTRIES_PER_BODY + 1))]);
    refusedWithoutDecoding(body, /more than 65536 binary values/);
    expect(() => encodeMessages([appendOf(emptyEntries(1, MAX_ENTRIES_PER_BODY + 1))])).toThrow(RangeError);
  });

  it('nesting deeper than a message needs, a million levels of it', () => {
    const body = Buffer.alloc(1_000_000, 0x91);
    const ms = refusedWithoutDecoding(body, /nested deeper than 8 at byte 8\b/);
    expect(ms).toBeLessThan(1_000);
  });

  it('headers that promise more than the body holds, more messages than allowed, or not an array', () => {
    refusedWithoutDecoding(Buffer.from([0x91, 0xdd, 0xff, 0xff, 0xff, 0xff, 0x80]), /ends inside the value at byte 1/);
    refusedWithoutDecoding(Buffer.from([0xdd, 0x00, 0x00, 0x27, 0x11]), /10001 messages exceed the limit of 10000/);
    refusedWithoutDecoding(pack({ type: 'heartbeat' }), /body is not an array of messages/);
    refusedWithoutDecoding(Buffer.from([0x91, 0xc5, 0x00, 0x10]), /ends inside/);
  });

  it('extensions and values no message uses, and keys that are not strings', () => {
    refusedWithoutDecoding(pack([new Date(0)]), /extension/);
    refusedWithoutDecoding(Buffer.from([0x91, 0xd4, 0x73, 0x00, 0x91, 0x01]), /extension type 0x73 at byte 1/); // a Set, as msgpackr's moreTypes writes it
    refusedWithoutDecoding(Buffer.from([0x91, 0xc1]), /reserved byte 0xc1/);
    refusedWithoutDecoding(Buffer.from([0x91, 0xd5, 0x72, 0x40, 0x00, 0x90]), /extension \(0xd5\)/); // two-byte record ids
    refusedWithoutDecoding(Buffer.from([0x91, 0x81, 0x01, 0xc0]), /map key at byte 2 is not a string/);
    refusedWithoutDecoding(
      Buffer.from([0x91, 0xd4, 0x72, 0x40, 0x91, 0x01, 0xc0]),
      /key 0 of the record definition at byte 1 is not a string/,
    );
    refusedWithoutDecoding(
      Buffer.from([0x91, 0xd4, 0x72, 0x40, 0x81, 0xa1, 0x61, 0xc0]),
      /keys of the record definition at byte 1 are not an array/,
    );
    // A record of 33 fields: real messages have at most 8.
    const wide = Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`f${i}`, i]));
    refusedWithoutDecoding(pack([wide]), /record definition at byte 1 has 33 fields, more than 32/);
    // undefined (d4 00 00) is a plain value msgpackr writes: it passes the scan, the schema refuses it.
    expect(() => decodeMessages(pack([undefined]))).toThrow(/not an object/);
  });

  it('record references: a defined slot reads its fields; an undefined one is the integer it spells', () => {
    // [ d4 72 45 ["a"] 1, 0x45 2, 0x46 ]: a definition of slot 5 with one value, a reference to it, and
    // 0x46 (slot 6, never defined), which msgpackr reads as the integer 70.
    const body = Buffer.from([0x93, 0xd4, 0x72, 0x45, 0x91, 0xa1, 0x61, 0x01, 0x45, 0x02, 0x46]);
    const shape = scanBody(body, BODY_LIMITS);
    expect(rawUnpackr.unpack(body)).toEqual([{ a: 1 }, { a: 2 }, 70]);
    expect(shape.values - shape.definitionValues).toBe(measure(rawUnpackr.unpack(body)).values);
    // A slot defined with 3 fields whose reference lacks the bytes for them.
    expect(
      refusal(Buffer.from([0x92, 0xd4, 0x72, 0x40, 0x93, 0xa1, 0x61, 0xa1, 0x62, 0xa1, 0x63, 1, 2, 3, 0x40, 1])),
    ).toMatch(/ends inside/);
  });
});

describe('the sender splits batches to what a body may carry', () => {
  it('OutboundQueue.take stops before the entry bound, but always takes one message', () => {
    const queue = new OutboundQueue(100, 1 << 30);
    queue.push(appendOf(emptyEntries(1, 40_000)));
    queue.push(heartbeat('n1', 'n2', 1));
    queue.push(appendOf(emptyEntries(40_001, 30_000), 40_000));
    queue.push(appendOf(emptyEntries(70_001, 70_000), 70_000)); // alone above the bound
    queue.push(heartbeat('n1', 'n2', 2));
    const sizes = (batch: Message[]): number[] => batch.map((m) => (m.type === 'app' ? m.entries.length : 0));
    expect(sizes(queue.take(MAX_MESSAGES_PER_BODY, MAX_ENTRIES_PER_BODY))).toEqual([40_000, 0]);
    expect(sizes(queue.take(MAX_MESSAGES_PER_BODY, MAX_ENTRIES_PER_BODY))).toEqual([30_000]);
    expect(sizes(queue.take(MAX_MESSAGES_PER_BODY, MAX_ENTRIES_PER_BODY))).toEqual([70_000]);
    expect(sizes(queue.take(MAX_MESSAGES_PER_BODY, MAX_ENTRIES_PER_BODY))).toEqual([0]);
    expect(queue.length).toBe(0);
  });
});
