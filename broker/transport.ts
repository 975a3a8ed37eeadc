/**
 * The ConnectionTransport the broker hands to the agent host for each device session: frames become MQTT
 * publishes on `devices/{id}/down/{channel}`, always in the connection's own codec (a binary device never gets JSON).
 */
import type { ConnectionTransport, ProtocolMessage } from "../agents/host.ts";
import type { DesiredStateFrame, DownMessage, Value, ValueMap } from "../codecs/frames.ts";
import { filterMatches } from "./acl.ts";
import type { DeviceConnection } from "./connection.ts";
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
}

/** Frames held for a session that is not ready yet; beyond this the oldest are dropped and counted. */
const MAX_PENDING_DOWN = 1024;

/** Creates the sender that publishes down frames straight to one aedes client (no fan-out to other sessions). */
export function createDownSender(hub: ObserverHub, logger: BrokerLogger): DownSender {
  const sender: DownSender = {
    send(connection, message, requestedQos) {
      if (connection.closed || connection.client.closed) {
        hub.downDropped();
        return false;
      }
      if (!connection.ready) {
        if (connection.pendingDown.length >= MAX_PENDING_DOWN) {
          connection.pendingDown.shift();
          hub.downDropped();
        }
        connection.pendingDown.push({ message, qos: requestedQos });
        return true;
      }
      const topic = downTopic(connection.deviceId, message.channel);
      let grantedQos = -1;
      for (const [filter, qos] of connection.subscriptions) {
        if (qos > grantedQos && filterMatches(filter, topic)) grantedQos = qos;
      }
      if (grantedQos < 0) {
        // MQTT delivers only what a session subscribed to; the agent's outbox redelivers commands on resubscribe.
        hub.downDropped();
        return false;
      }
      let payload: Uint8Array;
      try {
        payload = encodeDown(connection.codec, message);
      } catch (err) {
        logger.error({ err, device: connection.deviceId, channel: message.channel }, "down frame does not encode");
        hub.downDropped();
        return false;
      }
      const qos = Math.min(Math.max(requestedQos, downQos(message)), grantedQos) as 0 | 1;
      connection.client.publish(
        { cmd: "publish", topic, payload: Buffer.from(payload), qos, retain: false, dup: false },
        (err) => {
          if (err) logger.warn({ err, device: connection.deviceId }, "down publish failed");
        },
      );
      hub.messageOut(message.channel, connection.codec);
      return true;
    },
    flush(connection) {
      connection.ready = true;
      for (const { message, qos } of connection.pendingDown.splice(0)) sender.send(connection, message, qos);
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
