// Every error answer is JSON: { "error": code, "message": text }, so scripts and people both cope.
import type { FastifyReply } from 'fastify';

export function sendError(
  reply: FastifyReply,
  status: number,
  error: string,
  message: string,
  headers: Record<string, string> = {},
): FastifyReply {
  return reply.code(status).headers(headers).type('application/json').send({ error, message });
}
