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
 *
 * When the session ends, aedes keeps the frame it was storing and resends it at the device's next session; the QoS 1
 * frames waiting behind it go to the same queue, after it (offline-down-queue.ts), so that they follow it there.
 */
import type { DeviceConnection, EncodedDown } from "./connection.ts";
import { writeDownNow } from "./down-write-now.ts";
import type { ObserverHub } from "./observer.ts";
import type { OfflineDownQueue } from "./offline-down-queue.ts";
import type { BrokerLogger } from "./options.ts";

/**
 * True when the QoS 1 frames an ended session still had waiting are kept for the device's next session: only a
 * persistent session's, and not when the device was removed (nothing of it may survive it) or the broker shuts down
 * (aedes' store is in memory).
 */
function keepsWaitingFrames(connection: DeviceConnection): boolean {
  return !connection.clean && connection.closeReason !== "removed" && connection.closeReason !== "shutdown";
}

export class DownHandOver {
  constructor(
    private readonly hub: ObserverHub,
    private readonly logger: BrokerLogger,
    private readonly offline: OfflineDownQueue,
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

  /**
   * The session ended: hands its QoS 1 frames still waiting to the device's offline queue (`keepsWaitingFrames`), and
   * drops and counts the others. Resolves once the device's queue holds them, so a new session of the device waits for
   * it before its CONNACK.
   */
  settle(connection: DeviceConnection): Promise<void> {
    const behind = connection.behindStored;
    connection.behindStored = undefined;
    const keep = keepsWaitingFrames(connection);
    const kept: EncodedDown[] = [];
    for (const frame of behind ?? []) {
      if (keep && frame.qos === 1) kept.push(frame);
      else this.drop(frame);
    }
    if (kept.length === 0) return this.offline.settled(connection.deviceId);
    return this.offline.keep(connection.deviceId, kept);
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
        // The session ended while its QoS 1 frame was stored: the rest is settled as at the session's end.
        connection.behindStored = behind.slice(i);
        void this.settle(connection);
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
