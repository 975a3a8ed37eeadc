/**
 * QoS 0 down frames written to the session's stream on the spot, in the tick the agent sent them (issue #5: the
 * latency a device sees for each streamed `down/reason` chunk).
 *
 * Through aedes, `client.publish` of a QoS 0 frame builds a `Packet`, runs the forward checks, and defers the write to
 * the loop's check phase (`setImmediate` in aedes' `deliverQoS0`), where `write()` finally calls mqtt-packet's
 * `writeToStream`: about 200 us from the agent's send to the socket, once per streamed chunk. Written here, a frame
 * takes the same `writeToStream` call, now. It does so only when that cannot change what the device sees:
 *
 * - nothing of ours for the session is still in aedes' deferred path (`downInAedes`): PUBLISHes on a topic keep their
 *   order ([MQTT-4.6.0-6]), the final QoS 1 frame of an answer comes after its chunks, and a chunk written now would
 *   overtake a frame aedes writes later. A frame that goes through aedes after chunks written here stays after them,
 *   since it is written later still;
 * - the session is connected and its stream takes writes without waiting for drain: a full stream is left to aedes,
 *   which waits for it to drain (and cuts a client that never drains after its `drainTimeout`), as before;
 * - the stream is a Node stream (`writableNeedDrain`), which TCP, TLS and WebSocket sessions all have in `client.conn`.
 *
 * The topic is the session's own `devices/{id}/down/...` (the device id is the MQTT client id), so aedes'
 * `authorizeForward`, which this path skips, would let it through, and aedes' dedupe concerns only messages fanned out
 * from other publishers, which these frames never are.
 */
import mqttPacket from "mqtt-packet";
import type { DeviceConnection } from "./connection.ts";
import type { BrokerLogger } from "./options.ts";

/** True when a QoS 0 frame written now cannot overtake anything or bypass the stream's back-pressure. */
function writableNow(connection: DeviceConnection): boolean {
  if (connection.downInAedes > 0) return false;
  const client = connection.client;
  if (!client.connected || client.closed) return false;
  const conn = client.conn;
  return conn.writableNeedDrain === false && conn.writable && !conn.destroyed;
}

/**
 * Writes a QoS 0 PUBLISH of `payload` on `topic` to the session's stream now when that is safe; false when it must go
 * through aedes instead.
 * A write that throws (a packet mqtt-packet refuses) fails the session as aedes fails it for the same write (an error
 * of the client on a later tick, which ends the session and is logged and counted as a session error); frames sent
 * meanwhile go through aedes, behind it.
 */
export function writeDownNow(
  connection: DeviceConnection,
  topic: string,
  payload: Buffer,
  logger: BrokerLogger,
): boolean {
  if (!writableNow(connection)) return false;
  const client = connection.client;
  try {
    // No packet id at QoS 0 ([MQTT-2.3.1-5]); MQTT 3.1.1 framing, as aedes writes (no protocol options).
    mqttPacket.writeToStream({ cmd: "publish", topic, payload, qos: 0, retain: false, dup: false }, client.conn);
  } catch (err) {
    logger.error({ err, device: connection.deviceId, topic }, "down frame could not be written");
    connection.downInAedes++;
    setImmediate(() => {
      connection.downInAedes--;
      // aedes' own words for it (lib/write.js), so the session ends as it would have through aedes.
      client.emit("error", new Error("packet received not valid", { cause: err }));
    });
  }
  return true;
}
