/**
 * The close frame that ends an MQTT WebSocket session the broker ends: its status code says why ([RFC 6455 7.4.1]),
 * and MQTT over WebSocket clients and proxies log it. The table is in docs/broker.md (Listeners).
 */
import { BrokerErrorCode } from "../errors.ts";
import { UNAPPLIED_FAILURE_CODES } from "../uplink.ts";

/** [RFC 6455 7.4.1] The status codes the broker closes an MQTT WebSocket with. */
export const WebSocketCloseCode = {
  /** The session ended as MQTT foresees: a DISCONNECT, a refused CONNECT, a takeover, an operator's removal. */
  normalClosure: 1000,
  /** The broker is shutting down. */
  goingAway: 1001,
  /** A text frame: MQTT packets come in binary frames only ([MQTT-6.0.0-1]). */
  unsupportedData: 1003,
  /** The broker cut the session for something the client did: a malformed packet, a keepalive missed, abuse. */
  policyViolation: 1008,
  /** A packet announced more than the broker's packet size limit. */
  messageTooBig: 1009,
  /** The server failed: a message it could not store, a fault of the agent host. */
  internalError: 1011,
} as const;

export interface WebSocketCloseFrame {
  code: number;
  /** Short, and at most 123 bytes of UTF-8 as the frame allows: the broker's stable error code where it has one. */
  reason: string;
}

/** Why aedes ends a session when the error is its own (a packet its parser refused, a keepalive missed). */
const PROTOCOL_ERROR_REASON = "MQTT protocol error";

/** Failures on the broker's side (the device did nothing wrong): the session ends so that the device sends again. */
const SERVER_FAILURE_CODES: ReadonlySet<string> = new Set([BrokerErrorCode.hostFault, ...UNAPPLIED_FAILURE_CODES]);

function errorCode(err: Error): string | undefined {
  const code = (err as { code?: unknown }).code;
  return typeof code === "string" && code.startsWith("BRIDGE_ERR_") ? code : undefined;
}

/**
 * The close frame for a session the broker ends with `err` (undefined or null: an end without an error). ws answers
 * frames it cannot take itself (1002, 1009), and a shutdown closes with 1001 before any session ends.
 */
export function closeFrameFor(err: Error | null | undefined): WebSocketCloseFrame {
  if (err === undefined || err === null) return { code: WebSocketCloseCode.normalClosure, reason: "" };
  const code = errorCode(err);
  if (code === undefined) return { code: WebSocketCloseCode.policyViolation, reason: PROTOCOL_ERROR_REASON };
  if (code === BrokerErrorCode.packetTooLarge) return { code: WebSocketCloseCode.messageTooBig, reason: code };
  if (SERVER_FAILURE_CODES.has(code)) return { code: WebSocketCloseCode.internalError, reason: code };
  return { code: WebSocketCloseCode.policyViolation, reason: code };
}
