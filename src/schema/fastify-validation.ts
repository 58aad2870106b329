// Route schemas on Fastify, checked by TypeBox: the validator compiler and the ONE error formatter
// of both listeners (the client port and the peer port's fault route). A refusal names the bad field
// the way Fastify does (`querystring/limit`, `body/keys/3`) and says what it must be; each listener's
// error handler answers it in its own `{error, message}` shape (client-api.ts, peer-server.ts).
//
// Why TypeBox's compiler and not Fastify's default (Ajv with coerceTypes: 'array'): Ajv coerces
// bodies too, so `{"keys":[5, true]}` would read the keys "5" and "true". And why not the type
// provider's TypeBoxValidatorCompiler: its Value.Convert turns a query's "1.5" into the integer 1.
// Here nothing is coerced but what a query string cannot say otherwise: a query value declared a
// number takes a plain decimal string as that number; everything else reaches the check as it came.
import type { FastifyServerOptions, FastifySchemaCompiler, FastifySchemaValidationError } from 'fastify';
import type { TSchema } from 'typebox';
import { Compile } from 'typebox/compile';
import { asRecord, describeErrors, MAX_PROBLEMS, type Problem } from './problems.js';

/**
 * A decimal number as JavaScript reads one ("10", "010", "-1.5", ".5", "1e3"), but not what Number()
 * also takes and no person means as a number in a URL: "" (0), blanks, hex, "Infinity".
 */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** A validation refusal; `errorCode` is the code the schema asks for (`errorCode` annotation), if any. */
export class SchemaValidationError extends Error {
  override readonly name = 'SchemaValidationError';
  constructor(
    message: string,
    readonly errorCode: string | undefined,
  ) {
    super(message);
  }
}

/** Our problems travel to the formatter as Fastify validation errors, with the worded text as message. */
interface WordedError extends FastifySchemaValidationError {
  readonly problem: Problem;
}

export const typeboxValidatorCompiler: FastifySchemaCompiler<TSchema> = ({ schema, httpPart }) => {
  const validator = Compile(schema);
  const numeric = httpPart === 'querystring' || httpPart === 'params' ? numericProperties(schema) : [];
  return (value: unknown) => {
    const input = numeric.length === 0 ? value : withNumbers(value, numeric);
    if (validator.Check(input)) return { value: input };
    const problems = describeErrors(schema, input, validator.Errors(input));
    const error: WordedError[] = problems.map((problem) => ({
      keyword: problem.kind === 'keys' ? 'additionalProperties' : 'value',
      instancePath: problem.path.map((segment) => `/${segment}`).join(''),
      schemaPath: '',
      params: {},
      message: problem.text,
      problem,
    }));
    return { error };
  };
};

/**
 * `querystring/limit must be an integer from 1 to 10000, got "x"`; `body: unknown key "drop" (known:
 * dropTo, dropFrom)`. Several problems are joined with "; " (the first MAX_PROBLEMS of them).
 */
export const formatSchemaErrors: NonNullable<FastifyServerOptions['schemaErrorFormatter']> = (errors, dataVar) => {
  const shown = errors.slice(0, MAX_PROBLEMS).map((error) => {
    const where = `${dataVar}${error.instancePath}`;
    const text = error.message ?? `fails ${error.keyword}`;
    return error.keyword === 'additionalProperties' ? `${where}: ${text}` : `${where} ${text}`;
  });
  const more = errors.length > MAX_PROBLEMS ? ' (and more)' : '';
  const first = errors[0] as Partial<WordedError> | undefined;
  return new SchemaValidationError(`${shown.join('; ')}${more}`, first?.problem?.errorCode);
};

/** Names of the top-level properties declared number or integer. */
function numericProperties(schema: TSchema): string[] {
  const properties = asRecord(asRecord(schema)?.['properties']) ?? {};
  return Object.keys(properties).filter((name) => {
    const type = asRecord(properties[name])?.['type'];
    return type === 'integer' || type === 'number';
  });
}

/** The query with each numeric property that holds a plain decimal string as that number (in place). */
function withNumbers(value: unknown, numeric: readonly string[]): unknown {
  if (typeof value !== 'object' || value === null) return value;
  const query = value as Record<string, unknown>;
  for (const name of numeric) {
    const text = query[name];
    if (typeof text !== 'string' || !DECIMAL.test(text)) continue;
    const number = Number(text);
    // "1e400" stays a string: refused as it was written, not as Infinity.
    if (Number.isFinite(number)) query[name] = number;
  }
  return query;
}
