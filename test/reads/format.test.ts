// Answers are built item by item into a buffer of a size computed in advance (format.ts): the bytes
// must be exactly JSON.stringify's, and every size the builder reports must be the size it writes.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AnswerBuilder,
  cursorJson,
  describeItem,
  formatPage,
  formatValues,
  itemJson,
  textOrNull,
} from '../../src/reads/format.js';

const encoder = new TextEncoder();
// Text (escapes, multi-byte characters, lone surrogates become U+FFFD) and raw bytes (often not UTF-8).
const someBytes = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 40 }).map((s) => encoder.encode(s)),
  fc.string({ unit: 'binary', maxLength: 40 }).map((s) => encoder.encode(s)),
  fc.uint8Array({ maxLength: 40 }),
);
const cursorText = (c: Uint8Array | null): string | null =>
  c === null ? null : (textOrNull(c) ?? Buffer.from(c).toString('base64'));

describe('answer formatting', () => {
  it('a page is byte for byte JSON.stringify of the whole answer', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(someBytes, someBytes), { maxLength: 8 }),
        fc.option(someBytes, { nil: null }),
        (entries, next) => {
          const expected = JSON.stringify({
            items: entries.map(([k, v]) => describeItem(k, v)),
            next: cursorText(next),
          });
          expect(Buffer.from(formatPage(entries, next)).toString('utf8')).toBe(expected);
          expect(formatPage(entries, next).byteLength).toBe(Buffer.byteLength(expected));
        },
      ),
    );
  });

  it('a multi-key answer is byte for byte JSON.stringify of it, null for an absent key', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(someBytes, fc.option(someBytes, { nil: undefined })), { maxLength: 8 }),
        (pairs) => {
          const keys = pairs.map(([k]) => k);
          const meta = { createIndex: 3, modIndex: 7, version: 2 };
          const values = pairs.map(([, v]) => (v === undefined ? undefined : { value: v, meta }));
          const expected = JSON.stringify({
            items: keys.map((k, i) => describeItem(k, values[i]?.value, values[i]?.meta)),
          });
          expect(Buffer.from(formatValues(keys, values)).toString('utf8')).toBe(expected);
        },
      ),
    );
  });

  it('sizeWith predicts exactly the size of the answer with that item added', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(someBytes, someBytes), { minLength: 1, maxLength: 8 }),
        fc.option(someBytes, { nil: null }),
        (entries, next) => {
          const builder = new AnswerBuilder();
          for (const [k, v] of entries) {
            const item = itemJson(k, v);
            const predicted = builder.sizeWith(item, cursorJson(next));
            builder.add(item);
            expect(builder.finish(cursorJson(next)).byteLength).toBe(predicted);
            expect(builder.sizeWith(null, null)).toBe(builder.finish(null).byteLength);
          }
        },
      ),
    );
  });
});
