/**
 * Tools the model may call, executed by the agent itself: read recent telemetry, read the shadow, set desired state,
 * send a command. Arguments arrive as the model's raw JSON text and are validated here; a bad call becomes an error
 * text the model can read and correct, never an exception.
 */
import type { Value, ValueMap } from "../../../codecs/frames.ts";
import type { ChatTool } from "../../engine.ts";
import { isValueMap, jsonToValue, valueToJson } from "../values.ts";

/** What the tools act on: the agent's own public methods. */
export interface ToolHost {
  queryTelemetry(query: Value): Value;
  getShadow(): Value;
  setDesired(patch: Value, expectedVersion?: Value): Value;
  sendCommand(input: Value): Value;
}

export const TOOL_NAMES = ["read_telemetry", "read_shadow", "set_desired", "send_command"] as const;
export type ToolName = (typeof TOOL_NAMES)[number];

/**
 * JSON Schemas of the built-in tools, in a fixed order so the prompt prefix stays stable. Frozen all the way down:
 * the engine client then makes their JSON once, not once per request (engine-client/chat-body.ts).
 */
export const DEVICE_TOOLS: readonly ChatTool[] = deepFreeze([
  {
    name: "read_telemetry",
    description: "Read the device's recent telemetry readings, newest first.",
    parameters: {
      type: "object",
      properties: {
        metric: { type: "string", description: "Only this metric." },
        sinceSeconds: { type: "integer", minimum: 1, description: "Only readings from the last N seconds." },
        limit: { type: "integer", minimum: 1, maximum: 200, description: "Most rows, default 50." },
      },
      additionalProperties: false,
    },
  },
  {
    name: "read_shadow",
    description: "Read the device shadow: reported state, desired state, their versions and the delta.",
    parameters: { type: "object", properties: {}, additionalProperties: false },
  },
  {
    name: "set_desired",
    description: "Change the device's desired state with a merge patch (null deletes a key).",
    parameters: {
      type: "object",
      properties: { patch: { type: "object", description: "Merge patch of the desired state." } },
      required: ["patch"],
      additionalProperties: false,
    },
  },
  {
    name: "send_command",
    description: "Send a command to the device; it is queued until the device acknowledges it.",
    parameters: {
      type: "object",
      properties: {
        name: { type: "string", description: "Command name the firmware knows." },
        args: { description: "Command arguments." },
        ttlSeconds: { type: "integer", minimum: 1, description: "Give up after this many seconds." },
      },
      required: ["name"],
      additionalProperties: false,
    },
  },
]);

export function isToolName(name: string): name is ToolName {
  return (TOOL_NAMES as readonly string[]).includes(name);
}

/** Parses the model's argument text into a map; `null` when it is not a JSON object. */
export function parseToolArgs(text: string): ValueMap | null {
  try {
    const value = jsonToValue(JSON.parse(text === "" ? "{}" : text));
    return isValueMap(value) ? value : null;
  } catch {
    return null;
  }
}

/** Runs one tool and returns the text the model sees (JSON). Faults become `{ "error": ... }`. */
export function executeTool(host: ToolHost, name: string, argsText: string, now: number): string {
  const args = parseToolArgs(argsText);
  if (args === null) return valueToJson({ error: "arguments must be a JSON object" });
  try {
    switch (name) {
      case "read_telemetry": {
        const query: ValueMap = { limit: typeof args.limit === "number" ? Math.min(Math.max(1, args.limit), 200) : 50 };
        if (typeof args.metric === "string") query.metric = args.metric;
        if (typeof args.sinceSeconds === "number") query.from = now - args.sinceSeconds * 1000;
        return valueToJson(host.queryTelemetry(query));
      }
      case "read_shadow":
        return valueToJson(host.getShadow());
      case "set_desired":
        if (!isValueMap(args.patch)) return valueToJson({ error: "patch must be an object" });
        return valueToJson(host.setDesired(args.patch));
      case "send_command":
        return valueToJson(host.sendCommand(args));
      default:
        return valueToJson({ error: `unknown tool ${name}` });
    }
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    return valueToJson({
      error: err instanceof Error ? err.message : String(err),
      code: typeof code === "string" ? code : null,
    });
  }
}

/** Freezes `value` and everything it holds. */
function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
