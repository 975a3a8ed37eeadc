/**
 * The API's request validators. Bodies are JSON and must match their schema exactly: no coercion (`"false"` is not a
 * boolean, `"60"` not an integer) and no unknown fields (a misspelt `ttl` for `ttlSeconds` is an error, not a silently
 * default TTL). Querystrings and path parameters are text by nature, so they keep fastify's coercion.
 */
import { Ajv, type ValidateFunction } from "ajv";
import type { FastifySchema, FastifySchemaCompiler } from "fastify";

/**
 * Strict body validation: JSON already carries its types; the first error is reported. Verbose, so an error has the
 * value at fault: a bigint (an integer beyond ±(2^53-1), json-body.ts) in a numeric field gets its own message.
 */
const bodyAjv = new Ajv({
  coerceTypes: false,
  removeAdditional: false,
  useDefaults: true,
  allErrors: false,
  verbose: true,
});

/** fastify's own defaults for the text parts of a request (`?limit=10` is the integer 10). */
const textAjv = new Ajv({ coerceTypes: "array", removeAdditional: true, useDefaults: true, allErrors: false });

/**
 * The validator compiler of the `/api` scope: strict for `body`, coercing for `querystring`, `params` and `headers`.
 *
 * @example
 * api.setValidatorCompiler(apiValidatorCompiler);
 */
export const apiValidatorCompiler: FastifySchemaCompiler<FastifySchema> = ({ schema, httpPart }) => {
  const ajv = httpPart === "body" ? bodyAjv : textAjv;
  const validate: ValidateFunction = ajv.compile(schema as object);
  return validate;
};
