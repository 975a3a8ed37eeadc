/**
 * The up path: one MQTT publish from a device becomes one agent event. Limits and decoding run at arrival, in
 * packet order; the hand-over to `host.deliver` is chained per connection so events reach the mailbox in order;
 * the returned promise settles only after the event committed, and aedes sends the PUBACK only then.
 */
import type { AgentHost, EventResult } from "../agents/host.ts";
import type { UpMessage } from "../codecs/frames.ts";
import type { DeviceConnection } from "./connection.ts";
import { BrokerErrorCode } from "./errors.ts";
import { handleUp } from "./handlers/index.ts";
import type { ObserverHub } from "./observer.ts";
import type { BrokerLimits, BrokerLogger } from "./options.ts";
import type { DeviceRegistry } from "./registry/index.ts";
import type { DownSender } from "./transport.ts";
import { decodeUp, guessHelloCodec, parseUpTopic } from "./wire.ts";

/**
 * What to tell aedes about one up message. `ack`: it was handled (stored, or refused with an error frame the
 * device received), so a QoS 1 PUBACK may go. `disconnect`: protocol abuse or a server fault; the session ends
 * without acknowledging.
 */
export type UplinkOutcome = { status: "ack" } | { status: "disconnect"; code: string; message: string };

export interface UplinkDeps {
  host: AgentHost;
  registry: DeviceRegistry;
  hub: ObserverHub;
  logger: BrokerLogger;
  limits: BrokerLimits;
  sender: DownSender;
}

export interface Uplink {
  /** Handles one publish from `connection` on `topic` (already inside its up namespace). */
  handle(connection: DeviceConnection, topic: string, payload: Buffer): Promise<UplinkOutcome>;
}

const ACK: UplinkOutcome = { status: "ack" };

/**
 * Failed results that mean the event was never applied for a reason outside the message itself (the runtime is
 * shutting down, the connection is unknown to it, its storage failed or is full). Acknowledged means stored, so
 * these get no PUBACK: the device is told with an error frame, then the session ends and the device sends the
 * message again after reconnecting (by then the retention may have made room, or an operator raised the cap).
 * Any other failure is the handler refusing this message: it is acknowledged with an error frame, since sending
 * it again cannot help.
 */
export const UNAPPLIED_FAILURE_CODES: readonly string[] = [
  "BRIDGE_ERR_RUNTIME_CLOSED",
  "BRIDGE_ERR_CONNECTION_UNKNOWN",
  "BRIDGE_ERR_STORAGE",
  "BRIDGE_ERR_STORAGE_FULL",
];

export function createUplink(deps: UplinkDeps): Uplink {
  const { host, hub, limits, sender } = deps;

  // Refusals go in the connection's codec, not the refused message's suffix: a binary device that sent a /json
  // message must still never receive a JSON text frame (DESIGN section 3, protocol suppression).
  function refuse(connection: DeviceConnection, code: string, msg: string, id?: string): void {
    sender.send(connection, { channel: "error", frame: id === undefined ? { code, msg } : { code, msg, id } }, 0);
  }

  /**
   * Offers the event to the mailbox until it is accepted; waits on `ready` while the mailbox is full. Resolves on
   * acceptance, not on commit: `done` is wrapped so the async function does not adopt it, which would make the next
   * message of the device wait for this one's commit instead of only for its place in the mailbox.
   */
  async function handOver(
    connection: DeviceConnection,
    message: UpMessage,
  ): Promise<{ done: Promise<EventResult> } | undefined> {
    for (;;) {
      if (connection.closed) return undefined;
      const outcome = host.deliver(connection.deviceId, connection.connectionId, message);
      if (outcome.accepted) return { done: outcome.done };
      // Backpressure: this publish stays unacknowledged, and aedes reads no further packets of this session
      // until it is handled, so the device slows down instead of the mailbox growing.
      await outcome.ready;
    }
  }

  async function deliver(connection: DeviceConnection, message: UpMessage): Promise<UplinkOutcome> {
    const accepted = connection.deliverTail.then(() => handOver(connection, message));
    connection.deliverTail = accepted.then(
      () => undefined,
      () => undefined,
    );
    let result: EventResult;
    try {
      const handedOver = await accepted;
      if (handedOver === undefined) return { status: "disconnect", code: "closed", message: "connection closed" };
      result = await handedOver.done;
    } catch (err) {
      deps.logger.error({ err, device: connection.deviceId }, "agent host failed to take an event");
      hub.limitBreach(BrokerErrorCode.hostFault);
      return { status: "disconnect", code: BrokerErrorCode.hostFault, message: "agent host fault" };
    }
    if (result.status !== "failed") return ACK;
    // The handler threw and its frames were dropped; the device still learns its message was not applied.
    const id = "id" in message.frame && typeof message.frame.id === "string" ? message.frame.id : undefined;
    const frame =
      id === undefined ? { code: result.code, msg: result.message } : { code: result.code, msg: result.message, id };
    if (UNAPPLIED_FAILURE_CODES.includes(result.code)) {
      deps.logger.warn(
        { device: connection.deviceId, code: result.code },
        "up message not applied; the session ends without acknowledging it",
      );
      // Written before the session ends (aedes writes on a later tick), so the device sees why it was cut.
      await sender.sendLast(connection, { channel: "error", frame });
      return { status: "disconnect", code: result.code, message: result.message };
    }
    sender.send(connection, { channel: "error", frame }, 0);
    return ACK;
  }

  return {
    handle(connection, topic, payload) {
      // [MQTT-4.6.0-2] PUBACKs go out in the order the PUBLISHes came: a message refused at once (an error frame)
      // still waits for the commits of the messages before it.
      const own = handleNow(connection, topic, payload);
      const ordered = connection.ackTail.then(() => own);
      connection.ackTail = ordered.catch(() => undefined);
      return ordered;
    },
  };

  function handleNow(connection: DeviceConnection, topic: string, payload: Buffer): Promise<UplinkOutcome> {
    if (!connection.bucket.take()) {
      connection.rateBreaches++;
      hub.limitBreach(BrokerErrorCode.rateLimited);
      if (connection.rateBreaches > limits.maxRateBreaches) {
        return Promise.resolve({
          status: "disconnect",
          code: BrokerErrorCode.rateLimited,
          message: `flood: more than ${limits.maxRateBreaches} messages over the rate limit`,
        });
      }
      refuse(connection, BrokerErrorCode.rateLimited, `over ${limits.messagesPerSecond} messages/s; message dropped`);
      return Promise.resolve(ACK);
    }
    connection.rateBreaches = 0;
    if (payload.length > limits.maxPayloadBytes) {
      hub.limitBreach(BrokerErrorCode.frameTooLarge);
      refuse(connection, BrokerErrorCode.frameTooLarge, `payload over ${limits.maxPayloadBytes} bytes`);
      return Promise.resolve(ACK);
    }
    const parsed = parseUpTopic(topic);
    if (!parsed.ok) {
      hub.decodeError(parsed.code);
      refuse(connection, parsed.code, parsed.message);
      return Promise.resolve(ACK);
    }
    const known = connection.upCodec();
    let codec = parsed.codec ?? known.codec;
    if (parsed.codec === undefined && parsed.channel === "hello" && known.source === "default") {
      codec = guessHelloCodec(payload) ?? codec;
    }
    const decoded = decodeUp(codec, parsed.channel, payload, {
      maxFrameBytes: limits.maxPayloadBytes,
      maxDepth: limits.maxDepth,
    });
    if (!decoded.ok) {
      hub.decodeError(decoded.code);
      refuse(connection, decoded.code, decoded.message);
      return Promise.resolve(ACK);
    }
    // What the device's latest message was in hints at what it speaks: its down frames use that only when nothing is
    // known (no hello, no registry codec). A message without a suffix was in the connection's codec already.
    connection.topicCodec = parsed.codec;
    handleUp(
      { registry: deps.registry, logger: deps.logger, connection, registered: connection.registered },
      decoded.message,
    );
    hub.messageIn(parsed.channel, codec);
    if (connection.registered) deps.registry.touch(connection.deviceId);
    return deliver(connection, decoded.message);
  }
}
