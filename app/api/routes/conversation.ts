/**
 * The device agent's persisted reasoning conversation and its token usage.
 */
import type { FastifyInstance } from "fastify";
import { AGENT_CALL_RESPONSES, callDeviceAgent } from "../agent-call.ts";
import type { OperatorDeps } from "../deps.ts";
import { toJsonValue } from "../json-value.ts";
import { conversationAnswer } from "../response-schemas.ts";
import { deviceIdParams, integerField } from "../schemas.ts";

export const MAX_CONVERSATION_LIMIT = 500;

export function registerConversationRoutes(api: FastifyInstance, deps: OperatorDeps): void {
  api.get<{ Params: { id: string }; Querystring: { limit?: number } }>(
    "/devices/:id/conversation",
    {
      schema: {
        summary: "Recent conversation messages (oldest first) and token usage",
        tags: ["reasoning"],
        params: deviceIdParams,
        querystring: {
          type: "object",
          properties: {
            limit: { ...integerField(1), default: 50, description: `Capped at ${MAX_CONVERSATION_LIMIT}` },
          },
        },
      },
      config: { successSchema: conversationAnswer, errorResponses: AGENT_CALL_RESPONSES },
    },
    async (request) => {
      const limit = Math.min(request.query.limit ?? 50, MAX_CONVERSATION_LIMIT);
      // One agent call, so one event reads both: as two, a turn ending between them was counted in the usage and
      // missing from the messages.
      const read = await callDeviceAgent(deps, request.params.id, "getConversationWithUsage", [{ limit }]);
      return toJsonValue(read);
    },
  );
}
