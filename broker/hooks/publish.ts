/** PUBLISH from a device: ACL, in-flight limit, then the up path; aedes sends the PUBACK when `callback` runs. */
import type { AedesOptions, Client } from "aedes";
import { BridgeError } from "../../errors/index.ts";
import { mayPublish } from "../acl.ts";
import type { DeviceConnection } from "../connection.ts";
import { BrokerErrorCode } from "../errors.ts";
import type { UplinkOutcome } from "../uplink.ts";
import type { HookContext } from "./context.ts";

type AuthorizePublish = NonNullable<AedesOptions["authorizePublish"]>;
type PublishPacket = Parameters<AuthorizePublish>[1];
type Answer = (error?: Error | null) => void;

/**
 * A QoS 2 PUBLISH sent again ([MQTT-3.3.1-1]: DUP set): its first copy may have reached the agent already, with only
 * the PUBREC lost. aedes answers a copy it still holds with PUBREC alone, but only after this hook, so the hook asks
 * first rather than hand the message to the agent twice.
 */
function isQos2Retransmission(packet: PublishPacket): boolean {
  return packet.qos === 2 && packet.dup && packet.messageId !== undefined;
}

export function createAuthorizePublish(ctx: HookContext): AuthorizePublish {
  const { hub, uplink, connections } = ctx;
  const { logger, limits } = ctx.opts;

  /** Hands one message to the up path (or, `duplicate`, only answers it); the answer keeps PUBLISH order. */
  const forward = (
    connection: DeviceConnection,
    packet: PublishPacket,
    payload: Buffer,
    callback: Answer,
    duplicate: boolean,
  ): void => {
    connection.inflight++;
    const answer = (outcome: UplinkOutcome): void => {
      connection.inflight--;
      let error: BridgeError | null = null;
      if (outcome.status !== "ack") {
        connection.markClosing("error");
        error = new BridgeError(outcome.code, outcome.message);
      }
      // The answer (PUBACK, or the session's end) leaves on the loop's check phase, after the I/O this message
      // started in the poll phase: an engine request an agent started while handling it, which undici also writes
      // on the check phase, and first. Written at once, the ack would wake the device's process just ahead of the
      // request, and on a machine with few cores the two wake-ups compete (docs/benchmarks.md, "Session 5"). Every
      // outcome takes the same path, so answers keep the order of the PUBLISHes.
      setImmediate(() => {
        try {
          callback(error);
        } catch (err) {
          // Outside the uplink's own guard now: a throw here would otherwise end the process.
          logger.error({ err, device: connection.deviceId }, "answering an up message failed");
        }
      });
    };
    if (duplicate) uplink.skip(connection, answer);
    else uplink.handle(connection, packet.topic, payload, answer);
  };

  /**
   * Forwards after the session's pending retransmission checks, asking aedes' store first when this message is one:
   * later messages wait, so the agent still gets them in arrival order. A store that fails to answer counts as "not
   * held": the message is delivered (at least once rather than lost).
   */
  const forwardGated = (
    client: Client,
    connection: DeviceConnection,
    packet: PublishPacket,
    payload: Buffer,
    callback: Answer,
  ): void => {
    const retransmitted = isQos2Retransmission(packet) ? packet.messageId : undefined;
    const gate = (connection.upGate ?? Promise.resolve())
      .then(() => (retransmitted === undefined ? false : ctx.holdsQos2(client, retransmitted).catch(() => false)))
      .then((duplicate) => {
        // As for an ungated message: a session that ended meanwhile hands nothing more to its agent.
        if (connection.closed) callback(new Error("session closed"));
        else forward(connection, packet, payload, callback, duplicate);
      })
      .catch((err: unknown) => logger.error({ err, device: connection.deviceId }, "forwarding an up message failed"));
    connection.upGate = gate;
    void gate.then(() => {
      if (connection.upGate === gate) connection.upGate = undefined;
    });
  };

  return (client, packet, callback) => {
    const connection = client ? connections.get(client) : undefined;
    if (!client || !connection) return callback(new Error("publish without a device session"));
    if (client.closed) {
      // aedes publishes the last will only after the session is gone: the agent learns it as close("will"),
      // and the will itself is not relayed (nobody may subscribe to up topics).
      connection.markClosing("will");
      return callback(new Error("last will consumed by the bridge"));
    }
    if (connection.closed || !connection.opened) return callback(new Error("session closed"));
    // The topic of the previous message passed already; a device publishes to the same topic again and again.
    if (packet.topic !== connection.lastUpTopic && !mayPublish(connection.deviceId, packet.topic)) {
      hub.aclDenied("publish");
      logger.warn({ device: connection.deviceId, topic: packet.topic.slice(0, 256) }, "publish outside namespace");
      connection.markClosing("error");
      return callback(new BridgeError(BrokerErrorCode.aclDenied, "publish outside the device namespace"));
    }
    if (connection.inflight >= limits.maxInflightPerDevice) {
      hub.limitBreach(BrokerErrorCode.inflightLimit);
      logger.warn({ device: connection.deviceId, max: limits.maxInflightPerDevice }, "too many messages in flight");
      connection.markClosing("error");
      return callback(new BridgeError(BrokerErrorCode.inflightLimit, "too many messages in flight"));
    }
    // Up messages are consumed here; retaining them would keep device payloads in broker memory for nobody.
    packet.retain = false;
    const payload = typeof packet.payload === "string" ? Buffer.from(packet.payload) : packet.payload;
    if (connection.upGate !== undefined || isQos2Retransmission(packet)) {
      forwardGated(client, connection, packet, payload, callback);
      return;
    }
    forward(connection, packet, payload, callback, false);
  };
}
