/**
 * JSON Schemas shared by the API routes. Fastify validates requests with them and `openapi.ts` publishes them,
 * so the documentation cannot drift from what is enforced.
 */

import { DEVICE_ID_MAX_LENGTH, DEVICE_ID_PATTERN } from "../../codecs/device-id.ts";

/** The device id rule, the same as MQTT client ids and agent ids; errors.ts words its refusal. */
export { DEVICE_ID_PATTERN };

/**
 * An id in a path that an agent hands out (a command's, an approval's): as long as an agent id may be, so one rule
 * bounds every id an operator passes. The agents' own ids are far shorter (`cmd-` or `ap-` and a few characters).
 */
export const agentItemIdSchema = { type: "string", minLength: 1, maxLength: DEVICE_ID_MAX_LENGTH } as const;

export const deviceIdParams = {
  type: "object",
  required: ["id"],
  properties: { id: { type: "string", pattern: DEVICE_ID_PATTERN, description: "Device (agent) id" } },
} as const;

/**
 * An integer field of the API (a version, a limit, a count) from `minimum` to `maximum`, at most 2^53-1. ajv's
 * `integer` alone takes any integral double (`1e300`), a value no version or count can be and that would reach an
 * agent only to be refused there; bounded here, it is a 400 naming the field before any agent is woken.
 *
 * @example
 * expectedVersion: { ...integerField(0), description: "Current desired version" }
 */
export function integerField(
  minimum: number,
  maximum: number = Number.MAX_SAFE_INTEGER,
): { type: "integer"; minimum: number; maximum: number } {
  return { type: "integer", minimum, maximum };
}

export const codecSchema = { type: "string", enum: ["json", "cbor", "pb"] } as const;

/** Any JSON value (agent values are converted with `toJsonValue`). */
export const anyJson = {} as const;

/** Standard error body, for the OpenAPI document. */
export const errorBodySchema = {
  type: "object",
  required: ["error"],
  properties: {
    error: {
      type: "object",
      required: ["code", "message"],
      properties: {
        code: { type: "string", description: "Stable code, see docs/errors.md" },
        message: { type: "string" },
        field: { type: "string", description: "The request field at fault, e.g. body.state" },
      },
    },
  },
} as const;

// Route documentation keys read by openapi.ts (the same ones @fastify/swagger reads); fastify ignores them.
declare module "fastify" {
  interface FastifySchema {
    summary?: string;
    description?: string;
    tags?: readonly string[];
  }
  interface FastifyContextConfig {
    /** Status of a successful response, for the OpenAPI document. Default 200. */
    successStatus?: number;
    /** JSON Schema of the successful response's body, for the OpenAPI document only (see response-schemas.ts). */
    successSchema?: Readonly<Record<string, unknown>>;
    /**
     * Error statuses of this route that the OpenAPI document cannot infer from its schema (a 409, an agent's 410 or
     * 503), with their descriptions.
     */
    errorResponses?: Readonly<Record<number, string>>;
  }
}
