/**
 * The `finish_reason` label of `bridge_engine_requests_total`. The value comes from the engine's answer as sent, and
 * every distinct label value is a series Prometheus keeps: a misbehaving engine (or a proxy in front of one) that
 * writes a fresh text each time would grow the scrape and the TSDB without bound. The reasons engines send are kept;
 * any other counts as `other`.
 */

/** OpenAI's finish reasons and those vLLM, SGLang (`abort`), TGI (`eos_token`, `stop_sequence`) and llama.cpp send. */
export const KNOWN_FINISH_REASONS: ReadonlySet<string> = new Set([
  "stop",
  "length",
  "tool_calls",
  "function_call",
  "content_filter",
  "abort",
  "eos_token",
  "stop_sequence",
]);

/** The label value for an engine's finish reason: itself when known, else `other`. */
export function finishReasonLabel(reason: string): string {
  return KNOWN_FINISH_REASONS.has(reason) ? reason : "other";
}
