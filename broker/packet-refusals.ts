/**
 * What the broker does with a connection the packet guard cut (listeners/packet-guard.ts), on every listener (TCP, TLS,
 * MQTT over WebSocket): count it (BRIDGE_ERR_PACKET_TOO_LARGE, BRIDGE_ERR_PROTOCOL_VIOLATION), end its session as
 * `error`, and warn at most once per 10 s per source address (the one a PROXY protocol header or a trusted proxy's
 * X-Forwarded-For named), with how many it cut since. A client reconnecting in a loop and breaking the protocol each
 * time wrote one line per connection before, without bound.
 */
import type { Duplex } from "node:stream";
import type { Client } from "aedes";
import type { Clock } from "./clock.ts";
import { addressKey } from "./connect-guard/address-key.ts";
import type { DeviceConnection } from "./connection.ts";
import { BrokerErrorCode } from "./errors.ts";
import type { StreamFacts } from "./hooks/index.ts";
import type { PacketRefusal } from "./listeners/packet-guard.ts";
import type { ObserverHub } from "./observer.ts";
import type { BrokerLogger } from "./options.ts";
import { ThrottledWarningPerKey } from "./throttled-warning-per-key.ts";

export const PACKET_TOO_LARGE_WARNING = "MQTT packet too large; connection cut";
export const PROTOCOL_VIOLATION_WARNING = "MQTT protocol violation; connection cut";

export interface PacketRefusalDeps {
  hub: ObserverHub;
  logger: BrokerLogger;
  clock: Clock;
  /** The transport and peer address of each guarded stream, until its session takes them. */
  streamFacts: WeakMap<object, StreamFacts>;
  connections: WeakMap<Client, DeviceConnection>;
  /** The guard's bound, for the line of a packet too large. */
  maxPacketBytes: number;
}

/** The guard's `onRefused`, shared by every connection (one closure per broker, not per socket). */
export function packetRefusals(
  deps: PacketRefusalDeps,
): (stream: Duplex, refusal: PacketRefusal, packet: string | undefined) => void {
  const { hub, streamFacts, connections, maxPacketBytes } = deps;
  // Keyed as failed authentications are (an IPv6 /64 as one key): one subscriber cycling through its own addresses
  // gets one line, not one per address.
  const tooLarge = new ThrottledWarningPerKey(deps.logger, deps.clock, PACKET_TOO_LARGE_WARNING);
  const violation = new ThrottledWarningPerKey(deps.logger, deps.clock, PROTOCOL_VIOLATION_WARNING);
  return (stream, refusal, packet) => {
    hub.limitBreach(refusal === "too-large" ? BrokerErrorCode.packetTooLarge : BrokerErrorCode.protocolViolation);
    // A limit breach or a protocol violation ends the session as "error", even with a last will due (docs/broker.md,
    // Sessions); without this the cut socket would read as a plain disconnect, or as the device vanishing. aedes links
    // its client to the stream.
    const client = (stream as Partial<{ client: Client }>).client;
    const connection = client === undefined ? undefined : connections.get(client);
    connection?.markClosing("error");
    // The facts move into the connection once the session is accepted; before a CONNECT, a socket still knows its peer.
    const remoteAddress =
      streamFacts.get(stream)?.remoteAddress ??
      connection?.remoteAddress ??
      (stream as Partial<{ remoteAddress: string }>).remoteAddress ??
      "";
    const key = addressKey(remoteAddress);
    if (refusal === "too-large") {
      tooLarge.note(key, { remoteAddress, max: maxPacketBytes });
      return;
    }
    // `packet`: the type a client may not send; else the remaining length was malformed.
    const what = packet !== undefined ? { packet } : { malformed: "remaining length of more than four bytes" };
    violation.note(key, { remoteAddress, device: connection?.deviceId, ...what });
  };
}
