/**
 * TGI before 3.2 (2.x, 3.0, 3.1) streamed a tool call without its name: every fragment has `function.name: null`,
 * and `arguments` carries the whole grammar-constrained output, `{"function": {"_name": "set_led", "on": true}}`.
 * Its non-streamed answers already name the call and strip `_name`; this does the same for a streamed one.
 */
import type { ChatToolCall } from "../agents/engine.ts";
import { asObject } from "./wire.ts";

/**
 * The call named and with its own arguments when it is such an envelope; otherwise the call unchanged. Only a call the
 * stream never named is looked at, so a named call's arguments are never rewritten.
 */
export function unwrapTgiToolEnvelope(call: ChatToolCall): ChatToolCall {
  if (call.name !== "" || !call.arguments.startsWith("{")) return call;
  let parsed: unknown;
  try {
    parsed = JSON.parse(call.arguments);
  } catch {
    return call;
  }
  const envelope = asObject(parsed);
  const fn = asObject(envelope?.function);
  if (envelope === undefined || fn === undefined || Object.keys(envelope).length !== 1) return call;
  const { _name: name, ...args } = fn;
  if (typeof name !== "string" || name.length === 0) return call;
  return { ...call, name, arguments: JSON.stringify(args) };
}
