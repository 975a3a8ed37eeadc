/**
 * One debug line per `down/error` frame a device is sent, whoever refused its message (the broker: a payload that does
 * not decode, a rate or size limit; or its agent: a stale state patch, no engine configured). The device is told in
 * the frame itself; this line is for whoever writes firmware against the bridge with a client that never shows what
 * reaches the connection it publishes from (`mosquitto_pub` sends and disconnects). Debug only: a misbehaving fleet
 * must not flood the log at the default level, and the counters count every refusal anyway.
 */
import type { ErrorFrame } from "../codecs/frames.ts";
import type { BrokerLogger } from "./options.ts";

/**
 * The up message the frame answers, where the broker has it at hand: its own refusals, and an event its agent failed
 * (an agent's own error frames come through the connection's transport, without it).
 */
export interface RefusedUp {
  /** The up topic, cut to 256 characters. */
  topic: string;
  /** The codec the payload was read in (a JSON payload read as CBOR is the usual first mistake). */
  codec?: string;
}

/** Logs `frame` for `deviceId` at debug level; a logger without `debug` (the broker's default) logs nothing. */
export function logErrorFrame(logger: BrokerLogger, deviceId: string, frame: ErrorFrame, refused?: RefusedUp): void {
  if (logger.debug === undefined) return;
  // The frame nested, not spread: pino writes the log line's own text under `msg`, the frame's key too.
  logger.debug(
    refused === undefined
      ? { device: deviceId, frame }
      : { device: deviceId, topic: refused.topic.slice(0, 256), codec: refused.codec, frame },
    "error frame to device",
  );
}
