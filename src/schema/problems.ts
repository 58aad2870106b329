// TypeBox validation errors in words a person can act on: where the bad value is and what it must be.
// Shared by the cluster config (src/config) and the HTTP routes of both ports (fastify-validation.ts),
// so every refusal of bad input reads the same way: `limit must be an integer from 1 to 10000, got "x"`,
// `raft: unknown key "tickMS" (known: tickMs, electionTicks, ...)`.
//
// What a value must be comes from its schema's `description` (schemas here always set one: the
// helpers below build the text from the same numbers as the bounds, so the two cannot drift), with
// TypeBox's own message as the fallback.
import Type, { type TSchema } from 'typebox';
import type { TLocalizedValidationError } from 'typebox/error';

export type PathSegment = string | number;

export interface Problem {
  /** Where the bad value is: property names and array indices from the validated value's root. */
  readonly path: readonly PathSegment[];
  /**
   * `value`: `text` is a predicate on the value at `path` ("must be ..., got ...", "is missing: ...").
   * `keys`: the object at `path` has keys its schema does not know; `text` names them and the known ones.
   */
  readonly kind: 'value' | 'keys';
  readonly text: string;
  /** The schema's `errorCode` annotation, where it has one: the API code its refusal is answered with. */
  readonly errorCode: string | undefined;
}

/** The most problems one refusal lists: a body of 10,000 bad keys must not make a 10,000-line answer. */
export const MAX_PROBLEMS = 5;
/** Values quoted back are cut to this many characters (a refused key may be a kilobyte long). */
const MAX_QUOTED_CHARS = 64;

/** An integer schema whose description states its bounds in the given words. */
export function integerIn(min: number, max: number, describe: (min: number, max: number) => string) {
  return Type.Integer({ minimum: min, maximum: max, description: describe(min, max) });
}

/** "an integer in [1, 10000]": the config file's wording. */
export const inBrackets = (min: number, max: number): string => `an integer in [${min}, ${max}]`;
/** "an integer from 1 to 10000": the HTTP API's wording. */
export const fromTo = (min: number, max: number): string => `an integer from ${min} to ${max}`;

/** Unknown keys found in one object of the value, and that object's schema. */
interface UnknownKeys {
  readonly path: PathSegment[];
  readonly names: Set<string>;
  readonly object: Record<string, unknown> | undefined;
}

/**
 * The problems TypeBox found in `value`, worded: unknown keys first, one problem per object (a
 * misspelt key also makes its correct spelling "missing", and the misspelling is what to fix), then
 * the rest in TypeBox's order, without duplicates. TypeBox reports at most 8 errors (its `maxErrors`,
 * a bound against huge bodies), so this is the first few problems, not necessarily all of them.
 */
export function describeErrors(
  schema: TSchema,
  value: unknown,
  errors: readonly TLocalizedValidationError[],
): Problem[] {
  const unknownKeys = new Map<string, UnknownKeys>();
  const others: Problem[] = [];
  const seen = new Set<string>();
  const addUnknown = (path: PathSegment[], objectSchemaPath: string, names: readonly string[]): void => {
    const id = path.join('/');
    let entry = unknownKeys.get(id);
    if (entry === undefined) {
      entry = { path, names: new Set(), object: schemaAt(schema, objectSchemaPath) };
      unknownKeys.set(id, entry);
    }
    for (const name of names) entry.names.add(name);
  };
  for (const error of errors) {
    const path = parsePointer(error.instancePath);
    if (error.keyword === 'additionalProperties') {
      addUnknown(path, error.schemaPath, error.params.additionalProperties);
    } else if (error.keyword === 'boolean' && error.schemaPath.endsWith('/additionalProperties') && path.length > 0) {
      // `additionalProperties: false` reports each unknown key on its own first (and may use up
      // TypeBox's error budget before the summary): the key is the last segment of the path.
      const objectSchemaPath = error.schemaPath.slice(0, -'/additionalProperties'.length);
      addUnknown(path.slice(0, -1), objectSchemaPath, [String(path[path.length - 1])]);
    } else {
      for (const problem of describeError(schema, value, path, error)) {
        const id = `${problem.path.join('/')} ${problem.text}`;
        if (seen.has(id)) continue;
        seen.add(id);
        others.push(problem);
      }
    }
  }
  const keys = [...unknownKeys.values()].map(({ path, names, object }): Problem => {
    const known = Object.keys(asRecord(object?.['properties']) ?? {});
    const quoted = [...names].map((name) => JSON.stringify(name)).join(', ');
    const text = `unknown key${names.size === 1 ? '' : 's'} ${quoted} (known: ${known.join(', ') || 'none'})`;
    return { path, kind: 'keys', text, errorCode: errorCodeOf(object) };
  });
  const problems = [...keys, ...others];
  // Never an empty refusal, whatever TypeBox reported.
  if (problems.length > 0) return problems;
  return [{ path: [], kind: 'value', text: 'does not match its schema', errorCode: undefined }];
}

function describeError(
  root: TSchema,
  value: unknown,
  path: PathSegment[],
  error: TLocalizedValidationError,
): Problem[] {
  const at = schemaAt(root, error.schemaPath);
  const errorCode = errorCodeOf(at);
  if (error.keyword === 'required') {
    const properties = asRecord(at?.['properties']) ?? {};
    return error.params.requiredProperties.map((name) => {
      const expected = description(asRecord(properties[name]));
      const text = expected === undefined ? 'is missing' : `is missing: it must be ${expected}`;
      return { path: [...path, name], kind: 'value', text, errorCode };
    });
  }
  return [valueProblem(path, at, value, error.message, errorCode)];
}

function errorCodeOf(schema: Record<string, unknown> | undefined): string | undefined {
  const code = schema?.['errorCode'];
  return typeof code === 'string' ? code : undefined;
}

function valueProblem(
  path: PathSegment[],
  schema: Record<string, unknown> | undefined,
  root: unknown,
  fallback: string,
  errorCode: string | undefined,
): Problem {
  const expected = description(schema);
  const got = quote(valueAt(root, path));
  const text = `${expected === undefined ? fallback : `must be ${expected}`}, got ${got}`;
  return { path, kind: 'value', text, errorCode };
}

function description(schema: Record<string, unknown> | undefined): string | undefined {
  const text = schema?.['description'];
  return typeof text === 'string' ? text : undefined;
}

/** A value as JSON, cut short: enough to recognise it, never a whole body. */
export function quote(value: unknown): string {
  const text = value === undefined ? 'nothing' : (JSON.stringify(value) ?? String(value));
  return text.length <= MAX_QUOTED_CHARS ? text : `${text.slice(0, MAX_QUOTED_CHARS)}...`;
}

/** "/keys/3" -> ["keys", 3]; "" -> []. */
function parsePointer(pointer: string): PathSegment[] {
  if (pointer === '' || pointer === '#') return [];
  return pointer
    .replace(/^#/, '')
    .split('/')
    .slice(1)
    .map((part) => {
      const name = part.replace(/~1/g, '/').replace(/~0/g, '~');
      return /^(0|[1-9]\d*)$/.test(name) ? Number(name) : name;
    });
}

/** The sub-schema at a TypeBox schemaPath ("#/properties/keys/items"). */
function schemaAt(root: TSchema, schemaPath: string): Record<string, unknown> | undefined {
  let at = asRecord(root);
  for (const segment of parsePointer(schemaPath)) at = asRecord(at?.[String(segment)]);
  return at;
}

function valueAt(root: unknown, path: readonly PathSegment[]): unknown {
  let at = root;
  for (const segment of path) at = asRecord(at)?.[String(segment)];
  return at;
}

export function asRecord(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
}
