/**
 * Mounts the operator REST API on the bridge's fastify instance: `/api/*` and `/openapi.json`, both behind the
 * bearer token, with the JSON error shape for every failure inside the scope.
 */
import { maxHeaderSize } from "node:http";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { DEFAULT_DECODE_LIMITS } from "../../codecs/codec.ts";
import { bearerToken, tokensEqual } from "./auth.ts";
import type { OperatorDeps } from "./deps.ts";
import { API_ERROR_CODES, apiErrorHandler, sendError } from "./errors.ts";
import { useExactJsonBodies } from "./json-body.ts";
import { OpenApiCollector } from "./openapi.ts";
import { registerApprovalRoutes } from "./routes/approvals.ts";
import { registerBackupRoutes } from "./routes/backup.ts";
import { registerCommandRoutes } from "./routes/commands.ts";
import { registerConversationRoutes } from "./routes/conversation.ts";
import { registerDeviceRoutes } from "./routes/devices.ts";
import { registerFleetRoutes } from "./routes/fleet.ts";
import { registerShadowRoutes } from "./routes/shadow.ts";
import { registerTelemetryRoutes } from "./routes/telemetry.ts";
import { apiValidatorCompiler } from "./validation.ts";

/** Deepest nesting of a JSON body: the device frame limit (16) plus the request's own wrapping. */
export const MAX_BODY_DEPTH = DEFAULT_DECODE_LIMITS.maxDepth + 2;

/** Largest JSON body the API accepts, bytes. Desired-state patches and command args are small. */
export const API_BODY_LIMIT_BYTES = 256 * 1024;

/**
 * The router limit (`routerOptions.maxParamLength`) of a fastify instance serving the API: as long as a request head
 * Node reads, so no path parameter is refused by the router first. Each route's schema bounds its ids (the agent id
 * rule) and answers an over-long one with the 400 that names it; fastify's default of 100 answered 414 naming only
 * the url past 100 characters, and let 65 to 100 through to the schema's 400. The API has no regex routes, whose
 * matching the limit is there to bound.
 */
export const API_MAX_PARAM_LENGTH = maxHeaderSize;

/**
 * Registers the REST API and `/openapi.json`.
 *
 * @example
 * const app = Fastify();
 * await registerOperatorApi(app, { runtime, registry, broker, engine, activity: metrics.activity, apiToken });
 */
export async function registerOperatorApi(app: FastifyInstance, deps: OperatorDeps): Promise<void> {
  if (typeof deps.apiToken !== "string" || deps.apiToken === "") {
    throw new TypeError("registerOperatorApi: deps.apiToken must be a non-empty string");
  }
  const openapi = new OpenApiCollector({
    title: "Agent Bridge operator API",
    version: "1",
    description: "Devices, shadows, commands, telemetry, conversations and approvals. See docs/api.md.",
  });
  openapi.addManual("get", "/metrics", "Prometheus metrics (text exposition format)", ["metrics"], {
    mediaType: "text/plain",
    schema: { type: "string" },
  });
  const authenticate = bearerHook(deps.apiToken);

  await app.register(
    async (api) => {
      api.setErrorHandler(apiErrorHandler);
      api.setValidatorCompiler(apiValidatorCompiler);
      // Integers beyond 2^53 in bodies reach agents exactly instead of rounded by JSON.parse. The parser is also the
      // depth check of every body: agents store values in binary codecs with recursive encoders, so deep bodies are
      // refused as device frames are.
      useExactJsonBodies(api, MAX_BODY_DEPTH);
      // fastify's default text/plain parser handed a JSON body sent as text/plain to the schema as a string, refused
      // as `body must be object`; without it, that body gets the 415 asking for application/json, as any other type.
      api.removeContentTypeParser("text/plain");
      api.setNotFoundHandler((request, reply) => {
        sendError(reply, 404, API_ERROR_CODES.notFound, `no route ${request.method} ${request.url.split("?")[0]}`);
      });
      api.addHook("onRoute", (route) => {
        // Patches and command args are small; a tighter limit than the server's keeps floods cheap.
        route.bodyLimit ??= API_BODY_LIMIT_BYTES;
        openapi.add(route);
      });
      api.addHook("onRequest", authenticate);
      registerDeviceRoutes(api, deps);
      registerShadowRoutes(api, deps);
      registerCommandRoutes(api, deps);
      registerTelemetryRoutes(api, deps);
      registerConversationRoutes(api, deps);
      registerApprovalRoutes(api, deps);
      registerFleetRoutes(api, deps);
      registerBackupRoutes(api, deps);
    },
    { prefix: "/api" },
  );

  await app.register(async (scope) => {
    scope.setErrorHandler(apiErrorHandler);
    scope.addHook("onRequest", authenticate);
    scope.get("/openapi.json", async () => openapi.document());
  });
}

/** An onRequest hook answering 401 with the standard error body unless the bearer token matches. */
export function bearerHook(expected: string): (request: FastifyRequest, reply: FastifyReply) => Promise<void> {
  return async (request, reply) => {
    const given = bearerToken(request.headers.authorization);
    if (given !== undefined && tokensEqual(given, expected)) return;
    reply.header("www-authenticate", 'Bearer realm="agent-bridge"');
    await sendError(reply, 401, API_ERROR_CODES.unauthorized, "send Authorization: Bearer <operator token>");
  };
}
