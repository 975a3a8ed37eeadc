/**
 * The MQTT topic scheme (DESIGN section 3): `devices/{id}/up/{channel}[/{codec}]` and `devices/{id}/down/{channel}`.
 * Parsing untrusted topics returns a value; formatting with bad arguments is a programming fault and throws.
 */
import { BridgeError } from "../errors/index.ts";
import { DEVICE_ID_RULE, isValidDeviceId } from "./device-id.ts";
import { CODEC_NAMES, type CodecName, DOWN_CHANNELS, type DownChannel, UP_CHANNELS, type UpChannel } from "./frames.ts";

/** Stable codes of topic failures (docs/errors.md). */
export type TopicErrorCode =
  | "BRIDGE_ERR_TOPIC_INVALID"
  | "BRIDGE_ERR_DEVICE_ID_INVALID"
  | "BRIDGE_ERR_UNKNOWN_CHANNEL"
  | "BRIDGE_ERR_UNKNOWN_CODEC";

export type DeviceTopic =
  | { direction: "up"; deviceId: string; channel: UpChannel; codec?: CodecName }
  | { direction: "down"; deviceId: string; channel: DownChannel };

export type TopicParseResult = { ok: true; topic: DeviceTopic } | { ok: false; code: TopicErrorCode; message: string };

export function isUpChannel(x: unknown): x is UpChannel {
  return typeof x === "string" && (UP_CHANNELS as readonly string[]).includes(x);
}

export function isDownChannel(x: unknown): x is DownChannel {
  return typeof x === "string" && (DOWN_CHANNELS as readonly string[]).includes(x);
}

export function isCodecName(x: unknown): x is CodecName {
  return typeof x === "string" && (CODEC_NAMES as readonly string[]).includes(x);
}

/**
 * Parses a device topic.
 *
 * @example
 * parseTopic("devices/t-1/up/telemetry/cbor");
 * // { ok: true, topic: { direction: "up", deviceId: "t-1", channel: "telemetry", codec: "cbor" } }
 */
export function parseTopic(topic: string): TopicParseResult {
  const parts = typeof topic === "string" ? topic.split("/") : [];
  if (parts.length < 4 || parts.length > 5 || parts[0] !== "devices") {
    return { ok: false, code: "BRIDGE_ERR_TOPIC_INVALID", message: "expected devices/{id}/up|down/{channel}" };
  }
  const [, deviceId, direction, channel, codec] = parts;
  if (!isValidDeviceId(deviceId)) {
    return { ok: false, code: "BRIDGE_ERR_DEVICE_ID_INVALID", message: `device id must be ${DEVICE_ID_RULE}` };
  }
  if (direction === "up") {
    if (!isUpChannel(channel)) {
      return { ok: false, code: "BRIDGE_ERR_UNKNOWN_CHANNEL", message: `no up channel named ${channel}` };
    }
    if (codec === undefined) return { ok: true, topic: { direction, deviceId, channel } };
    if (!isCodecName(codec)) {
      return {
        ok: false,
        code: "BRIDGE_ERR_UNKNOWN_CODEC",
        message: `codec suffix must be one of ${CODEC_NAMES.join(", ")}`,
      };
    }
    return { ok: true, topic: { direction, deviceId, channel, codec } };
  }
  if (direction === "down") {
    if (!isDownChannel(channel)) {
      return { ok: false, code: "BRIDGE_ERR_UNKNOWN_CHANNEL", message: `no down channel named ${channel}` };
    }
    if (codec !== undefined) {
      return { ok: false, code: "BRIDGE_ERR_TOPIC_INVALID", message: "down topics carry no codec suffix" };
    }
    return { ok: true, topic: { direction, deviceId, channel } };
  }
  return { ok: false, code: "BRIDGE_ERR_TOPIC_INVALID", message: "the third level must be up or down" };
}

function assertId(deviceId: string): void {
  if (!isValidDeviceId(deviceId)) {
    throw new BridgeError("BRIDGE_ERR_DEVICE_ID_INVALID", `device id must be ${DEVICE_ID_RULE}`, {
      field: "deviceId",
    });
  }
}

/**
 * Formats an up topic, optionally with a codec suffix.
 *
 * @example
 * formatUpTopic("t-1", "telemetry", "pb"); // "devices/t-1/up/telemetry/pb"
 */
export function formatUpTopic(deviceId: string, channel: UpChannel, codec?: CodecName): string {
  assertId(deviceId);
  if (!isUpChannel(channel)) {
    throw new BridgeError("BRIDGE_ERR_UNKNOWN_CHANNEL", `no up channel named ${String(channel)}`, { field: "channel" });
  }
  if (codec !== undefined && !isCodecName(codec)) {
    throw new BridgeError("BRIDGE_ERR_UNKNOWN_CODEC", `no codec named ${String(codec)}`, { field: "codec" });
  }
  return codec === undefined ? `devices/${deviceId}/up/${channel}` : `devices/${deviceId}/up/${channel}/${codec}`;
}

/**
 * Formats a down topic.
 *
 * @example
 * formatDownTopic("t-1", "cmd"); // "devices/t-1/down/cmd"
 */
export function formatDownTopic(deviceId: string, channel: DownChannel): string {
  assertId(deviceId);
  if (!isDownChannel(channel)) {
    throw new BridgeError("BRIDGE_ERR_UNKNOWN_CHANNEL", `no down channel named ${String(channel)}`, {
      field: "channel",
    });
  }
  return `devices/${deviceId}/down/${channel}`;
}

/**
 * The topic filters of one device: what it may publish to and subscribe to (for ACLs), and what it should subscribe
 * to for its down frames.
 *
 * @example
 * deviceTopicFilters("t-1"); // { root: "devices/t-1/", up: "devices/t-1/up/#", down: "devices/t-1/down/#" }
 */
export function deviceTopicFilters(deviceId: string): { root: string; up: string; down: string } {
  assertId(deviceId);
  return { root: `devices/${deviceId}/`, up: `devices/${deviceId}/up/#`, down: `devices/${deviceId}/down/#` };
}
