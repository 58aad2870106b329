// What the client API's routes accept in query strings and bodies, as TypeBox schemas built from the
// cluster config's limits (maxPageSize...), checked by Fastify before a handler runs
// (src/schema/fastify-validation.ts). Keys in the URL path are not here: parseKey (keys.ts) checks
// them (1 to maxKeyBytes bytes of UTF-8, no control characters), on both read paths alike; so are the
// keys of an /mget body, after the schema made sure they are strings.
//
// Unknown query parameters are ignored, as HTTP clients and proxies expect (cache busters, tracing);
// the fast path (fast-get.ts) takes only exact queries and leaves every other one to these schemas.
import Type, { type Static, type TSchema } from 'typebox';
import type { Limits } from '../config/cluster-config.js';
import { nodeIdSchema } from '../config/config-schema.js';
import { COMPARE_OPS } from '../storage/request.js';
import { fromTo, integerIn } from '../schema/problems.js';

const consistency = Type.Enum(['linearizable', 'stale', 'log'], {
  description: '"linearizable" (the default), "stale" or "log"',
});
const maxLagMs = Type.Number({ minimum: 0, description: 'a non-negative number of milliseconds' });
/** Writes, and reads through the log, on a follower: answer 307 to the leader instead of forwarding. */
const redirect = Type.Enum(['true', 'false'], { description: '"true" or "false"' });

/** Point reads and /mget: how consistent, and (stale reads) how stale at most. */
const readQuery = Type.Object({
  consistency: Type.Optional(consistency),
  max_lag_ms: Type.Optional(maxLagMs),
  redirect: Type.Optional(redirect),
});
export type ReadQuery = Static<typeof readQuery>;

const key = Type.String({ description: 'a key (a string)', errorCode: 'bad_key' });
const text = Type.String({ description: 'a string (the value as text)' });
const base64 = Type.String({ description: 'a string (the value in base64)' });
const count = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: 'a non-negative integer' });

/**
 * One comparison of POST /txn: a key and one target (exists, a number of its metadata, or its value)
 * with an optional operator. Which target, and whether cmp goes with it, is checked by txn.ts: a
 * union here would make TypeBox's refusal name every alternative instead of the field at fault.
 */
const txnCompare = Type.Object(
  {
    key,
    exists: Type.Optional(Type.Boolean({ description: 'true or false' })),
    modIndex: Type.Optional(count),
    createIndex: Type.Optional(count),
    version: Type.Optional(count),
    value: Type.Optional(text),
    valueBase64: Type.Optional(base64),
    cmp: Type.Optional(Type.Enum([...COMPARE_OPS], { description: 'one of "=", "!=", "<", ">", "<=", ">="' })),
  },
  {
    additionalProperties: false,
    description:
      'an object {"key", one of "exists", "modIndex", "createIndex", "version", "value", "valueBase64", and "cmp" if wanted}',
  },
);

const txnOp = Type.Object(
  {
    op: Type.Enum(['put', 'delete', 'get'], { description: '"put", "delete" or "get"' }),
    key,
    value: Type.Optional(text),
    valueBase64: Type.Optional(base64),
  },
  { additionalProperties: false, description: 'an object {"op", "key"} (a put also "value" or "valueBase64")' },
);

export type TxnCompareItem = Static<typeof txnCompare>;
export type TxnOpItem = Static<typeof txnOp>;

export function clientApiSchemas(limits: Limits) {
  const list = <T extends TSchema>(item: T, what: string) =>
    Type.Optional(
      Type.Array(item, {
        maxItems: limits.maxTxnOps,
        description: `an array of at most ${limits.maxTxnOps} ${what} (limits.maxTxnOps, for all three lists together)`,
      }),
    );
  return {
    readQuery,
    writeQuery: Type.Object({ redirect: Type.Optional(redirect) }),
    scanQuery: Type.Object({
      prefix: Type.Optional(Type.String({ description: 'one key prefix' })),
      start: Type.Optional(Type.String({ description: 'one key to start at (a page\'s "next")' })),
      limit: Type.Optional(integerIn(1, limits.maxPageSize, fromTo)),
      consistency: Type.Optional(consistency),
      max_lag_ms: Type.Optional(maxLagMs),
      redirect: Type.Optional(redirect),
    }),
    mgetBody: Type.Object(
      {
        keys: Type.Array(
          // A key that is not a string is a bad key, as one parseKey refuses is.
          Type.String({ description: 'a key (a string)', errorCode: 'bad_key' }),
          {
            minItems: 1,
            maxItems: limits.maxPageSize,
            description: `an array of 1 to ${limits.maxPageSize} keys`,
          },
        ),
      },
      { description: 'a JSON object {"keys":["a","b"]}' },
    ),
    txnBody: Type.Object(
      {
        compare: list(txnCompare, 'comparisons'),
        success: list(txnOp, 'operations'),
        failure: list(txnOp, 'operations'),
      },
      { additionalProperties: false, description: 'a JSON object {"compare":[...],"success":[...],"failure":[...]}' },
    ),
  };
}

/** A node's client or peer URL in a body; checkNodeUrl (src/config) then says what exactly is wrong with it. */
const nodeUrl = Type.String({ minLength: 1, description: 'a URL like http://127.0.0.1:7004' });

/**
 * Bodies of the admin routes (admin.ts). A new member's id obeys the cluster config's rule for node
 * ids (`nodeIdSchema`), so a member added at run time could also be written into the file.
 */
export const adminSchemas = {
  addMemberBody: Type.Object(
    { id: nodeIdSchema, clientUrl: nodeUrl, peerUrl: nodeUrl },
    {
      additionalProperties: false,
      description: 'a JSON object {"id", "clientUrl", "peerUrl"}',
    },
  ),
  /** `{"to": id}` or `{}` (the most up-to-date voter); no body at all is read as `{}` (admin.ts). */
  transferBody: Type.Object(
    { to: Type.Optional(nodeIdSchema) },
    {
      additionalProperties: false,
      description: 'a JSON object {"to": "<node id>"}, or {} (or no body) for the most up-to-date voter',
    },
  ),
};
export type AddMemberBody = Static<typeof adminSchemas.addMemberBody>;
export type TxnBody = Static<ReturnType<typeof clientApiSchemas>['txnBody']>;
