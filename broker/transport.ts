/**
 * The ConnectionTransport the broker hands to the agent host for each device session: frames become MQTT
 * publishes on `devices/{id}/down/{channel}`, always in the connection's own codec (a binary device never gets JSON).
 */
import type { ConnectionTransport, ProtocolMessage } from "../agents/host.ts";
import type { DesiredStateFrame, DownMessage, Value, ValueMap } from "../codecs/frames.ts";
import { filterMatches } from "./acl.ts";
import type { Clock } from "./clock.ts";
import type { DeviceConnection, HeldDown } from "./connection.ts";
import type { ObserverHub } from "./observer.ts";
import type { BrokerLogger } from "./options.ts";
import { downTopic, encodeDown } from "./wire.ts";

/** QoS 1 for what a device must not miss (commands, rpc results, the final reasoning frame); QoS 0 for the rest. */
export function downQos(message: DownMessage): 0 | 1 {
  switch (message.channel) {
    case "cmd":
    case "rpc":
      return 1;
    case "reason":
      return message.frame.fin === true ? 1 : 0;
    default:
      return 0;
  }
}

function isValueMap(value: Value): value is ValueMap {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}

/** Maps a runtime protocol message to its MQTT down frame. */
export function protocolToDown(message: ProtocolMessage): DownMessage {
  if (message.type === "identity") {
    return {
      channel: "identity",
      frame: { name: message.name, id: message.agent, pv: message.protocolVersion, t: message.serverTime },
    };
  }
  // The runtime's state broadcast is the whole state; a device sees it as a full desired state at version 0.
  const frame: DesiredStateFrame = {
    v: 0,
    d: isValueMap(message.state) ? message.state : { value: message.state },
    full: true,
  };
  return { channel: "state", frame };
}

export interface DownSender {
  /** Publishes one frame to the connection; false when dropped (closed, not subscribed, unencodable). */
  send(connection: DeviceConnection, message: DownMessage, qos: 0 | 1): boolean;
  /** Marks the session ready and sends the frames that waited for it, in order. */
  flush(connection: DeviceConnection): void;
  /** After a SUBSCRIBE: sends the held frames it matches, in order. */
  subscribed(connection: DeviceConnection): void;
  /** Drops (and counts) whatever the session still holds; called when it ends. */
  discard(connection: DeviceConnection): void;
}

/** Frames held for a session that is not ready yet; beyond this the oldest are dropped and counted. */
const MAX_PENDING_DOWN = 1024;

/** Creates the sender that publishes down frames straight to one aedes client (no fan-out to other sessions). */
export function createDownSender(
  hub: ObserverHub,
  logger: BrokerLogger,
  clock: Clock,
  subscribeGraceMs: number,
): DownSender {
  const hold = (list: HeldDown[], message: DownMessage, qos: 0 | 1): void => {
    if (list.length >= MAX_PENDING_DOWN) {
      list.shift();
      hub.downDropped();
    }
    list.push({ message, qos });
  };
  const grantedQos = (connection: DeviceConnection, topic: string): number => {
    let granted = -1;
    for (const [filter, qos] of connection.subscriptions) {
      if (qos > granted && filterMatches(filter, topic)) granted = qos;
    }
    return granted;
  };

  const sender: DownSender = {
    send(connection, message, requestedQos) {
      if (connection.closed || connection.client.closed) {
        hub.downDropped();
        return false;
      }
      if (!connection.ready) {
        hold(connection.pendingDown, message, requestedQos);
        return true;
      }
      const topic = downTopic(connection.deviceId, message.channel);
      const granted = grantedQos(connection, topic);
      if (granted < 0) {
        if (clock.now() < connection.holdUntilMs) {
          hold(connection.heldDown, message, requestedQos);
          return true;
        }
        // MQTT delivers only what a session subscribed to; the agent's outbox redelivers commands on resubscribe.
        hub.downDropped();
        return false;
      }
      // Decided now, not when the frame was produced: a hello that arrived meanwhile counts.
      const codec = connection.codec;
      let payload: Uint8Array;
      try {
        payload = encodeDown(codec, message);
      } catch (err) {
        logger.error({ err, device: connection.deviceId, channel: message.channel }, "down frame does not encode");
        hub.downDropped();
        return false;
      }
      const qos = Math.min(Math.max(requestedQos, downQos(message)), granted) as 0 | 1;
      connection.client.publish(
        { cmd: "publish", topic, payload: Buffer.from(payload), qos, retain: false, dup: false },
        (err) => {
          if (err) logger.warn({ err, device: connection.deviceId }, "down publish failed");
        },
      );
      hub.messageOut(message.channel, codec);
      return true;
    },
    flush(connection) {
      connection.ready = true;
      if (subscribeGraceMs > 0) {
        connection.holdUntilMs = clock.now() + subscribeGraceMs;
        connection.holdTimer = clock.setTimeout(() => {
          connection.holdTimer = undefined;
          for (const _ of connection.heldDown.splice(0)) hub.downDropped();
        }, subscribeGraceMs);
      }
      for (const { message, qos } of connection.pendingDown.splice(0)) sender.send(connection, message, qos);
    },
    subscribed(connection) {
      if (connection.heldDown.length === 0) return;
      const held = connection.heldDown.splice(0);
      for (const item of held) {
        if (grantedQos(connection, downTopic(connection.deviceId, item.message.channel)) >= 0) {
          sender.send(connection, item.message, item.qos);
        } else {
          connection.heldDown.push(item);
        }
      }
    },
    discard(connection) {
      if (connection.holdTimer !== undefined) clock.clearTimeout(connection.holdTimer);
      connection.holdTimer = undefined;
      for (const _ of connection.pendingDown.splice(0)) hub.downDropped();
      for (const _ of connection.heldDown.splice(0)) hub.downDropped();
    },
  };
  return sender;
}

/** The transport object given to `host.open` for one connection. */
export function createConnectionTransport(
  connection: DeviceConnection,
  sender: DownSender,
  closeFromServer: (connection: DeviceConnection, reason: string) => void,
): ConnectionTransport {
  return {
    send(message, options) {
      sender.send(connection, message, options.qos);
    },
    sendProtocol(message) {
      sender.send(connection, protocolToDown(message), 0);
    },
    close(reason) {
      closeFromServer(connection, reason);
    },
  };
}
