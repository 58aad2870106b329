// POST /txn: a transaction of compares and two branches, applied as ONE log entry, so it is atomic
// and linearizable like any write (src/storage/apply-request.ts evaluates it at apply time).
//
// The body is JSON whatever its content type says (as POST /mget's: `curl -d` sends a form), parsed
// in a scope of its own (every other write body is raw bytes), up to limits.maxTxnBytes. The bytes as
// sent are kept for forwarding: a follower relays them to the leader untouched.
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Limits } from '../config/cluster-config.js';
import { sendError, sendErrorAnswer } from './errors.js';
import type { clientApiSchemas } from './schemas.js';
import { parseTxn } from './txn.js';
import { requestWrite, type ProposedWrite } from './write-requests.js';

export interface TxnRouteOptions {
  readonly limits: Limits;
  readonly schemas: ReturnType<typeof clientApiSchemas>;
  /** Proposes the write and answers (client-api.ts); `body`: the request's bytes, for forwarding. */
  readonly submit: (
    request: FastifyRequest,
    reply: FastifyReply,
    redirect: boolean,
    write: ProposedWrite,
    body: Uint8Array | undefined,
  ) => Promise<FastifyReply>;
}

const JSON_EXAMPLE =
  '{"compare":[{"key":"k","modIndex":5}],"success":[{"op":"put","key":"k","value":"v"}],"failure":[]}';

export function txnRoute(options: TxnRouteOptions): FastifyPluginAsync {
  const { limits, schemas } = options;
  return async (plain) => {
    const scope = plain.withTypeProvider<TypeBoxTypeProvider>();
    const sent = new WeakMap<FastifyRequest, Buffer>();
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer' }, (request, body, done) => {
      const bytes = body as Buffer;
      sent.set(request, bytes);
      try {
        done(null, JSON.parse(bytes.toString('utf8')));
      } catch {
        done(Object.assign(new Error(`the body must be JSON: ${JSON_EXAMPLE}`), { statusCode: 400 }), undefined);
      }
    });
    // Only the body limit differs from the client port's other routes; every other error goes on to
    // the port's own handler (an error handler that throws hands the error to its parent's).
    scope.setErrorHandler((error: Error & { code?: string }, _request, reply) => {
      if (error.code !== 'FST_ERR_CTP_BODY_TOO_LARGE') throw error;
      return sendError(
        reply,
        413,
        'txn_too_large',
        `the transaction's body exceeds limits.maxTxnBytes (${limits.maxTxnBytes} bytes): split it, or write big values with PUT /kv/<key>`,
      );
    });
    const schema = { querystring: schemas.writeQuery, body: schemas.txnBody };
    scope.post('/txn', { schema, bodyLimit: limits.maxTxnBytes }, async (request, reply) => {
      // A transaction's conditions are its compare list: a precondition header would be ignored,
      // and a client that sent one expects it to hold.
      if (request.headers['if-match'] !== undefined || request.headers['if-none-match'] !== undefined) {
        return sendError(
          reply,
          400,
          'bad_precondition',
          'POST /txn takes no If-Match or If-None-Match: put its conditions in "compare" (e.g. {"key":"k","modIndex":5} or {"key":"k","exists":false})',
        );
      }
      const txn = parseTxn(request.body, limits);
      if (!txn.ok) return sendErrorAnswer(reply, txn.refusal);
      const write = requestWrite(txn.request, request.headers);
      if (!write.ok) return sendErrorAnswer(reply, write.refusal);
      return options.submit(request, reply, request.query.redirect === 'true', write.write, sent.get(request));
    });
  };
}
