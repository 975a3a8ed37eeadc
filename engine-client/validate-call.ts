/** Validation of one call's arguments, done when the call starts. */
import type { ChatOptions, ChatRequest } from "../agents/engine.ts";

const ROLES = new Set(["system", "user", "assistant", "tool"]);
const TOOL_CHOICES: ReadonlySet<string> = new Set(["auto", "none", "required"]);

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

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
  return validateRequest(request);
}

/**
 * The shape the request body is built from. A malformed one must be BAD_REQUEST here: found while building the
 * body, it surfaced as a retryable UNAVAILABLE ("engine request failed").
 */
function validateRequest(request: ChatRequest): string | undefined {
  if (!Array.isArray(request?.messages) || request.messages.length === 0) return "request.messages must not be empty";
  const badMessage = request.messages.findIndex((m) => !isObject(m) || !ROLES.has(m.role as string));
  if (badMessage !== -1) {
    return `request.messages[${badMessage}] must be an object with role system, user, assistant or tool`;
  }
  if (request.maxTokens !== undefined && (!Number.isInteger(request.maxTokens) || request.maxTokens < 1)) {
    return "request.maxTokens must be a positive integer";
  }
  // JSON writes NaN and Infinity as null, which an engine takes as "use the default": the caller's value lost silently.
  if (request.temperature !== undefined && !Number.isFinite(request.temperature)) {
    return "request.temperature must be a finite number";
  }
  if (request.tools !== undefined && (!Array.isArray(request.tools) || !request.tools.every(isNamedObject))) {
    return "request.tools must be an array of objects with a name";
  }
  if (request.toolChoice !== undefined) {
    if (!TOOL_CHOICES.has(request.toolChoice)) return 'request.toolChoice must be "auto", "none" or "required"';
    // vLLM refuses the request with a 400 otherwise; said here, before a round trip.
    if (request.toolChoice !== "none" && !(request.tools !== undefined && request.tools.length > 0)) {
      return `request.toolChoice "${request.toolChoice}" needs request.tools`;
    }
  }
  if (request.jsonSchema !== undefined && !(isNamedObject(request.jsonSchema) && isObject(request.jsonSchema.schema))) {
    return "request.jsonSchema must be an object with a name and a schema object";
  }
  return undefined;
}

function isNamedObject(value: unknown): value is { name: string } {
  return isObject(value) && typeof value.name === "string";
}
