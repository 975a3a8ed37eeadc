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
 * aedes then keeps each such frame in its store (in memory) until the device acknowledges it, however many there are:
 * a device that subscribes and never sends a PUBACK grew the bridge's memory for as long as its agent sent. As a
 * mature broker bounds its in-flight window (mosquitto's `max_inflight_messages`), at most `maxUnacked` QoS 1 frames of
 * a persistent session are in aedes' store unacknowledged; further ones wait here too and are handed over, in order, as
 * PUBACKs make room. What waits here is bounded as well (mosquitto's `max_queued_messages`): a session holds at most
 * MAX_QUEUED_DOWN_PER_DEVICE frames past a full window; a further one is refused (dropped, counted and warned), as the
 * device's offline queue refuses one. A device that acknowledges sees no difference: while the window has room, a frame
 * goes on at once, as before. A clean session needs neither bound: aedes keeps none of its frames once written.
 *
 * When the session ends, aedes keeps the frames in its store and resends them at the device's next session; the QoS 1
 * frames waiting here go to the same queue, after them (offline-down-queue.ts), so that they follow them there.
 */
import type { Clock } from "./clock.ts";
import type { DeviceConnection, EncodedDown } from "./connection.ts";
import { writeDownNow } from "./down-write-now.ts";
import { BrokerErrorCode } from "./errors.ts";
import type { ObserverHub } from "./observer.ts";
import { MAX_QUEUED_DOWN_PER_DEVICE, type OfflineDownQueue } from "./offline-down-queue.ts";
import type { BrokerLogger } from "./options.ts";
import { ThrottledWarningPerKey } from "./throttled-warning-per-key.ts";

/**
 * True when the QoS 1 frames an ended session still had waiting are kept for the device's next session: only a
 * persistent session's, and not when the device was removed (nothing of it may survive it) or the broker shuts down
 * (aedes' store is in memory).
 */
function keepsWaitingFrames(connection: DeviceConnection): boolean {
  return !connection.clean && connection.closeReason !== "removed" && connection.closeReason !== "shutdown";
}

/** True for a frame aedes keeps in its store until the device acknowledges it: QoS 1 in a persistent session. */
function storedByAedes(connection: DeviceConnection, frame: EncodedDown): boolean {
  return frame.qos === 1 && !connection.clean;
}

/**
 * `frame` at the QoS aedes will write it at now: no more than that of the session's filter equal to its topic,
 * whatever a wildcard grants. Handed over as QoS 1 and written as QoS 0, a persistent session's frame would stay in
 * aedes' store, never acknowledged, delivered again at every reconnect and its place in the window taken for good.
 * Asked again as a frame that waited leaves: the device may have resubscribed at QoS 0 meanwhile.
 */
function atWrittenQos(connection: DeviceConnection, frame: EncodedDown): EncodedDown {
  const exact = connection.subscriptions.filterQos(frame.topic);
  return exact !== undefined && exact < frame.qos ? { ...frame, qos: exact } : frame;
}

export const DOWN_QUEUE_FULL_LINE =
  "device's down queue is full (frames not acknowledged or not read); down frames refused";

export class DownHandOver {
  readonly #full: ThrottledWarningPerKey;

  constructor(
    private readonly hub: ObserverHub,
    private readonly logger: BrokerLogger,
    private readonly offline: OfflineDownQueue,
    /** QoS 1 frames a persistent session may have in aedes' store unacknowledged (`limits.maxUnackedDownPerDevice`). */
    private readonly maxUnacked: number,
    clock: Clock,
  ) {
    // A device that never acknowledges has every further frame refused: a line per device per interval, not per frame.
    this.#full = new ThrottledWarningPerKey(logger, clock, DOWN_QUEUE_FULL_LINE, { keysAre: "devices" });
  }

  /**
   * Hands one frame to the session's stream, or queues it behind the frames still waiting, a QoS 1 frame aedes is still
   * storing, or a full window of unacknowledged ones.
   */
  send(connection: DeviceConnection, sent: EncodedDown): void {
    const frame = atWrittenQos(connection, sent);
    if (connection.downWaiting !== undefined || !this.mayHandOver(connection, frame)) {
      this.wait(connection, frame);
      return;
    }
    this.handOver(connection, frame);
  }

  /** The device acknowledged a QoS 1 frame aedes held for it: room for one more in the window. */
  acked(connection: DeviceConnection): void {
    if (connection.downUnacked > 0) connection.downUnacked--;
    if (connection.downStoring === 0) this.release(connection);
  }

  /**
   * The session ended: hands its QoS 1 frames still waiting to the device's offline queue (`keepsWaitingFrames`), and
   * drops and counts the others. Resolves once the device's queue holds them, so a new session of the device waits for
   * it before its CONNACK.
   */
  settle(connection: DeviceConnection): Promise<void> {
    const behind = connection.downWaiting;
    connection.downWaiting = undefined;
    const keep = keepsWaitingFrames(connection);
    const kept: EncodedDown[] = [];
    for (const frame of behind ?? []) {
      if (keep && frame.qos === 1) kept.push(frame);
      else this.drop(frame);
    }
    if (kept.length === 0) return this.offline.settled(connection.deviceId);
    return this.offline.keep(connection.deviceId, kept);
  }

  /** True when `frame` may go to aedes now: nothing stored is still unwritten, and a stored frame fits the window. */
  private mayHandOver(connection: DeviceConnection, frame: EncodedDown): boolean {
    if (connection.downStoring > 0) return false;
    return !storedByAedes(connection, frame) || connection.downUnacked < this.maxUnacked;
  }

  /**
   * Queues `frame` behind those waiting, or refuses it when the session holds MAX_QUEUED_DOWN_PER_DEVICE frames past a
   * full window already (the earliest are kept). Counted with the window, not after it: a burst the agent sends in one
   * go waits here while its QoS 1 frames go to aedes one at a time, and a device that acknowledges must get all of it.
   */
  private wait(connection: DeviceConnection, frame: EncodedDown): void {
    const waiting = connection.downWaiting?.length ?? 0;
    if (waiting + connection.downUnacked < this.maxUnacked + MAX_QUEUED_DOWN_PER_DEVICE) {
      connection.downWaiting ??= [];
      connection.downWaiting.push(frame);
      return;
    }
    this.hub.limitBreach(BrokerErrorCode.downQueueFull);
    this.drop(frame);
    const { deviceId } = connection;
    this.#full.note(deviceId, { device: deviceId, waiting, unacked: connection.downUnacked });
  }

  private handOver(connection: DeviceConnection, frame: EncodedDown): void {
    this.hub.messageOut(frame.channel, frame.codec);
    // `sendLast` keeps aedes' path: the session ends right after its frame, so it waits for aedes' callback, which
    // comes once the write reached the socket.
    if (frame.qos === 0 && frame.written === undefined) {
      if (writeDownNow(connection, frame.topic, frame.payload, this.logger)) return;
    }
    const stored = storedByAedes(connection, frame);
    connection.downInAedes++;
    if (stored) {
      connection.downStoring++;
      connection.downUnacked++;
    }
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

  /**
   * Hands over the frames that waited, in order, until one of them is a QoS 1 frame aedes stores in its turn or one
   * the window has no room for.
   */
  private release(connection: DeviceConnection): void {
    const waiting = connection.downWaiting;
    connection.downWaiting = undefined;
    if (waiting === undefined) return;
    for (let i = 0; i < waiting.length; i++) {
      if (connection.closed || connection.client.closed) {
        // The session ended while its frames waited: the rest is settled as at the session's end.
        connection.downWaiting = waiting.slice(i);
        void this.settle(connection);
        return;
      }
      const frame = atWrittenQos(connection, waiting[i]);
      if (!this.mayHandOver(connection, frame)) {
        connection.downWaiting = waiting.slice(i);
        return;
      }
      this.handOver(connection, frame);
    }
  }

  private drop(frame: EncodedDown): void {
    this.hub.downDropped();
    frame.written?.();
  }
}
