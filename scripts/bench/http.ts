// Small HTTP helpers for control traffic (status, metrics, preload), every call with a deadline.
import { Pool } from 'undici';

const CONTROL_TIMEOUT_MS = 5000;

export async function getText(url: string, timeoutMs = CONTROL_TIMEOUT_MS): Promise<string> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  if (!res.ok) throw new Error(`GET ${url}: ${res.status} ${text.slice(0, 200)}`);
  return text;
}

export async function getJson<T>(url: string, timeoutMs = CONTROL_TIMEOUT_MS): Promise<T> {
  return JSON.parse(await getText(url, timeoutMs)) as T;
}

export async function postJson<T>(url: string, body: unknown, timeoutMs = CONTROL_TIMEOUT_MS): Promise<T> {
  const res = await fetch(url, {
    method: 'POST',
    body: JSON.stringify(body),
    headers: { 'content-type': 'application/json' },
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`POST ${url}: ${res.status} ${text.slice(0, 200)}`);
  return JSON.parse(text) as T;
}

export interface PreloadRequest {
  readonly method: 'PUT' | 'POST';
  readonly path: string;
  readonly body: string;
  readonly headers?: Record<string, string>;
}

/**
 * Sends `count` requests (built by `build(i)`) to `baseUrl` over `concurrency` keep-alive
 * connections; each must answer 2xx within `timeoutMs`, or the preload fails with the answer.
 */
export async function sendAll(
  baseUrl: string,
  count: number,
  build: (i: number) => PreloadRequest,
  concurrency = 32,
  timeoutMs = 10_000,
): Promise<void> {
  const pool = new Pool(baseUrl, { connections: concurrency, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < count; i = next++) {
      const r = build(i);
      const res = await pool.request({ method: r.method, path: r.path, body: r.body, headers: r.headers ?? {} });
      const text = await res.body.text();
      if (res.statusCode < 200 || res.statusCode > 299)
        throw new Error(`${r.method} ${baseUrl}${r.path}: ${res.statusCode} ${text.slice(0, 200)}`);
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, worker));
  } finally {
    await pool.close();
  }
}
