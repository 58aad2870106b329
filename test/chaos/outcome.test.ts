import { describe, expect, it } from 'vitest';
import {
  classifyAnswer,
  classifyConditional,
  classifyError,
  classifyIdempotentWrite,
  classifyTxn,
  parseEtag,
  type HttpAnswer,
} from '../../scripts/harness/chaos/outcome.js';

const answer = (status: number, errorCode: string | null = null, extra: Partial<HttpAnswer> = {}): HttpAnswer => ({
  status,
  errorCode,
  consistency: null,
  body: null,
  ...extra,
});

describe('outcome classification', () => {
  it('a write is ok only on 200', () => {
    expect(classifyAnswer('put', answer(200)).status).toBe('ok');
    expect(classifyAnswer('delete', answer(200)).status).toBe('ok');
  });

  it('a write refused before it was proposed, or whose entry was replaced, definitely failed', () => {
    for (const code of ['no_leader', 'not_leader', 'overloaded', 'not_committed', 'stopping', 'leader_unreachable']) {
      expect(classifyAnswer('put', answer(503, code))).toMatchObject({
        status: 'fail',
        unexpected: false,
        reason: `503 ${code}`,
      });
    }
  });

  it('a write of unknown fate is unknown: 504, an unrecognized 503, a 500, a redirect', () => {
    expect(classifyAnswer('put', answer(504, 'outcome_unknown'))).toMatchObject({
      status: 'unknown',
      unexpected: false,
    });
    expect(classifyAnswer('put', answer(503, 'something_new')).status).toBe('unknown');
    expect(classifyAnswer('put', answer(503, null)).status).toBe('unknown');
    expect(classifyAnswer('delete', answer(500, 'internal'))).toMatchObject({ status: 'unknown', unexpected: true });
    expect(classifyAnswer('put', answer(307)).status).toBe('unknown');
  });

  it('a write refused by validation failed, and is flagged as unexpected', () => {
    expect(classifyAnswer('put', answer(400, 'bad_key'))).toMatchObject({ status: 'fail', unexpected: true });
    expect(classifyAnswer('put', answer(413, 'value_too_large'))).toMatchObject({ status: 'fail', unexpected: true });
  });

  it("a linearizable read is ok with its value, or absent on the key's 404", () => {
    expect(classifyAnswer('get', answer(200, null, { consistency: 'linearizable', body: 'v1' }))).toMatchObject({
      status: 'ok',
      value: 'v1',
    });
    expect(classifyAnswer('get', answer(200, null, { consistency: 'linearizable', body: '' }))).toMatchObject({
      status: 'ok',
      value: '',
    });
    expect(classifyAnswer('get', answer(404, 'not_found', { consistency: 'linearizable' }))).toMatchObject({
      status: 'ok',
      value: null,
    });
  });

  it('a read that observed nothing failed; a 404 or 200 without the linearizable header is never a value', () => {
    expect(classifyAnswer('get', answer(503, 'read_timeout'))).toMatchObject({ status: 'fail', unexpected: false });
    expect(classifyAnswer('get', answer(503, 'no_leader')).status).toBe('fail');
    expect(classifyAnswer('get', answer(404, 'not_found'))).toMatchObject({ status: 'fail', unexpected: true });
    expect(classifyAnswer('get', answer(200, null, { consistency: 'stale', body: 'v' }))).toMatchObject({
      status: 'fail',
      unexpected: true,
    });
  });

  it('nothing sent is a failure; anything after connecting is unknown', () => {
    expect(classifyError('ECONNREFUSED').status).toBe('fail');
    expect(classifyError('UND_ERR_CONNECT_TIMEOUT').status).toBe('fail');
    for (const code of ['ECONNRESET', 'UND_ERR_SOCKET', 'UND_ERR_HEADERS_TIMEOUT', 'EPIPE', 'timeout', 'AbortError']) {
      expect(classifyError(code)).toMatchObject({ status: 'unknown', reason: code });
    }
  });

  it('an ETag is a quoted modIndex; a read and a PUT tell the modIndex of the value', () => {
    expect(parseEtag('"42"')).toBe(42);
    for (const bad of ['42', 'W/"42"', '"4a"', '""', null, undefined]) expect(parseEtag(bad)).toBeNull();
    const read = answer(200, null, { consistency: 'linearizable', body: 'v1', etag: '"7"' });
    expect(classifyAnswer('get', read)).toMatchObject({ status: 'ok', value: 'v1', modIndex: 7 });
    expect(classifyIdempotentWrite('put', answer(200, null, { etag: '"9"' }))).toMatchObject({
      status: 'ok',
      modIndex: 9,
    });
    expect(classifyIdempotentWrite('delete', answer(200, null, { etag: '"9"' })).modIndex).toBeUndefined();
  });

  it('a conditional write: 200 succeeded, 412 failed with what the key was then; other answers as for any write', () => {
    expect(classifyConditional('put', answer(200, null, { etag: '"12"' }))).toMatchObject({
      status: 'ok',
      succeeded: true,
      modIndex: 12,
      unexpected: false,
    });
    expect(classifyConditional('delete', answer(200))).toMatchObject({ status: 'ok', succeeded: true });
    const current = JSON.stringify({
      error: 'precondition_failed',
      message: '...',
      current: { createIndex: 2, modIndex: 3, version: 2 },
    });
    expect(classifyConditional('put', answer(412, 'precondition_failed', { body: current }))).toEqual({
      status: 'ok',
      value: null,
      reason: '412 precondition_failed',
      unexpected: false,
      succeeded: false,
      modIndex: 3,
    });
    const absent = JSON.stringify({ error: 'precondition_failed', message: '...', current: null });
    expect(classifyConditional('delete', answer(412, 'precondition_failed', { body: absent }))).toMatchObject({
      status: 'ok',
      succeeded: false,
      observed: null,
    });
    // A 412 that names nothing still failed, but says no more, and is worth a warning.
    const silent = classifyConditional('put', answer(412, 'precondition_failed', { body: '{}' }));
    expect(silent).toMatchObject({ status: 'ok', succeeded: false, unexpected: true });
    expect(silent.observed).toBeUndefined();
    expect(silent.modIndex).toBeUndefined();
    // A replay of the first answer is that answer.
    expect(
      classifyConditional('put', answer(412, 'precondition_failed', { body: absent, replayed: true })),
    ).toMatchObject({ status: 'ok', succeeded: false, observed: null, replayed: true });
    expect(classifyConditional('put', answer(200, null, { etag: '"5"', replayed: true }))).toMatchObject({
      succeeded: true,
      replayed: true,
    });
    expect(classifyConditional('put', answer(503, 'no_leader')).status).toBe('fail');
    expect(classifyConditional('put', answer(504, 'outcome_unknown')).status).toBe('unknown');
    expect(classifyConditional('put', answer(400, 'bad_precondition'))).toMatchObject({
      status: 'fail',
      unexpected: true,
    });
  });

  it('a reused idempotency key is an unknown outcome and unexpected: the client never reuses one', () => {
    const reused = answer(422, 'idempotency_key_reused');
    for (const outcome of [
      classifyConditional('put', reused),
      classifyIdempotentWrite('delete', reused),
      classifyTxn(reused),
    ]) {
      expect(outcome).toMatchObject({ status: 'unknown', unexpected: true, reason: '422 idempotency_key_reused' });
    }
  });

  it("a transaction: its branch, the modIndex its put left, or the value (and modIndex) its failure branch's get saw", () => {
    const won = JSON.stringify({
      succeeded: true,
      results: [
        { op: 'put', key: 'k', modIndex: 11 },
        { op: 'get', key: 'k', value: 'w1', createIndex: 9, modIndex: 11, version: 2 },
      ],
      index: 11,
      term: 1,
    });
    expect(classifyTxn(answer(200, null, { body: won }))).toMatchObject({
      status: 'ok',
      succeeded: true,
      modIndex: 11,
      unexpected: false,
    });
    const lost = (get: Record<string, unknown>): HttpAnswer =>
      answer(200, null, {
        body: JSON.stringify({ succeeded: false, results: [{ op: 'get', ...get }], index: 12, term: 1 }),
      });
    expect(classifyTxn(lost({ key: 'k', value: 'w0', createIndex: 9, modIndex: 10, version: 1 }))).toMatchObject({
      status: 'ok',
      succeeded: false,
      observed: 'w0',
      modIndex: 10,
    });
    expect(classifyTxn(lost({ key: 'k', value: null }))).toMatchObject({ succeeded: false, observed: null });
    const base64 = Buffer.from('w2').toString('base64');
    expect(classifyTxn(lost({ key: 'k', valueBase64: base64, modIndex: 13 }))).toMatchObject({ observed: 'w2' });
    // Applied, but what it did cannot be read: as good as unknown.
    expect(classifyTxn(answer(200, null, { body: 'not json' }))).toMatchObject({ status: 'unknown', unexpected: true });
    expect(classifyTxn(answer(413, 'answer_too_large'))).toMatchObject({ status: 'fail', unexpected: true });
    expect(classifyTxn(answer(503, 'not_leader')).status).toBe('fail');
    expect(classifyTxn(answer(504, 'outcome_unknown')).status).toBe('unknown');
  });
});
