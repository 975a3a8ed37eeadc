/**
 * Recognises an engine's "the prompt does not fit the context window" refusal. The engines answer it with a plain
 * 400 (422 for TGI) whose only distinguishing mark is the text, so the text is read here, once, where the response
 * is classified; the error then says so in `details.reason` (CONTEXT_LENGTH_REASON) and callers branch on that.
 */
import { CONTEXT_LENGTH_REASON } from "../agents/engine.ts";

export { CONTEXT_LENGTH_REASON };

/** Machine-readable marks some servers put in the error object (`type` or `code`). */
const CONTEXT_LENGTH_MARKS = new Set([
  // OpenAI (and servers copying its error codes).
  "context_length_exceeded",
  // llama.cpp server.
  "exceed_context_size_error",
]);

/** The wordings of the refusal, as the engines send them. */
const CONTEXT_LENGTH_TEXTS: readonly RegExp[] = [
  // vLLM (every version, with "However, you requested N tokens" or "your request has N input tokens"), SGLang
  // ("exceeds the model's maximum context length"), OpenAI, and this project's engine simulator.
  /maximum context length/i,
  // vLLM V1 engine: "The decoder prompt (length N) is longer than the maximum model length of M."
  /longer than the maximum model length/i,
  // SGLang: "The input (N tokens) is longer than the model's context length (M tokens)."
  /longer than the model's context length/i,
  // llama.cpp server: "the request exceeds the available context size, try increasing it".
  /exceeds the available context size/i,
  // TGI: "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096. Given: ...".
  /`inputs` tokens \+ `max_new_tokens` must be <=/i,
];

/**
 * True when an engine's refusal (its error message, and the `type` / `code` of its error object when it had one)
 * says the prompt plus the completion budget exceed the model's context window.
 */
export function isContextLengthRefusalText(message: string, marks: readonly unknown[] = []): boolean {
  if (marks.some((mark) => typeof mark === "string" && CONTEXT_LENGTH_MARKS.has(mark))) return true;
  return CONTEXT_LENGTH_TEXTS.some((pattern) => pattern.test(message));
}
