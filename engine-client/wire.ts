/**
 * The OpenAI `/v1/chat/completions` wire format: building request bodies from the agents' `ChatRequest`, and
 * reading response objects defensively (an engine is an external system; nothing it sends is trusted to be
 * well-formed).
 */
import type { ChatMessage, ChatRequest, ChatTool, ChatToolCall, ChatUsage } from "../agents/engine.ts";

/** Builds the JSON body of one chat completion request. */
export function buildChatBody(
  request: ChatRequest,
  model: string | undefined,
  stream: boolean,
): Record<string, unknown> {
  const body: Record<string, unknown> = { messages: request.messages.map(toWireMessage) };
  if (model !== undefined) body.model = model;
  if (request.tools !== undefined && request.tools.length > 0) body.tools = wireTools(request.tools);
  if (request.toolChoice !== undefined) body.tool_choice = request.toolChoice;
  // `max_tokens` rather than `max_completion_tokens`: llama.cpp server and TGI know only the older name.
  if (request.maxTokens !== undefined) body.max_tokens = request.maxTokens;
  if (request.temperature !== undefined) body.temperature = request.temperature;
  if (request.jsonSchema !== undefined) {
    body.response_format = {
      type: "json_schema",
      json_schema: { name: request.jsonSchema.name, schema: request.jsonSchema.schema, strict: true },
    };
  }
  body.stream = stream;
  if (stream) body.stream_options = { include_usage: true };
  return body;
}

/** The tools as the wire names them. */
export function wireTools(tools: readonly ChatTool[]): Record<string, unknown>[] {
  return tools.map((tool) => ({
    type: "function",
    function: { name: tool.name, description: tool.description, parameters: tool.parameters },
  }));
}

function toWireMessage(message: ChatMessage): Record<string, unknown> {
  switch (message.role) {
    case "system":
    case "user":
      return { role: message.role, content: message.content };
    case "assistant": {
      const wire: Record<string, unknown> = { role: "assistant", content: message.content };
      if (message.toolCalls !== undefined && message.toolCalls.length > 0) {
        wire.tool_calls = message.toolCalls.map((call) => ({
          id: call.id,
          type: "function",
          function: { name: call.name, arguments: call.arguments },
        }));
      }
      return wire;
    }
    case "tool":
      return { role: "tool", tool_call_id: message.toolCallId, content: message.content };
  }
}

/** A plain JSON object, or undefined. */
export function asObject(value: unknown): Record<string, unknown> | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

/**
 * A token count as the engine sent it, or 0 when it is not one. A negative count (some servers and proxies write -1
 * for "unknown") counts as 0 too: it would take the client's token totals down, and the bridge's token counters
 * refuse to go down by throwing, which lost the rest of that request's metrics.
 */
function asCount(value: unknown): number {
  return typeof value === "number" && Number.isFinite(value) && value >= 0 ? value : 0;
}

/** Reads `usage`, including vLLM's `prompt_tokens_details.cached_tokens` when the engine reports it. */
export function parseUsage(value: unknown): ChatUsage | undefined {
  const usage = asObject(value);
  if (usage === undefined) return undefined;
  const details = asObject(usage.prompt_tokens_details);
  return {
    promptTokens: asCount(usage.prompt_tokens),
    completionTokens: asCount(usage.completion_tokens),
    cachedTokens: details === undefined ? 0 : asCount(details.cached_tokens),
  };
}

/**
 * The error an engine put in a body: vLLM sends `{"object":"error","message":...}` (older) or
 * `{"error":{"message":...}}` (newer, and OpenAI). Returns undefined when the object is not an error.
 */
export function parseEngineErrorObject(value: unknown): { message: string; type?: string; code?: unknown } | undefined {
  const object = asObject(value);
  if (object === undefined) return undefined;
  const inner = asObject(object.error);
  const source = inner ?? (object.object === "error" ? object : undefined);
  if (source === undefined) {
    if (typeof object.error === "string") return { message: object.error };
    return undefined;
  }
  const message = typeof source.message === "string" ? source.message : "engine error";
  const type = typeof source.type === "string" ? source.type : undefined;
  return { message, type, code: source.code };
}

/**
 * The error an SSE event named "error" carries (llama.cpp server's `error:` line, or `event: error`): an error object
 * as `parseEngineErrorObject` reads it, else the flat `{"code":400,"message":...,"type":...}` llama.cpp sends, else
 * the data's own text.
 */
export function parseErrorEvent(data: string): { message: string; type?: string; code?: unknown } {
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    return { message: data };
  }
  const nested = parseEngineErrorObject(value);
  if (nested !== undefined) return nested;
  const object = asObject(value);
  if (object === undefined || typeof object.message !== "string") return { message: data };
  return {
    message: object.message,
    type: typeof object.type === "string" ? object.type : undefined,
    code: object.code,
  };
}

/**
 * A non-streamed tool call's arguments as the JSON text OpenAI specifies. TGI 2.x and 3.0 send them as the JSON object
 * itself; read as "no arguments", such a call lost them all, so the object is turned back into its text.
 */
function argumentsText(value: unknown): string {
  if (typeof value === "string") return value;
  return typeof value === "object" && value !== null ? JSON.stringify(value) : "";
}

/** A complete (non-streamed) chat answer. */
export interface ChatCompletion {
  text: string;
  toolCalls: ChatToolCall[];
  finishReason: string;
  usage: ChatUsage;
  model: string;
}

/** Reads a non-streamed `chat.completion` object; returns undefined when it has no first choice. */
export function parseCompletion(value: unknown): ChatCompletion | undefined {
  const object = asObject(value);
  const choices = object?.choices;
  if (object === undefined || !Array.isArray(choices)) return undefined;
  const choice = asObject(choices[0]);
  const message = asObject(choice?.message);
  if (choice === undefined || message === undefined) return undefined;
  const toolCalls: ChatToolCall[] = [];
  if (Array.isArray(message.tool_calls)) {
    for (const raw of message.tool_calls) {
      const call = asObject(raw);
      const fn = asObject(call?.function);
      if (call === undefined || fn === undefined || typeof fn.name !== "string") continue;
      toolCalls.push({
        id: typeof call.id === "string" ? call.id : "",
        name: fn.name,
        arguments: argumentsText(fn.arguments),
      });
    }
  }
  return {
    text: typeof message.content === "string" ? message.content : "",
    toolCalls,
    finishReason: typeof choice.finish_reason === "string" ? choice.finish_reason : "stop",
    usage: parseUsage(object.usage) ?? { promptTokens: 0, completionTokens: 0, cachedTokens: 0 },
    model: typeof object.model === "string" ? object.model : "",
  };
}
