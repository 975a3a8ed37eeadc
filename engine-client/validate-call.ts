/** Validation of one call's arguments, done when the call starts. */
import type { ChatOptions, ChatRequest } from "../agents/engine.ts";

/** Checks what the types cannot: callers may be plain JavaScript or pass values from a device. */
export function validateCall(request: ChatRequest, options: ChatOptions): string | undefined {
  if (typeof options?.agentId !== "string" || options.agentId.length === 0)
    return "options.agentId must be a non-empty string";
  if (options.priority !== undefined && !Number.isFinite(options.priority))
    return "options.priority must be a finite number";
  if (options.deadline !== undefined && !Number.isFinite(options.deadline))
    return "options.deadline must be ms since the epoch";
  if (options.timeoutMs !== undefined && !(Number.isFinite(options.timeoutMs) && options.timeoutMs >= 0))
    return "options.timeoutMs must be a finite number of ms >= 0";
  if (!Array.isArray(request?.messages) || request.messages.length === 0) return "request.messages must not be empty";
  if (request.maxTokens !== undefined && (!Number.isInteger(request.maxTokens) || request.maxTokens < 1)) {
    return "request.maxTokens must be a positive integer";
  }
  return undefined;
}
