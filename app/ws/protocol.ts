/**
 * The WebSocket agent protocol's JSON messages (docs/protocol.md, "WebSocket agent protocol"). Message types
 * follow the Cloudflare Agents SDK client (`cf_agent_identity`, `cf_agent_state`, `cf_agent_state_error`, `rpc`)
 * so its client code and habits carry over; bridge additions are `down` and `error`.
 */
import type { DownMessage, Value } from "../../codecs/frames.ts";
import type { ProtocolMessage } from "../../agents/host.ts";
import { DEFAULT_DECODE_LIMITS } from "../../codecs/codec.ts";
import { parseJson } from "../../codecs/json/json-parse.ts";
import { DecodeFault, describeJsonSyntax } from "../../codecs/schema/fault.ts";
import { type JsonValue, toJsonValue } from "../api/json-value.ts";

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

/**
 * Deepest nesting of a client message: the device frame limit (16) inside `args` or `state`, plus the message and the
 * `args` array around it.
 */
export const MAX_MESSAGE_NESTING = DEFAULT_DECODE_LIMITS.maxDepth + 2;

/** Longest rpc id and method name accepted. */
export const MAX_RPC_ID_LENGTH = 128;
export const MAX_METHOD_LENGTH = 128;

/**
 * Parses and validates one text message from a client. Bad input is a value, never a throw.
 *
 * The text is read by the bridge's strict JSON parser, as device JSON and API bodies are (codecs/json/json-parse.ts):
 * an integer beyond ±(2^53-1) reaches the agent exactly, as a bigint, where `JSON.parse` would round it to a double;
 * a key twice in one object, a `__proto__` key and an integer of more than 4001 digits are refused naming the key's
 * path, where `JSON.parse` would keep the last key silently; so is a lone surrogate in a string or a key (`"\ud800"`),
 * which no device frame can carry. The text itself is well-formed: the ws library closes a socket whose text frame is
 * not valid UTF-8 (1007) before it gets here.
 */
export function parseClientMessage(text: string): ParseOutcome {
  let raw: unknown;
  try {
    raw = parseJson(text, MAX_MESSAGE_NESTING);
  } catch (err) {
    return refusedJson(err, text);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    return { ok: false, code: WS_ERROR_CODES.badMessage, message: "message must be a JSON object with a type" };
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

/** The error for a text the strict parser refused (a DecodeFault; anything else is reported as not JSON). */
function refusedJson(err: unknown, text: string): ParseOutcome {
  if (!(err instanceof DecodeFault) || err.code === "BRIDGE_ERR_FRAME_DECODE") {
    const syntax = err instanceof DecodeFault ? err.syntax : undefined;
    const detail = syntax !== undefined ? describeJsonSyntax(syntax) : err instanceof Error ? err.message : "";
    return { ok: false, code: WS_ERROR_CODES.badJson, message: `message is not valid JSON: ${detail}` };
  }
  // Same nesting bound as device frames (deep values would cost every later encoder a deep recursion); otherwise a
  // fault at a key or a value (a duplicate, `__proto__`, an over-long integer, a lone surrogate), its message naming
  // its path (`args[0].a`), or `message` for a fault at the top (a string with a lone surrogate as the whole text).
  const message =
    err.code === "BRIDGE_ERR_FRAME_TOO_DEEP"
      ? `values nest deeper than ${DEFAULT_DECODE_LIMITS.maxDepth}`
      : `${err.field ?? "message"}: ${err.problem}`;
  const refused: ParseOutcome = { ok: false, code: WS_ERROR_CODES.badMessage, message };
  // An rpc's caller waits for its id (docs: `id` when it could be read), unless the id itself was what was refused.
  const id = err.field === "id" ? undefined : rpcIdOf(text);
  if (id !== undefined) refused.id = id;
  return refused;
}

/**
 * The rpc id of a message the strict parser refused at a key or for its depth, so the client's caller waiting for that
 * id gets the error. Read with `JSON.parse`, which takes what the strict parser refused (the text is valid JSON);
 * only a string id of the accepted length, and never when the id itself was the duplicate key.
 */
function rpcIdOf(text: string): string | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return undefined;
  const m = raw as Record<string, unknown>;
  if (m.type !== "rpc" || typeof m.id !== "string" || m.id === "" || m.id.length > MAX_RPC_ID_LENGTH) return undefined;
  return m.id;
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
