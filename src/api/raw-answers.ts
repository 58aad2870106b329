// Answers written on Node's response directly, by the fast paths in front of Fastify (fast-get.ts,
// fast-put.ts). Each writes exactly the head and body Fastify would for the same answer (tests
// compare both paths byte for byte), and a head as a flat [name, value, ...] list where it is hot:
// a header object costs Node a validation and a store per header.
import type { ServerResponse } from 'node:http';
import type { ErrorAnswer } from './errors.js';

/** An error answer: `{"error","message"}` as JSON, with its headers (after `extraHeaders`). */
export function sendJsonError(
  res: ServerResponse,
  answer: ErrorAnswer,
  extraHeaders: Record<string, string> = {},
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = Buffer.from(JSON.stringify({ error: answer.error, message: answer.message }));
  res.writeHead(answer.status, {
    ...extraHeaders,
    ...answer.headers,
    'content-type': 'application/json; charset=utf-8',
    'content-length': body.byteLength,
  });
  res.end(body);
}

/** A JSON answer: `headers` in their order, then the content type and length, as Fastify sends them. */
export function sendJson(res: ServerResponse, status: number, headers: Record<string, string>, body: unknown): void {
  const payload = Buffer.from(JSON.stringify(body));
  const list: string[] = [];
  for (const name in headers) list.push(name, headers[name]!);
  list.push('content-type', 'application/json; charset=utf-8', 'content-length', String(payload.byteLength));
  res.writeHead(status, list);
  res.end(payload);
}

/** Another node's answer passed on as it is (headers as the forwarder kept them), with its length. */
export function sendRelayed(
  res: ServerResponse,
  answer: { readonly status: number; readonly headers: Record<string, string | string[]>; readonly payload: Buffer },
): void {
  res.writeHead(answer.status, { ...answer.headers, 'content-length': answer.payload.byteLength });
  res.end(answer.payload);
}
