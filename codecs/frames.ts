/**
 * Typed frames of the device wire protocol (DESIGN section 3, docs/protocol.md).
 *
 * A frame is a small map with short text keys. The channel is carried by the MQTT topic
 * (`devices/{id}/up/{channel}`), so a frame holds only its fields. The same map travels as CBOR
 * (plain RFC 8949 map), as protobuf (`codecs/bridge.proto`, one `Frame` with a oneof per channel) and as JSON text.
 */

/** Any JSON-like value a device or agent may carry: readings, rpc args and results, state. */
export type Value = null | boolean | number | bigint | string | Uint8Array | Value[] | { [key: string]: Value };
export type ValueMap = { [key: string]: Value };

/** True for a `{ key: Value }` map (not an array, not bytes, not null). */
export function isValueMap(value: unknown): value is ValueMap {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}

export const CODEC_NAMES = ["json", "cbor", "pb"] as const;
export type CodecName = (typeof CODEC_NAMES)[number];

/** Version of this wire protocol, sent in `identity.pv`. */
export const PROTOCOL_VERSION = 1;

// ---------- up: device -> agent ----------

/** `up/hello`: the device's birth message. */
export interface HelloFrame {
  /** Firmware version, free text. */
  fw: string;
  /** The codec the device wants for down frames. */
  codec?: CodecName;
  /** Wants the full desired state on every hello (state sync). Default true. */
  sync?: boolean;
  /** Can take streamed reasoning chunks; when false only one final `reason` frame is sent. Default true. */
  stream?: boolean;
  /** Largest frame in bytes the device can receive. */
  maxFrame?: number;
  /**
   * The metric alias table (as in a Sparkplug B birth certificate): metric names in alias order, so `metrics[i]` is
   * the metric of reading `i` in a later telemetry frame's `rv`. 1 to 256 distinct names of 1 to 128 characters. The
   * agent keeps the last table it was given across sessions and restarts; a hello without `metrics` leaves it as is.
   */
  metrics?: string[];
}

/** One SenML record (RFC 8428) with its text labels. */
export interface SenmlRecord {
  bn?: string;
  bt?: number;
  n?: string;
  u?: string;
  v?: number;
  vs?: string;
  vb?: boolean;
  vd?: Uint8Array;
  t?: number;
}

/**
 * `up/telemetry`: readings, with an optional device timestamp (ms since the Unix epoch): by name (`r`), by position
 * in the device's alias table (`rv`) or as a SenML pack; at least one of the three.
 */
export interface TelemetryFrame {
  ts?: number;
  /** Readings by metric name. */
  r?: ValueMap;
  /** A SenML pack, accepted instead of (or with) `r`. */
  senml?: SenmlRecord[];
  /**
   * Readings by position (1 to 256 of them): `rv[i]` is a reading of the metric `metrics[i]` of the device's last hello
   * that declared an alias table; `null` means no reading of that metric this time. Without a known table the frame
   * is refused with `BRIDGE_ERR_TELEMETRY_ALIASES_UNKNOWN`.
   */
  rv?: Value[];
}

/** `up/state`: a reported-state patch based on reported version `v`. */
export interface ReportedStateFrame {
  v: number;
  s: ValueMap;
}

/** `up/ack`: the result of command `id`. */
export interface AckFrame {
  id: string;
  ok: boolean;
  res?: Value;
  err?: string;
}

/** `up/rpc`: call method `m` of the agent with arguments `a`. */
export interface RpcCallFrame {
  id: string;
  m: string;
  a?: Value[];
}

/** `up/reason`: a reasoning request. */
export interface ReasonRequestFrame {
  id: string;
  q: string;
  /** Upper bound on generated tokens. */
  max?: number;
  /** Overrides the hello's `stream` for this request. */
  stream?: boolean;
}

// ---------- down: agent -> device ----------

/** `down/identity`: who serves the device. A protocol frame: sent only when protocol messages are on. */
export interface IdentityFrame {
  /** Agent class name. */
  name: string;
  /** Agent (device) id. */
  id: string;
  /** Protocol version. */
  pv: number;
  /** Server time, ms since the Unix epoch. */
  t: number;
}

/** `down/state`: the desired-state delta (or the full desired state when `full`) at desired version `v`. */
export interface DesiredStateFrame {
  v: number;
  d: ValueMap;
  full?: boolean;
}

/** `down/cmd`: command `id` named `n` with arguments `a`, to be done before `exp` (ms since epoch). */
export interface CommandFrame {
  id: string;
  n: string;
  a?: Value;
  exp?: number;
}

/** `down/rpc`: the result of an rpc call. */
export interface RpcResultFrame {
  id: string;
  ok: boolean;
  res?: Value;
  err?: string;
}

/** Token usage of a finished reasoning request. */
export interface ReasonUsage {
  /** Prompt tokens. */
  p: number;
  /** Completion tokens. */
  c: number;
  /** Prompt tokens served from the engine's prefix cache. */
  k?: number;
}

/** `down/reason`: a streamed chunk (`text`), or the final frame (`fin: true`, with usage and finish reason). */
export interface ReasonStreamFrame {
  id: string;
  seq: number;
  text?: string;
  fin?: boolean;
  /** Finish reason: stop, length, tool_calls, error, cancelled. */
  fr?: string;
  u?: ReasonUsage;
}

/** `down/error`: something the device sent was refused. */
export interface ErrorFrame {
  /** Stable error code, e.g. BRIDGE_ERR_FRAME_DECODE (docs/errors.md). */
  code: string;
  msg: string;
  /** Id of the request it answers, when there is one. */
  id?: string;
  /** Current version, for stale state patches. */
  v?: number;
}

export interface UpFrames {
  hello: HelloFrame;
  telemetry: TelemetryFrame;
  state: ReportedStateFrame;
  ack: AckFrame;
  rpc: RpcCallFrame;
  reason: ReasonRequestFrame;
}

export interface DownFrames {
  identity: IdentityFrame;
  state: DesiredStateFrame;
  cmd: CommandFrame;
  rpc: RpcResultFrame;
  reason: ReasonStreamFrame;
  error: ErrorFrame;
}

export type UpChannel = keyof UpFrames;
export type DownChannel = keyof DownFrames;
export type Direction = "up" | "down";

export const UP_CHANNELS: readonly UpChannel[] = ["hello", "telemetry", "state", "ack", "rpc", "reason"];
export const DOWN_CHANNELS: readonly DownChannel[] = ["identity", "state", "cmd", "rpc", "reason", "error"];

/** Down channels that are the runtime's own protocol frames, suppressed where protocol messages are off. */
export const PROTOCOL_CHANNELS: readonly DownChannel[] = ["identity", "state"];

/** A decoded up frame together with its channel, as a discriminated union. */
export type UpMessage = { [C in UpChannel]: { channel: C; frame: UpFrames[C] } }[UpChannel];
/** A down frame together with its channel, as a discriminated union. */
export type DownMessage = { [C in DownChannel]: { channel: C; frame: DownFrames[C] } }[DownChannel];
