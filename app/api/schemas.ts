/**
 * JSON Schemas shared by the API routes. Fastify validates requests with them and `openapi.ts` publishes them,
 * so the documentation cannot drift from what is enforced.
 */

/** Same rule as MQTT client ids and agent ids (codecs topic helpers). */
export const DEVICE_ID_PATTERN = "^[A-Za-z0-9_.-]{1,64}$";

export const deviceIdParams = {
  type: "object",
  required: ["id"],
  properties: { id: { type: "string", pattern: DEVICE_ID_PATTERN, description: "Device (agent) id" } },
} as const;

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
  }
}
