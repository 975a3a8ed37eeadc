/** PUBLISH from a device: ACL, in-flight limit, then the up path; aedes sends the PUBACK when `callback` runs. */
import type { AedesOptions } from "aedes";
import { BridgeError } from "../../errors/index.ts";
import { mayPublish } from "../acl.ts";
import { BrokerErrorCode } from "../errors.ts";
import type { HookContext } from "./context.ts";

type AuthorizePublish = NonNullable<AedesOptions["authorizePublish"]>;

export function createAuthorizePublish(ctx: HookContext): AuthorizePublish {
  const { hub, uplink, connections } = ctx;
  const { logger, limits } = ctx.opts;
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
    connection.inflight++;
    uplink.handle(connection, packet.topic, payload, (outcome) => {
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
    });
  };
}
