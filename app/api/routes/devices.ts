/**
 * Device provisioning and the fleet table: list, get, create (secret shown once), delete (record and agent data).
 */
import type { FastifyInstance } from "fastify";
import { AGENT_ERRORS } from "../../../agents/index.ts";
import type { CodecName } from "../../../codecs/frames.ts";
import { AGENT_CALL_RESPONSES, callDeviceAgent, RUNTIME_CLOSED_RESPONSES, requireDevice } from "../agent-call.ts";
import { unknownAgentClass } from "../agent-class-check.ts";
import type { OperatorDeps, OperatorDeviceRecord } from "../deps.ts";
import { API_ERROR_CODES, ApiError } from "../errors.ts";
import { type JsonValue, toJsonValue } from "../json-value.ts";
import {
  deviceCreatedAnswer,
  deviceDetailAnswer,
  deviceListAnswer,
  deviceRemovedAnswer,
  secretRotatedAnswer,
} from "../response-schemas.ts";
import { codecSchema, DEVICE_ID_PATTERN, deviceIdParams, integerField } from "../schemas.ts";
import { DeviceRemovals } from "./device-removals.ts";

/** Largest page of `GET /api/devices`. */
export const MAX_DEVICE_PAGE = 10_000;

/** One row of the fleet table. */
export interface DeviceSummary {
  id: string;
  online: boolean;
  codec: CodecName | null;
  agentClass: string | null;
  /**
   * The class that serves the device instead of `agentClass`, which the bridge does not serve (a class removed from
   * the config or the code); null when the device is served as provisioned.
   */
  agentClassFallback: string | null;
  firmware: string | null;
  createdAt: number | null;
  lastSeenAt: number | null;
  lastTelemetry: { at: number; readings: JsonValue } | null;
}

export function summarize(deps: OperatorDeps, record: OperatorDeviceRecord): DeviceSummary {
  const seen = [record.lastSeen, deps.activity?.lastSeen(record.id)].filter((t): t is number => typeof t === "number");
  const telemetry = deps.activity?.lastTelemetry(record.id);
  return {
    id: record.id,
    online: deps.broker.isOnline(record.id),
    codec: record.codec ?? null,
    agentClass: record.agentClass ?? null,
    agentClassFallback: deps.agentClassFallback?.(record) ?? null,
    firmware: record.firmware ?? null,
    createdAt: record.createdAt ?? null,
    lastSeenAt: seen.length > 0 ? Math.max(...seen) : null,
    lastTelemetry: telemetry === undefined ? null : { at: telemetry.at, readings: toJsonValue(telemetry.readings) },
  };
}

/** What `DELETE /api/devices/:id` removed. */
export interface DeviceRemoval {
  id: string;
  removed: {
    /** The registry record was there (false: `agent-bridge devices rm` had removed it). */
    record: boolean;
    /** The agent had data (database, schedules, directory entries) or live connections. */
    agentData: boolean;
  };
}

/**
 * The agent's own status (DeviceAgent's `getStatus`), or null when the device's agent class has none: a device served
 * by an agent of its own is still a device, with its registry record and live facts.
 */
async function agentStatus(deps: OperatorDeps, id: string): Promise<JsonValue | null> {
  try {
    return toJsonValue(await callDeviceAgent(deps, id, "getStatus", []));
  } catch (err) {
    if (err instanceof ApiError && err.code === AGENT_ERRORS.CALL_UNKNOWN_METHOD) return null;
    throw err;
  }
}

export function registerDeviceRoutes(api: FastifyInstance, deps: OperatorDeps): void {
  const now = () => (deps.clock ?? Date).now();
  const removals = new DeviceRemovals();
  api.get<{
    Querystring: { online?: boolean; agentClassFallback?: boolean; q?: string; limit?: number; offset?: number };
  }>(
    "/devices",
    {
      schema: {
        summary: "List registered devices with online status, last seen and last telemetry, sorted by id",
        tags: ["devices"],
        querystring: {
          type: "object",
          properties: {
            online: { type: "boolean", description: "Only online (true) or offline (false) devices" },
            agentClassFallback: {
              type: "boolean",
              description:
                "Only devices asking for an agent class the bridge does not serve, served by a fallback class " +
                "(true), or only the others (false)",
            },
            q: { type: "string", maxLength: 64, description: "Only ids containing this text (case-insensitive)" },
            limit: { ...integerField(1, MAX_DEVICE_PAGE), description: "Page size; default all" },
            // Bounded because the registry pages in SQL, where an offset past 64 bits is an error, not an empty page.
            offset: { ...integerField(0), default: 0 },
          },
        },
      },
      config: { successSchema: deviceListAnswer },
    },
    async (request) => {
      const { online, agentClassFallback, q, limit, offset = 0 } = request.query;
      // Filters need every record; without them the registry pages in SQL.
      const filtered = online !== undefined || agentClassFallback !== undefined || (q !== undefined && q !== "");
      const records = filtered ? deps.registry.list() : deps.registry.list({ limit: limit ?? -1, offset });
      let devices = records.map((r) => summarize(deps, r));
      if (online !== undefined) devices = devices.filter((d) => d.online === online);
      if (agentClassFallback !== undefined) {
        devices = devices.filter((d) => (d.agentClassFallback !== null) === agentClassFallback);
      }
      if (q !== undefined && q !== "") {
        const needle = q.toLowerCase();
        devices = devices.filter((d) => d.id.toLowerCase().includes(needle));
      }
      devices.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      // Every device the filters keep, before paging: without filters, the fleet's size (an operator paging through
      // the fleet learns how many pages there are).
      const matched = filtered ? devices.length : deps.registry.count();
      if (filtered) devices = devices.slice(offset, limit === undefined ? undefined : offset + limit);
      return { devices, total: devices.length, matched };
    },
  );

  api.get<{ Params: { id: string } }>(
    "/devices/:id",
    {
      schema: {
        summary: "One device: registry record, live status and the agent's status",
        tags: ["devices"],
        params: deviceIdParams,
      },
      config: { successSchema: deviceDetailAnswer, errorResponses: AGENT_CALL_RESPONSES },
    },
    async (request) => {
      const record = await requireDevice(deps, request.params.id);
      const status = await agentStatus(deps, record.id);
      // The time its ages are measured against, as GET /api/fleet reports it for the fleet table: a client whose
      // clock is off would otherwise show this device as seen at another age there than here.
      return { ...summarize(deps, record), status, serverTime: now() };
    },
  );

  api.post<{ Body: { id: string; codec?: CodecName; agentClass?: string } }>(
    "/devices",
    {
      schema: {
        summary: "Provision a device; the response holds its MQTT secret, shown only this once",
        tags: ["devices"],
        body: {
          type: "object",
          required: ["id"],
          additionalProperties: false,
          properties: {
            id: { type: "string", pattern: DEVICE_ID_PATTERN },
            codec: codecSchema,
            agentClass: { type: "string", minLength: 1, maxLength: 128 },
          },
        },
      },
      config: {
        successStatus: 201,
        successSchema: deviceCreatedAnswer,
        errorResponses: { 409: "The id is already registered (BRIDGE_ERR_API_DEVICE_EXISTS)" },
      },
    },
    async (request, reply) => {
      const { id, codec, agentClass } = request.body;
      const known = deps.agentClassNames;
      const unknown =
        agentClass === undefined || known === undefined
          ? undefined
          : unknownAgentClass("body.agentClass", agentClass, known);
      if (unknown !== undefined) throw new ApiError(400, API_ERROR_CODES.validation, unknown, "body.agentClass");
      const options: { codec?: CodecName; agentClass?: string } = {};
      if (codec !== undefined) options.codec = codec;
      if (agentClass !== undefined) options.agentClass = agentClass;
      // Not into an agent that a DELETE of this id is still destroying (device-removals.ts).
      await removals.settled(id);
      const result = await deps.registry.add(id, options);
      if (result.status === "exists") {
        throw new ApiError(409, API_ERROR_CODES.deviceExists, `device ${id} is already registered`, "body.id");
      }
      if (result.status === "invalid") {
        throw new ApiError(400, API_ERROR_CODES.validation, result.message, `body.${result.field}`);
      }
      reply.code(201).header("cache-control", "no-store");
      return { device: summarize(deps, result.device), secret: result.secret };
    },
  );

  api.post<{ Params: { id: string }; Querystring: { endSessions?: boolean } }>(
    "/devices/:id/secret",
    {
      schema: {
        summary: "Issue a new MQTT secret for the device (shown once); the old one stops working at once",
        tags: ["devices"],
        params: deviceIdParams,
        querystring: {
          type: "object",
          properties: {
            endSessions: {
              type: "boolean",
              default: false,
              description:
                "Also end the device's open sessions at once (a leaked secret). Default false: a session stays " +
                "until it reconnects, so a new secret can still be delivered over it",
            },
          },
          additionalProperties: false,
        },
      },
      config: {
        successSchema: secretRotatedAnswer,
        errorResponses: { 501: "This registry cannot rotate secrets (BRIDGE_ERR_API_NOT_IMPLEMENTED)" },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      await requireDevice(deps, id);
      if (deps.registry.rotateSecret === undefined) {
        throw new ApiError(501, API_ERROR_CODES.notImplemented, "this registry cannot rotate secrets");
      }
      const secret = await deps.registry.rotateSecret(id);
      if (secret === undefined) {
        throw new ApiError(404, API_ERROR_CODES.deviceNotFound, `device ${id} is not registered`, "params.id");
      }
      // A leaked secret: a session that logged in with it would otherwise stay. Not by default, since a routine
      // rotation may deliver the new secret to the device over the session it has.
      const endedSessions = request.query.endSessions === true ? (deps.broker.endSessions?.(id, "revoked") ?? 0) : 0;
      reply.header("cache-control", "no-store");
      return { id, secret, endedSessions };
    },
  );

  api.delete<{ Params: { id: string } }>(
    "/devices/:id",
    {
      schema: {
        summary:
          "Remove a device: its registry record, its MQTT session and its agent's data (also data left by devices rm)",
        tags: ["devices"],
        params: deviceIdParams,
      },
      config: { successSchema: deviceRemovedAnswer, errorResponses: RUNTIME_CLOSED_RESPONSES },
    },
    (request): Promise<DeviceRemoval> => removals.run(request.params.id, () => removeDevice(deps, request.params.id)),
  );
}

async function removeDevice(deps: OperatorDeps, id: string): Promise<DeviceRemoval> {
  // Refused before the first step: the runtime refuses the destroy below once it has shut down, and a DELETE that had
  // taken the record by then would leave a device that can no longer log in, with its agent data still there. No
  // await from here to the destroy, so the runtime cannot shut down in between.
  if (deps.runtime.closed) {
    throw new ApiError(
      503,
      AGENT_ERRORS.RUNTIME_CLOSED,
      `the agent runtime is shut down (nothing of ${id} was removed): send the DELETE again once the bridge is back`,
    );
  }
  // Registry first so the device cannot log in again while its agent is being destroyed.
  const record = deps.registry.remove(id);
  // Then its sessions, closed as `removed`: the destroy below would close them too, but as a failed session ("error"),
  // which is what the counters and logs would show for every device an operator removes.
  deps.broker.endSessions?.(id, "removed");
  // Whether or not the id is registered: `devices rm` (another process) removes only the record, and the agent's
  // database, schedules and directory entries would otherwise be out of every operator's reach. Destroying the
  // agent closes its connections: the device's MQTT session and operators' WebSocket clients.
  const agentData = await deps.runtime.destroyAgent(id);
  if (!record && !agentData) {
    throw new ApiError(
      404,
      API_ERROR_CODES.deviceNotFound,
      `device ${id} is not registered and has no agent data`,
      "params.id",
    );
  }
  // Last, once the session has ended: a device later provisioned under this id must not inherit its last readings.
  deps.activity?.forget?.(id);
  return { id, removed: { record, agentData } };
}
