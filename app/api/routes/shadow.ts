/**
 * The device shadow: reported and desired state with versions. Setting desired state with `expectedVersion`
 * is optimistic concurrency: a stale version is a 409 carrying the current version.
 */
import type { FastifyInstance } from "fastify";
import type { Value, ValueMap } from "../../../codecs/frames.ts";
import { AGENT_CALL_RESPONSES, callDeviceAgent } from "../agent-call.ts";
import type { OperatorDeps } from "../deps.ts";
import { ApiError } from "../errors.ts";
import { asMap, toJsonValue } from "../json-value.ts";
import { desiredSetAnswer, shadowAnswer } from "../response-schemas.ts";
import { deviceIdParams, integerField } from "../schemas.ts";

/** Code returned when `expectedVersion` is not the current desired version. */
export const SHADOW_CONFLICT_CODE = "BRIDGE_ERR_API_SHADOW_CONFLICT";

export function registerShadowRoutes(api: FastifyInstance, deps: OperatorDeps): void {
  api.get<{ Params: { id: string } }>(
    "/devices/:id/shadow",
    {
      schema: { summary: "Reported and desired state with their versions", tags: ["shadow"], params: deviceIdParams },
      config: { successSchema: shadowAnswer, errorResponses: AGENT_CALL_RESPONSES },
    },
    async (request) => toJsonValue(await callDeviceAgent(deps, request.params.id, "getShadow", [])),
  );

  api.put<{ Params: { id: string }; Body: { state: ValueMap; expectedVersion?: number } }>(
    "/devices/:id/shadow/desired",
    {
      schema: {
        summary: "Merge a patch into the desired state (null deletes a key); 409 when expectedVersion is stale",
        tags: ["shadow"],
        params: deviceIdParams,
        body: {
          type: "object",
          required: ["state"],
          additionalProperties: false,
          properties: {
            state: { type: "object", description: "Patch of desired state" },
            expectedVersion: {
              ...integerField(0),
              description: "Current desired version, for optimistic concurrency",
            },
          },
        },
      },
      config: {
        successSchema: desiredSetAnswer,
        errorResponses: { ...AGENT_CALL_RESPONSES, 409: "expectedVersion is stale (BRIDGE_ERR_API_SHADOW_CONFLICT)" },
      },
    },
    async (request) => {
      const { state, expectedVersion } = request.body;
      const args: Value[] = expectedVersion === undefined ? [state] : [state, expectedVersion];
      const value = await callDeviceAgent(deps, request.params.id, "setDesired", args);
      // DeviceAgent reports a stale version as a value ({ status: "conflict" | "stale", version }), not a fault.
      const map = asMap(value);
      if (map !== undefined && (map.status === "conflict" || map.status === "stale")) {
        const current = typeof map.version === "number" ? ` (current version ${map.version})` : "";
        throw new ApiError(409, SHADOW_CONFLICT_CODE, `expectedVersion is stale${current}`, "body.expectedVersion");
      }
      return toJsonValue(value);
    },
  );
}
