// fast-check generators of well-formed messages: every field within its domain, appends whose
// entries follow the invariants the codec checks (contiguous from index + 1, terms non-decreasing
// from logTerm and never above the message term, types this build supports).

import fc from 'fast-check';
import type { Entry, Message } from '../../src/raft/types.js';
import { SUPPORTED_ENTRY_TYPES } from '../../src/transport/message-schema.js';

const MAX = Number.MAX_SAFE_INTEGER;

export const nodeId = fc.string({ minLength: 1, maxLength: 12 });
/** Mostly small values, sometimes huge ones (above 2^32, where msgpack switches encodings). */
const count = fc.oneof(fc.nat({ max: 1000 }), fc.nat({ max: 2 ** 40 }), fc.constant(MAX));
const base = fc.record({ from: nodeId, to: nodeId, term: count });

const append = fc
  .record({
    from: nodeId,
    to: nodeId,
    term: fc.nat({ max: 2 ** 40 }),
    index: fc.nat({ max: 2 ** 40 }),
    commit: count,
    entries: fc.array(
      fc.record({ type: fc.constantFrom(...SUPPORTED_ENTRY_TYPES), data: fc.uint8Array({ maxLength: 64 }) }),
      {
        maxLength: 8,
      },
    ),
    termSteps: fc.array(fc.nat({ max: 3 }), { minLength: 9, maxLength: 9 }),
    logTermBelow: fc.nat({ max: 5 }),
  })
  .map(({ from, to, term, index, commit, entries, termSteps, logTermBelow }): Message => {
    // Terms of the entries climb from logTerm towards term, never past it.
    const logTerm = Math.max(0, term - logTermBelow - termSteps.reduce((a, b) => a + b, 0));
    let entryTerm = logTerm;
    const built: Entry[] = entries.map((e, i) => {
      entryTerm = Math.min(term, entryTerm + (termSteps[i] ?? 0));
      return { index: index + 1 + i, term: entryTerm, type: e.type, data: e.data };
    });
    return { type: 'app', from, to, term, index, logTerm, entries: built, commit };
  });

export const message: fc.Arbitrary<Message> = fc.oneof(
  append,
  base.chain((b) =>
    fc.oneof(
      fc
        .record({ index: count, reject: fc.boolean(), hintIndex: count, hintTerm: count })
        .map((f): Message => ({ ...b, type: 'appResp', ...f })),
      // A joiner without a configuration asks for a snapshot.
      fc
        .record({ index: count, hintIndex: count, hintTerm: count, needsSnapshot: fc.boolean() })
        .map((f): Message => ({ ...b, type: 'appResp', reject: true, ...f })),
      fc
        .record({
          type: fc.constantFrom('vote' as const, 'preVote' as const),
          index: count,
          logTerm: count,
          transfer: fc.boolean(),
        })
        .map((f): Message => ({ ...b, ...f })),
      fc
        .record({ type: fc.constantFrom('voteResp' as const, 'preVoteResp' as const), reject: fc.boolean() })
        .map((f): Message => ({ ...b, ...f })),
      fc.record({ commit: count, round: count }).map((f): Message => ({ ...b, type: 'heartbeat', ...f })),
      fc.record({ round: count }).map((f): Message => ({ ...b, type: 'heartbeatResp', ...f })),
      fc.record({ ctx: count }).map((f): Message => ({ ...b, type: 'readIndex', ...f })),
      fc
        .record({ ctx: count, index: count, reject: fc.boolean() })
        .map((f): Message => ({ ...b, type: 'readIndexResp', ...f })),
      fc.constant(null).map((): Message => ({ ...b, type: 'timeoutNow' })),
    ),
  ),
);

/** Entry data as plain Uint8Array, so decoded (Buffer) and generated messages compare equal. */
export function normalize(messages: readonly Message[]): unknown[] {
  return messages.map((m) =>
    m.type === 'app' ? { ...m, entries: m.entries.map((e) => ({ ...e, data: Array.from(e.data) })) } : { ...m },
  );
}
