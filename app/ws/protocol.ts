/**
 * The WebSocket agent protocol's JSON messages (docs/protocol.md, "WebSocket agent protocol"). Message types
 * follow the Cloudflare Agents SDK client (`cf_agent_identity`, `cf_agent_state`, `cf_agent_state_error`, `rpc`)
 * so its client code and habits carry over; bridge additions are `down` and `error`.
 */
import type { DownMessage, Value } from "../../codecs/frames.ts";
import type { ProtocolMessage } from "../../agents/host.ts";
import { DEFAULT_DECODE_LIMITS } from "../../codecs/codec.ts";
import { depthExceeds, type JsonValue, toJsonValue } from "../api/json-value.ts";

/** Stable codes of protocol errors sent to a client (docs/errors.md). */
export const WS_ERROR_CODES = {
  badJson: "BRIDGE_ERR_WS_BAD_JSON",
  badMessage: "BRIDGE_ERR_WS_BAD_MESSAGE",
  readonly: "BRIDGE_ERR_WS_READONLY",
  eventFailed: "BRIDGE_ERR_WS_EVENT_FAILED",
  openFailed: "BRIDGE_ERR_WS_OPEN_FAILED",
  /** Not sent as a message: the close reason (1013) of a client that stopped reading, and its counter's code. */
  slowConsumer: "BRIDGE_ERR_WS_SLOW_CONSUMER",
} as const;

/** What a client may send. */
export type ClientMessage =
  | { type: "rpc"; id: string; method: string; args: Value[] }
  | { type: "cf_agent_state"; state: Value };

/** What the server sends. */
export type ServerMessage =
  | { type: "cf_agent_identity"; name: string; agent: string; protocolVersion: number; serverTime: number }
  | { type: "cf_agent_state"; state: JsonValue }
  | { type: "cf_agent_state_error"; error: string; code: string }
  | { type: "rpc"; id: string; success: true; result: JsonValue; done: true }
  | { type: "rpc"; id: string; success: false; error: string; code?: string; done: true }
  | { type: "down"; channel: string; frame: JsonValue }
  | { type: "error"; code: string; message: string; id?: string };

export type ParseOutcome =
  | { ok: true; message: ClientMessage }
  | { ok: false; code: string; message: string; id?: string };

/** Longest rpc id and method name accepted. */
export const MAX_RPC_ID_LENGTH = 128;
export const MAX_METHOD_LENGTH = 128;

/** Parses and validates one text message from a client. Bad input is a value, never a throw. */
export function parseClientMessage(text: string): ParseOutcome {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { ok: false, code: WS_ERROR_CODES.badJson, message: "message is not valid JSON" };
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    return { ok: false, code: WS_ERROR_CODES.badMessage, message: "message must be a JSON object with a type" };
  }
  // Same nesting bound as device frames: deep values would cost every later encoder a deep recursion.
  if (depthExceeds(raw, DEFAULT_DECODE_LIMITS.maxDepth + 2)) {
    return {
      ok: false,
      code: WS_ERROR_CODES.badMessage,
      message: `values nest deeper than ${DEFAULT_DECODE_LIMITS.maxDepth}`,
    };
  }
  const m = raw as Record<string, unknown>;
  switch (m.type) {
    case "rpc": {
      const id = m.id;
      if (typeof id !== "string" || id === "" || id.length > MAX_RPC_ID_LENGTH) {
        return {
          ok: false,
          code: WS_ERROR_CODES.badMessage,
          message: `rpc.id must be a string of 1-${MAX_RPC_ID_LENGTH} characters`,
        };
      }
      if (typeof m.method !== "string" || m.method === "" || m.method.length > MAX_METHOD_LENGTH) {
        return { ok: false, code: WS_ERROR_CODES.badMessage, message: "rpc.method must be a non-empty string", id };
      }
      const args = m.args ?? [];
      if (!Array.isArray(args))
        return { ok: false, code: WS_ERROR_CODES.badMessage, message: "rpc.args must be an array", id };
      return { ok: true, message: { type: "rpc", id, method: m.method, args: args as Value[] } };
    }
    case "cf_agent_state":
      if (!("state" in m)) return { ok: false, code: WS_ERROR_CODES.badMessage, message: "cf_agent_state needs state" };
      return { ok: true, message: { type: "cf_agent_state", state: (m.state ?? null) as Value } };
    default:
      return {
        ok: false,
        code: WS_ERROR_CODES.badMessage,
        message: `unknown message type ${JSON.stringify(m.type)}; expected rpc or cf_agent_state`,
      };
  }
}

/** Maps a runtime protocol message to the wire. */
export function fromProtocol(message: ProtocolMessage): ServerMessage {
  if (message.type === "identity") {
    return {
      type: "cf_agent_identity",
      name: message.name,
      agent: message.agent,
      protocolVersion: message.protocolVersion,
      serverTime: message.serverTime,
    };
  }
  return { type: "cf_agent_state", state: toJsonValue(message.state) };
}

/** Maps an application down frame to the wire: rpc results and errors get their own shapes, the rest is `down`. */
export function fromDown(message: DownMessage): ServerMessage {
  switch (message.channel) {
    case "rpc": {
      const f = message.frame;
      if (f.ok) return { type: "rpc", id: f.id, success: true, result: toJsonValue(f.res ?? null), done: true };
      const error = f.err ?? "rpc failed";
      // The runtime puts a stable code in `err`; expose it as `code` too so clients branch on codes.
      if (/^BRIDGE_ERR_[A-Z0-9_]+$/.test(error))
        return { type: "rpc", id: f.id, success: false, error, code: error, done: true };
      return { type: "rpc", id: f.id, success: false, error, done: true };
    }
    case "error": {
      const f = message.frame;
      const out: ServerMessage = { type: "error", code: f.code, message: f.msg };
      if (f.id !== undefined) out.id = f.id;
      return out;
    }
    default:
      return { type: "down", channel: message.channel, frame: toJsonValue(message.frame as unknown as Value) };
  }
}
