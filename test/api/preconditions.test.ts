// If-Match / If-None-Match (src/api/preconditions.ts): exactly the two forms a conditional write
// takes, every other form refused with what is accepted, never read loosely into a blind write.
import { describe, expect, it } from 'vitest';
import { etagOf, parsePreconditions } from '../../src/api/preconditions.js';

describe('parsePreconditions', () => {
  it('no header: no condition', () => {
    expect(parsePreconditions(undefined, undefined)).toEqual({ ok: true, condition: undefined });
  });

  it.each([
    ['"0"', 0],
    ['"7"', 7],
    ['"1234567890"', 1234567890],
    [`"${Number.MAX_SAFE_INTEGER}"`, Number.MAX_SAFE_INTEGER],
  ])('If-Match: %s is the condition modIndex %i', (header, modIndex) => {
    expect(parsePreconditions(header, undefined)).toEqual({ ok: true, condition: { modIndex } });
  });

  it('If-None-Match: * is the condition "absent"', () => {
    expect(parsePreconditions(undefined, '*')).toEqual({ ok: true, condition: { absent: true } });
  });

  it('an ETag it sent reads back as its modIndex', () => {
    expect(parsePreconditions(etagOf(42), undefined)).toEqual({ ok: true, condition: { modIndex: 42 } });
  });

  it.each([
    ['a weak tag', 'W/"7"'],
    ['a list', '"7", "8"'],
    ['a header given twice (an array)', ['"7"', '"7"']],
    ['an unquoted number', '7'],
    ['a half-quoted number', '"7'],
    ['an empty tag', '""'],
    ['an empty header', ''],
    ['a negative number', '"-1"'],
    ['a fraction', '"1.5"'],
    ['an exponent', '"1e3"'],
    ['leading zeros', '"007"'],
    ['a number beyond the safe integers', '"9007199254740993"'],
    ['inner blanks', '" 7"'],
    ['a tag that is not a number', '"abc"'],
  ])('If-Match with %s is refused, saying what is accepted', (_what, header) => {
    const check = parsePreconditions(header, undefined);
    expect(check.ok).toBe(false);
    if (check.ok) return;
    expect(check.message).toContain(
      'If-Match takes one ETag as GET /kv/<key> returns it: the quoted modIndex, like If-Match: "42"',
    );
    const shown = Array.isArray(header) ? header.join(', ') : header;
    expect(check.message).toMatch(shown === '' ? /; got an empty If-Match$/ : `; got If-Match: ${shown}`);
  });

  it('If-Match: * is refused, pointing at POST /txn for "exists"', () => {
    const check = parsePreconditions('*', undefined);
    expect(check).toEqual({
      ok: false,
      message: expect.stringMatching(/^If-Match: \* is not supported: .*"exists":true/),
    });
  });

  it.each([['"7"'], ['W/"7"'], ['*, "7"'], [''], [['*', '*']]])(
    'If-None-Match: %s is refused: only * is taken',
    (header) => {
      const check = parsePreconditions(undefined, header);
      expect(check).toEqual({
        ok: false,
        message: expect.stringMatching(/^If-None-Match takes only \*, to write only if the key does not exist; got /),
      });
    },
  );

  it('both headers at once are refused, naming both forms', () => {
    const check = parsePreconditions('"7"', '*');
    expect(check.ok).toBe(false);
    if (check.ok) return;
    expect(check.message).toMatch(/^If-Match and If-None-Match in one request: send one of them/);
    expect(check.message).toContain('If-Match: "42"');
    expect(check.message).toContain('If-None-Match takes only *');
  });
});
