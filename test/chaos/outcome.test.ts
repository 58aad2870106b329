import { describe, expect, it } from 'vitest';
import { classifyAnswer, classifyError, type HttpAnswer } from '../../scripts/harness/chaos/outcome.js';

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
});
