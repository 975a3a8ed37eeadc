/**
 * The last step of a down frame: encoded and addressed, it is written to the session's stream on the spot
 * (down-write-now.ts) or handed to aedes (`client.publish`), in the order the agent sent it.
 *
 * aedes keeps that order by itself for a clean session: it orders each frame for writing (`setImmediate`) as it is
 * handed over. Not for a persistent one (`clean: false`): aedes first stores a QoS 1 frame in its persistence (a
 * promise) and only then checks and orders it. A frame handed over meanwhile was ordered first, and aedes' dedupe, which
 * drops a message numbered below one it already delivered to that client, then dropped the QoS 1 frame for good: the
 * final frame of an answer followed by the next answer's first chunk, a command followed by a state frame. So while a
 * persistent session has a QoS 1 frame of ours in aedes, later frames wait here, in order, and are handed over once
 * aedes reports it written.
 */
import type { DeviceConnection, EncodedDown } from "./connection.ts";
import { writeDownNow } from "./down-write-now.ts";
import type { ObserverHub } from "./observer.ts";
import type { BrokerLogger } from "./options.ts";

export class DownHandOver {
  constructor(
    private readonly hub: ObserverHub,
    private readonly logger: BrokerLogger,
  ) {}

  /** Hands one frame to the session's stream, or queues it behind a QoS 1 frame aedes is still storing. */
  send(connection: DeviceConnection, frame: EncodedDown): void {
    if (connection.downStoring > 0) {
      connection.behindStored ??= [];
      connection.behindStored.push(frame);
      return;
    }
    this.handOver(connection, frame);
  }

  /** Drops (and counts) the frames still waiting; called when the session ends. */
  discard(connection: DeviceConnection): void {
    const behind = connection.behindStored;
    connection.behindStored = undefined;
    for (const frame of behind ?? []) this.drop(frame);
  }

  private handOver(connection: DeviceConnection, frame: EncodedDown): void {
    this.hub.messageOut(frame.channel, frame.codec);
    // `sendLast` keeps aedes' path: the session ends right after its frame, so it waits for aedes' callback, which
    // comes once the write reached the socket.
    if (frame.qos === 0 && frame.written === undefined) {
      if (writeDownNow(connection, frame.topic, frame.payload, this.logger)) return;
    }
    const stored = frame.qos === 1 && !connection.clean;
    connection.downInAedes++;
    if (stored) connection.downStoring++;
    const packet = {
      cmd: "publish",
      topic: frame.topic,
      payload: frame.payload,
      qos: frame.qos,
      retain: false,
      dup: false,
    } as const;
    connection.client.publish(packet, (err) => {
      connection.downInAedes--;
      if (err) this.logger.warn({ err, device: connection.deviceId }, "down publish failed");
      frame.written?.();
      if (stored) {
        connection.downStoring--;
        if (connection.downStoring === 0) this.release(connection);
      }
    });
  }

  /** Hands over the frames that waited, in order, until one of them is a QoS 1 frame aedes stores in its turn. */
  private release(connection: DeviceConnection): void {
    const behind = connection.behindStored;
    connection.behindStored = undefined;
    if (behind === undefined) return;
    for (let i = 0; i < behind.length; i++) {
      if (connection.closed || connection.client.closed) {
        for (let j = i; j < behind.length; j++) this.drop(behind[j]);
        return;
      }
      if (connection.downStoring > 0) {
        connection.behindStored = behind.slice(i);
        return;
      }
      this.handOver(connection, behind[i]);
    }
  }

  private drop(frame: EncodedDown): void {
    this.hub.downDropped();
    frame.written?.();
  }
}
