// The runner's requests to a node's admin API (membership changes, leader transfer), from loopback:
// admin routes need no token there, and a follower forwards them to the leader. Never throws: no
// answer (refused, reset, timed out) is status 0 with the error's code.

export type AdminMethod = 'GET' | 'POST' | 'DELETE';

export interface AdminAnswer {
  /** The HTTP status, or 0 when no answer came. */
  readonly status: number;
  /** The answer's `error` code, the transport error's code (status 0), or null. */
  readonly error: string | null;
  /** The parsed JSON body (null when there was none or it was not JSON). */
  readonly body: unknown;
}

/** Admin answers are small JSON documents; anything longer is cut off here rather than buffered. */
const MAX_ANSWER_CHARS = 256 * 1024;

export async function adminRequest(
  baseUrl: string,
  method: AdminMethod,
  path: string,
  body: unknown,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<AdminAnswer> {
  const signals = [AbortSignal.timeout(Math.max(1, Math.ceil(timeoutMs))), ...(signal === undefined ? [] : [signal])];
  try {
    const res = await fetch(`${baseUrl}${path}`, {
      method,
      ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
      signal: AbortSignal.any(signals),
    });
    const text = (await res.text()).slice(0, MAX_ANSWER_CHARS);
    let parsed: unknown = null;
    try {
      parsed = text === '' ? null : JSON.parse(text);
    } catch {
      // Not JSON: no body, no code.
    }
    const code = (parsed as { error?: unknown } | null)?.error;
    return { status: res.status, error: typeof code === 'string' ? code : null, body: parsed };
  } catch (error) {
    const cause = (error as { cause?: { code?: unknown } }).cause?.code;
    return { status: 0, error: typeof cause === 'string' ? cause : (error as Error).name, body: null };
  }
}

/** "409 not_caught_up", "0 ECONNREFUSED": an answer for people. */
export function describeAnswer(answer: AdminAnswer): string {
  return `${answer.status}${answer.error === null ? '' : ` ${answer.error}`}`;
}
