/**
 * Commands: queued in the agent's persistent outbox and delivered in order when the device is online.
 * States: QUEUED -> SENT -> SUCCEEDED / FAILED / EXPIRED.
 */
import type { FastifyInstance } from "fastify";
import type { Value, ValueMap } from "../../../codecs/frames.ts";
import { AGENT_CALL_RESPONSES, callDeviceAgent } from "../agent-call.ts";
import type { OperatorDeps } from "../deps.ts";
import { ApiError } from "../errors.ts";
import { toJsonValue } from "../json-value.ts";
import { commandAnswer, commandListAnswer } from "../response-schemas.ts";
import { agentItemIdSchema, deviceIdParams, integerField } from "../schemas.ts";

export const COMMAND_STATES = ["QUEUED", "SENT", "SUCCEEDED", "FAILED", "EXPIRED"] as const;

/** Most commands one list request returns. */
export const MAX_COMMAND_LIST = 500;

interface CommandBody {
  name: string;
  args?: Value;
  ttlSeconds?: number;
  maxAttempts?: number;
  ackTimeoutSeconds?: number;
}

export function registerCommandRoutes(api: FastifyInstance, deps: OperatorDeps): void {
  api.post<{ Params: { id: string }; Body: CommandBody }>(
    "/devices/:id/commands",
    {
      schema: {
        summary: "Queue a command for the device",
        tags: ["commands"],
        params: deviceIdParams,
        body: {
          type: "object",
          required: ["name"],
          additionalProperties: false,
          properties: {
            name: { type: "string", minLength: 1, maxLength: 64 },
            args: { description: "Command arguments, any JSON" },
            ttlSeconds: { ...integerField(1, 30 * 86400), description: "Expires after" },
            maxAttempts: { ...integerField(1, 100), description: "Deliveries before FAILED" },
            ackTimeoutSeconds: {
              ...integerField(0, 30 * 86400),
              description: "Delivered again when not acknowledged this long after a delivery; 0: never",
            },
          },
        },
      },
      config: { successStatus: 201, successSchema: commandAnswer, errorResponses: AGENT_CALL_RESPONSES },
    },
    async (request, reply) => {
      const { name, args, ttlSeconds, maxAttempts, ackTimeoutSeconds } = request.body;
      const spec: ValueMap = { name };
      if (args !== undefined) spec.args = args;
      if (ttlSeconds !== undefined) spec.ttlSeconds = ttlSeconds;
      if (maxAttempts !== undefined) spec.maxAttempts = maxAttempts;
      if (ackTimeoutSeconds !== undefined) spec.ackTimeoutSeconds = ackTimeoutSeconds;
      const command = await callDeviceAgent(deps, request.params.id, "sendCommand", [spec]);
      reply.code(201);
      return toJsonValue(command);
    },
  );

  api.get<{ Params: { id: string }; Querystring: { state?: string; limit?: number } }>(
    "/devices/:id/commands",
    {
      schema: {
        summary: "Recent commands and their states, newest first",
        tags: ["commands"],
        params: deviceIdParams,
        querystring: {
          type: "object",
          properties: {
            state: { type: "string", enum: [...COMMAND_STATES] },
            limit: { ...integerField(1), default: 50, description: `Capped at ${MAX_COMMAND_LIST}` },
          },
        },
      },
      config: { successSchema: commandListAnswer, errorResponses: AGENT_CALL_RESPONSES },
    },
    async (request) => {
      const { state, limit } = request.query;
      const filter: ValueMap = { limit: Math.min(limit ?? 50, MAX_COMMAND_LIST) };
      if (state !== undefined) filter.state = state;
      const commands = await callDeviceAgent(deps, request.params.id, "listCommands", [filter]);
      return { commands: toJsonValue(commands) };
    },
  );

  api.get<{ Params: { id: string; cmdId: string } }>(
    "/devices/:id/commands/:cmdId",
    {
      schema: {
        summary: "One command and its state",
        tags: ["commands"],
        params: {
          type: "object",
          required: ["id", "cmdId"],
          properties: { ...deviceIdParams.properties, cmdId: agentItemIdSchema },
        },
      },
      config: { successSchema: commandAnswer, errorResponses: AGENT_CALL_RESPONSES },
    },
    async (request) => {
      const command = await callDeviceAgent(deps, request.params.id, "getCommand", [request.params.cmdId]);
      if (command === null) {
        throw new ApiError(404, "BRIDGE_ERR_API_COMMAND_NOT_FOUND", "no such command", "params.cmdId");
      }
      return toJsonValue(command);
    },
  );
}
