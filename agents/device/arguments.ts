/**
 * Validation of public-method arguments. Operators call these methods through `runtime.call` with untrusted values,
 * so every argument is checked and a bad one is a BridgeError naming the field (the call returns it as a value).
 */
import type { Value } from "../../codecs/frames.ts";
import { BridgeError } from "../../errors/bridge-error.ts";
import type { DeviceAgentOptions } from "./options.ts";
import { COMMAND_TTL_MAX_SECONDS } from "./options.ts";
import type { TelemetryQuery } from "./telemetry-store.ts";
import { isValueMap } from "./values.ts";

const COMMAND_NAME = /^[A-Za-z0-9_.:-]{1,64}$/;

export function invalidArgument(field: string, message: string): BridgeError {
  return new BridgeError("BRIDGE_ERR_INVALID_ARGUMENT", `${field} ${message}`, { field });
}

/** An optional integer argument (null/undefined means absent). */
export function optionalInteger(value: Value | undefined, field: string): number | undefined {
  if (value === undefined || value === null) return undefined;
  const n = typeof value === "bigint" ? Number(value) : value;
  if (typeof n !== "number" || !Number.isSafeInteger(n)) throw invalidArgument(field, "must be an integer");
  return n;
}

function optionalNumber(value: Value | undefined, field: string): number | undefined {
  if (value === undefined || value === null) return undefined;
  const n = typeof value === "bigint" ? Number(value) : value;
  if (typeof n !== "number" || !Number.isFinite(n)) throw invalidArgument(field, "must be a number");
  return n;
}

export function readTelemetryQuery(query: Value): TelemetryQuery {
  if (!isValueMap(query)) throw invalidArgument("query", "must be a map");
  const out: TelemetryQuery = {};
  const from = optionalNumber(query.from, "from");
  const to = optionalNumber(query.to, "to");
  const limit = optionalInteger(query.limit, "limit");
  if (from !== undefined) out.from = from;
  if (to !== undefined) out.to = to;
  if (limit !== undefined) {
    if (limit < 0) throw invalidArgument("limit", "must be >= 0");
    out.limit = limit;
  }
  if (query.metric !== undefined && query.metric !== null) {
    if (typeof query.metric !== "string") throw invalidArgument("metric", "must be text");
    out.metric = query.metric;
  }
  if (query.order !== undefined && query.order !== null) {
    if (query.order !== "asc" && query.order !== "desc") throw invalidArgument("order", 'must be "asc" or "desc"');
    out.order = query.order;
  }
  if (query.after !== undefined && query.after !== null) {
    if (!isValueMap(query.after)) throw invalidArgument("after", "must be a map {ts, id} (a page's next)");
    const ts = optionalInteger(query.after.ts, "after.ts");
    const id = optionalInteger(query.after.id, "after.id");
    if (ts === undefined || id === undefined) throw invalidArgument("after", "needs ts and id (a page's next)");
    out.after = { ts, id };
  }
  return out;
}

/** A command as `sendCommand` takes it, checked, with the class's defaults for what it leaves out. */
export interface CommandInput {
  name: string;
  args: Value;
  ttlSeconds: number;
  maxAttempts: number;
  /** 0: no ack timeout (only a reconnect redelivers). */
  ackTimeoutMs: number;
}

export function readCommandInput(input: Value, options: DeviceAgentOptions): CommandInput {
  if (!isValueMap(input)) {
    throw invalidArgument("command", "must be a map {name, args?, ttlSeconds?, maxAttempts?, ackTimeoutSeconds?}");
  }
  if (typeof input.name !== "string" || !COMMAND_NAME.test(input.name)) {
    throw invalidArgument("name", "must be 1-64 characters of A-Z a-z 0-9 _ . : -");
  }
  const ttlSeconds = optionalInteger(input.ttlSeconds, "ttlSeconds") ?? options.commandTtlSeconds;
  const maxAttempts = optionalInteger(input.maxAttempts, "maxAttempts") ?? options.commandMaxAttempts;
  const ackTimeoutSeconds = optionalInteger(input.ackTimeoutSeconds, "ackTimeoutSeconds");
  if (ttlSeconds < 1 || ttlSeconds > COMMAND_TTL_MAX_SECONDS) {
    throw invalidArgument("ttlSeconds", `must be from 1 to ${COMMAND_TTL_MAX_SECONDS}`);
  }
  if (maxAttempts < 1) throw invalidArgument("maxAttempts", "must be >= 1");
  // 0 turns the timeout off for this command, as commandAckTimeoutMs 0 does for the class.
  if (ackTimeoutSeconds !== undefined && (ackTimeoutSeconds < 0 || ackTimeoutSeconds > COMMAND_TTL_MAX_SECONDS)) {
    throw invalidArgument("ackTimeoutSeconds", `must be from 0 to ${COMMAND_TTL_MAX_SECONDS}`);
  }
  const ackTimeoutMs = ackTimeoutSeconds === undefined ? options.commandAckTimeoutMs : ackTimeoutSeconds * 1000;
  return { name: input.name, args: input.args ?? null, ttlSeconds, maxAttempts, ackTimeoutMs };
}
