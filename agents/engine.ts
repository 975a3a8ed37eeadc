/**
 * What an agent needs from an inference engine. `engine-client/` implements it for OpenAI-compatible servers
 * (vLLM, SGLang, llama.cpp server, TGI); agents depend only on this interface, never on the client itself.
 */
import { BridgeError } from "../errors/bridge-error.ts";

export interface ChatToolCall {
  id: string;
  name: string;
  /** The raw JSON text of the arguments, as the model produced it. */
  arguments: string;
}

export type ChatMessage =
  | { role: "system"; content: string }
  | { role: "user"; content: string }
  | { role: "assistant"; content: string | null; toolCalls?: ChatToolCall[] }
  | { role: "tool"; toolCallId: string; content: string };

export interface ChatTool {
  name: string;
  description: string;
  /** JSON Schema of the arguments. */
  parameters: Record<string, unknown>;
}

export interface ChatRequest {
  messages: ChatMessage[];
  tools?: readonly ChatTool[];
  /**
   * Whether the model may call `tools` (OpenAI's `tool_choice`): "auto" (the engines' default when tools are offered),
   * "none" (answer in text: the tools stay in the prompt, so its cached prefix still matches the rounds that offered
   * them, where dropping the tools would change the prompt's first tokens), or "required". "auto" and "required"
   * need `tools`.
   */
  toolChoice?: "auto" | "none" | "required";
  /** Upper bound on completion tokens. */
  maxTokens?: number;
  temperature?: number;
  /** Ask for JSON output that matches a schema (`response_format: {type: "json_schema"}`). */
  jsonSchema?: { name: string; schema: Record<string, unknown> };
  /** Model name; the engine's default (first of /v1/models) when absent. */
  model?: string;
}

export interface ChatUsage {
  promptTokens: number;
  completionTokens: number;
  /** Prompt tokens served from the engine's prefix cache (`usage.prompt_tokens_details.cached_tokens`). */
  cachedTokens: number;
}

/** What a streamed chat yields, in order: text deltas and tool calls, then exactly one `done`. */
export type ChatStreamEvent =
  | { type: "text"; text: string }
  | { type: "tool-call"; call: ChatToolCall }
  | { type: "done"; finishReason: string; usage: ChatUsage };

export interface ChatOptions {
  /** Who asks: the fairness and affinity key (the agent id). */
  agentId: string;
  /** Aborts the request; the HTTP stream is closed so the engine frees the slot. */
  signal?: AbortSignal;
  /**
   * Higher runs first among waiting requests. Default 0. An engine may age it so lower priorities never starve: the
   * engine client raises a waiting request one level per its `priorityAgingMs`.
   */
  priority?: number;
  /** Absolute deadline, ms since the Unix epoch. */
  deadline?: number;
  /**
   * Time budget in ms, counted by the engine's own clock from the moment it accepts the call (the earlier of this
   * and `deadline` wins). Callers whose clock may differ from the engine's (an injected agent clock) use this.
   */
  timeoutMs?: number;
}

/**
 * `details.reason` of a BRIDGE_ERR_ENGINE_BAD_REQUEST the engine answered because the prompt (with the completion's
 * `maxTokens`) does not fit the model's context window: the one refusal a shorter prompt can cure.
 */
export const CONTEXT_LENGTH_REASON = "context-length";

/**
 * True when `err`, or anything in its `cause` chain, is the engine's refusal of a prompt too long for its context
 * window (BRIDGE_ERR_ENGINE_BAD_REQUEST with `details.reason` CONTEXT_LENGTH_REASON).
 *
 * @example
 * if (isContextLengthRefusal(err)) retryWithShorterPrompt();
 */
export function isContextLengthRefusal(err: unknown): boolean {
  const seen = new Set<unknown>();
  let current: unknown = err;
  while (current !== undefined && current !== null && !seen.has(current)) {
    seen.add(current);
    if (
      current instanceof BridgeError &&
      current.code === "BRIDGE_ERR_ENGINE_BAD_REQUEST" &&
      current.details.reason === CONTEXT_LENGTH_REASON
    )
      return true;
    current = current instanceof Error ? current.cause : undefined;
  }
  return false;
}

/**
 * An inference engine as agents see it. Faults are thrown as BridgeError with BRIDGE_ERR_ENGINE_* codes; a prompt
 * too long for the engine's context window is BRIDGE_ERR_ENGINE_BAD_REQUEST with `details.reason`
 * CONTEXT_LENGTH_REASON (see isContextLengthRefusal).
 */
export interface ReasoningEngine {
  /** Streams one chat completion. The iterator ends after the `done` event. */
  stream(request: ChatRequest, options: ChatOptions): AsyncIterable<ChatStreamEvent>;
  /**
   * Optional: the same stream handed over a batch at a time (what one read of the connection held). `onEvents` is
   * called synchronously with each batch, in order, `done` last; the promise resolves after the last batch and
   * rejects with what `stream` would throw. A throw from `onEvents` ends the stream and rejects with that error.
   * Callers that take events as they come use it to skip an async-iterator step per event.
   */
  streamBatches?(
    request: ChatRequest,
    options: ChatOptions,
    onEvents: (events: readonly ChatStreamEvent[]) => void,
  ): Promise<void>;
}
