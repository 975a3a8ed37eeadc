/**
 * Builds the OpenAPI 3 document from the routes' own JSON Schemas as they are registered, so what is documented
 * is exactly what is validated, and from the schemas of their answers they name (`config.successSchema`,
 * response-schemas.ts), which tests/api/openapi-contract.test.ts holds against real answers. (A small collector
 * rather than @fastify/swagger: no new dependency, and the API scope is the only place routes come from.)
 */
import type { RouteOptions } from "fastify";
import { RESPONSE_COMPONENTS } from "./response-schemas.ts";
import { errorBodySchema } from "./schemas.ts";

interface CollectedRoute {
  method: string;
  url: string;
  schema: Record<string, unknown>;
  successStatus: number;
  /** The success body: a JSON Schema under `application/json`, or another media type's. */
  successBody?: { mediaType: string; schema: Readonly<Record<string, unknown>> };
  errorResponses: Readonly<Record<number, string>>;
}

type JsonSchema = { type?: string; properties?: Record<string, unknown>; required?: readonly string[] };

/** Collects routes (feed it from an `onRoute` hook) and renders the OpenAPI document. */
export class OpenApiCollector {
  readonly #routes: CollectedRoute[] = [];

  constructor(private readonly info: { title: string; version: string; description?: string }) {}

  /** Call from `onRoute`. Routes without a schema summary (HEAD twins, internals) are left out. */
  add(route: RouteOptions): void {
    const schema = (route.schema ?? {}) as Record<string, unknown>;
    if (typeof schema.summary !== "string") return;
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const config = (route.config ?? {}) as {
      successStatus?: number;
      successSchema?: Readonly<Record<string, unknown>>;
      errorResponses?: Readonly<Record<number, string>>;
    };
    for (const method of methods) {
      if (method === "HEAD") continue;
      this.#routes.push({
        method: method.toLowerCase(),
        url: route.url,
        schema,
        successStatus: config.successStatus ?? 200,
        successBody:
          config.successSchema === undefined
            ? undefined
            : { mediaType: "application/json", schema: config.successSchema },
        errorResponses: config.errorResponses ?? {},
      });
    }
  }

  /** Adds a documented path registered elsewhere (e.g. /metrics), with its success body's media type and schema. */
  addManual(
    method: string,
    url: string,
    summary: string,
    tags: string[],
    successBody: { mediaType: string; schema: Readonly<Record<string, unknown>> },
  ): void {
    this.#routes.push({
      method: method.toLowerCase(),
      url,
      schema: { summary, tags },
      successStatus: 200,
      successBody,
      errorResponses: {},
    });
  }

  document(): Record<string, unknown> {
    const paths: Record<string, Record<string, unknown>> = {};
    for (const r of this.#routes) {
      const path = r.url.replace(/:([A-Za-z0-9_]+)/g, "{$1}");
      paths[path] ??= {};
      (paths[path] as Record<string, unknown>)[r.method] = this.#operation(r);
    }
    return {
      openapi: "3.0.3",
      info: this.info,
      components: {
        securitySchemes: { bearer: { type: "http", scheme: "bearer" } },
        schemas: { Error: errorBodySchema, ...RESPONSE_COMPONENTS },
      },
      security: [{ bearer: [] }],
      paths,
    };
  }

  #operation(r: CollectedRoute): Record<string, unknown> {
    const s = r.schema;
    const parameters = [
      ...toParameters(s.params as JsonSchema | undefined, "path"),
      ...toParameters(s.querystring as JsonSchema | undefined, "query"),
    ];
    const errorRef = {
      description: "",
      content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } },
    };
    const success: Record<string, unknown> = { description: r.successStatus === 204 ? "No content" : "Success" };
    if (r.successBody !== undefined) success.content = { [r.successBody.mediaType]: { schema: r.successBody.schema } };
    const responses: Record<string, unknown> = {
      [String(r.successStatus)]: success,
      "401": { ...errorRef, description: "Missing or wrong bearer token" },
    };
    if (parameters.length > 0 || s.body !== undefined)
      responses["400"] = { ...errorRef, description: "Invalid input; error.field names it" };
    if (s.body !== undefined) {
      // Every body passes the API scope's limit and its JSON-only parsers (register.ts) before its schema.
      responses["413"] = { ...errorRef, description: "Body over 256 KiB (BRIDGE_ERR_API_PAYLOAD_TOO_LARGE)" };
      responses["415"] = { ...errorRef, description: "Body not sent as application/json" };
    }
    if (r.url.includes(":")) {
      responses["404"] = { ...errorRef, description: "Unknown device or item" };
    }
    for (const [status, description] of Object.entries(r.errorResponses)) {
      responses[status] = { ...errorRef, description };
    }
    const op: Record<string, unknown> = { summary: s.summary, tags: s.tags ?? [], responses };
    if (parameters.length > 0) op.parameters = parameters;
    if (s.body !== undefined) op.requestBody = { required: true, content: { "application/json": { schema: s.body } } };
    return op;
  }
}

function toParameters(schema: JsonSchema | undefined, where: "path" | "query"): unknown[] {
  if (schema?.properties === undefined) return [];
  return Object.entries(schema.properties).map(([name, prop]) => {
    const { description, ...rest } = prop as { description?: string };
    const param: Record<string, unknown> = {
      name,
      in: where,
      required: where === "path" || (schema.required ?? []).includes(name),
      schema: rest,
    };
    if (description !== undefined) param.description = description;
    return param;
  });
}
