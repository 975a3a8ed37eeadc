/**
 * Tool calls waiting for an operator. Listed from the runtime's fleet directory (kind "approval"), so listing
 * never wakes an agent; resolving one is an event on the owning agent.
 */
import type { FastifyInstance } from "fastify";
import type { Value } from "../../../codecs/frames.ts";
import { AGENT_CALL_RESPONSES, callDeviceAgent, RUNTIME_CLOSED_RESPONSES } from "../agent-call.ts";
import type { OperatorDeps } from "../deps.ts";
import { ApiError } from "../errors.ts";
import { asMap, type JsonValue, toJsonValue } from "../json-value.ts";
import { approvalListAnswer, approvalResolvedAnswer } from "../response-schemas.ts";
import { agentItemIdSchema, DEVICE_ID_PATTERN } from "../schemas.ts";

export const APPROVAL_ERROR_CODES = {
  notFound: "BRIDGE_ERR_API_APPROVAL_NOT_FOUND",
  resolved: "BRIDGE_ERR_API_APPROVAL_RESOLVED",
} as const;

/** Directory kind DeviceAgent writes pending approvals under. */
export const APPROVAL_KIND = "approval";

/** One pending approval across the fleet. */
export interface PendingApproval {
  deviceId: string;
  approvalId: string;
  [key: string]: JsonValue;
}

export function listApprovals(deps: OperatorDeps): PendingApproval[] {
  return deps.runtime.directory
    .list(APPROVAL_KIND)
    .map((entry) => {
      const fields = asMap(entry.value) ?? { value: entry.value };
      const json = toJsonValue(fields) as { [key: string]: JsonValue };
      const approval: PendingApproval = { ...json, deviceId: entry.agentId, approvalId: entry.key };
      return approval;
    })
    .sort((a, b) => Number(a.createdAt ?? 0) - Number(b.createdAt ?? 0));
}

export function registerApprovalRoutes(api: FastifyInstance, deps: OperatorDeps): void {
  api.get(
    "/approvals",
    {
      schema: { summary: "Pending tool-call approvals across the fleet, oldest first", tags: ["approvals"] },
      config: { successSchema: approvalListAnswer, errorResponses: RUNTIME_CLOSED_RESPONSES },
    },
    async () => {
      const approvals = listApprovals(deps);
      return { approvals, total: approvals.length };
    },
  );

  api.post<{ Params: { deviceId: string; approvalId: string }; Body: { approve: boolean; reason?: string } }>(
    "/approvals/:deviceId/:approvalId",
    {
      schema: {
        summary: "Approve or reject a pending tool call; the agent runs (or refuses) it and resumes the conversation",
        tags: ["approvals"],
        params: {
          type: "object",
          required: ["deviceId", "approvalId"],
          properties: {
            deviceId: { type: "string", pattern: DEVICE_ID_PATTERN },
            approvalId: agentItemIdSchema,
          },
        },
        body: {
          type: "object",
          required: ["approve"],
          additionalProperties: false,
          properties: { approve: { type: "boolean" }, reason: { type: "string", maxLength: 1000 } },
        },
      },
      config: {
        successSchema: approvalResolvedAnswer,
        errorResponses: {
          ...AGENT_CALL_RESPONSES,
          409: "The approval was already resolved (BRIDGE_ERR_API_APPROVAL_RESOLVED)",
        },
      },
    },
    async (request) => {
      const { deviceId, approvalId } = request.params;
      const { approve, reason } = request.body;
      const args: Value[] = reason === undefined ? [approvalId, approve] : [approvalId, approve, reason];
      const result = await callDeviceAgent(deps, deviceId, "resolveApproval", args, "params.deviceId");
      // DeviceAgent answers expected outcomes as values: ok, not_found, already_resolved.
      const status = asMap(result)?.status;
      if (status === "not_found") {
        throw new ApiError(
          404,
          APPROVAL_ERROR_CODES.notFound,
          `no approval ${approvalId} on ${deviceId}`,
          "params.approvalId",
        );
      }
      if (status === "already_resolved") {
        throw new ApiError(
          409,
          APPROVAL_ERROR_CODES.resolved,
          `approval ${approvalId} was already resolved`,
          "params.approvalId",
        );
      }
      return { deviceId, approvalId, approved: approve, result: toJsonValue(result) };
    },
  );
}
