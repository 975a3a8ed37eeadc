/**
 * The ConnectionTransport the broker hands to the agent host for each device session: frames become MQTT
 * publishes on `devices/{id}/down/{channel}`, always in the connection's own codec (a binary device never gets JSON).
 */
import type { ConnectionTransport, ProtocolMessage, RuntimeCloseReason } from "../agents/host.ts";
import { protocolToDown } from "../agents/protocol-down.ts";
import type { CodecName, DownMessage } from "../codecs/frames.ts";
import type { Clock } from "./clock.ts";
import type { DeviceConnection, HeldDown } from "./connection.ts";
import { DownHandOver } from "./down-hand-over.ts";
import { logErrorFrame } from "./error-frame-log.ts";
import type { ObserverHub } from "./observer.ts";
import type { OfflineDownQueue } from "./offline-down-queue.ts";
import type { BrokerLogger } from "./options.ts";
import { downTopic, encodeDown } from "./wire.ts";
import { cutText } from "../codecs/cut-text.ts";
import { fitErrorFrame } from "../codecs/fit-error-frame.ts";
import { getCodec } from "../codecs/index.ts";

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

/** Maps a runtime protocol message to its MQTT down frame (the mapping lives with the host contract, in agents/). */
export { protocolToDown };

export interface DownSender {
  /** Publishes one frame to the connection; false when dropped (closed, not subscribed, unencodable). */
  send(connection: DeviceConnection, message: DownMessage, qos: 0 | 1): boolean;
  /**
   * Sends a frame that the session's end follows (the error frame of a message the broker will not acknowledge):
   * resolves once aedes wrote it to the socket (aedes writes on a later tick, and a session closed before then
   * would lose it), at once when it was dropped or held, and after `LAST_FRAME_WAIT_MS` at the latest (a device that
   * does not read must not keep its session open).
   */
  sendLast(connection: DeviceConnection, message: DownMessage): Promise<void>;
  /** Marks the session ready and sends the frames that waited for it, in order. */
  flush(connection: DeviceConnection): void;
  /** After a SUBSCRIBE: sends the held frames it matches, in order. */
  subscribed(connection: DeviceConnection): void;
  /**
   * After a PUBACK that cleared a QoS 1 frame from aedes' store: room for one more unacknowledged frame, so the frames
   * waiting for it go on, in order (down-hand-over.ts).
   */
  acked(connection: DeviceConnection): void;
  /**
   * Called when the session ended: drops (and counts) what it still holds, but for the QoS 1 frames waiting in a
   * persistent session's queue, which go to the device's offline queue (down-hand-over.ts); a removed
   * device's whole persistent session in aedes' store is dropped (persistent-session.ts). Acts once per session.
   * Resolves once the device's offline queue is written, never rejects.
   */
  discard(connection: DeviceConnection): Promise<void>;
}

/** True when frames of `channel` wait for the session's SUBSCRIBE (`heldDown`). */
function isHeld(connection: DeviceConnection, channel: DownMessage["channel"]): boolean {
  const held = connection.heldDown;
  if (held === undefined) return false;
  for (const item of held) if (item.message.channel === channel) return true;
  return false;
}

/** Frames held for a session that is not ready yet; beyond this the oldest are dropped and counted. */
const MAX_PENDING_DOWN = 1024;
/** How long `sendLast` waits for its frame to be written before the session may end anyway. */
export const LAST_FRAME_WAIT_MS = 1000;

/**
 * Creates the sender that publishes down frames straight to one aedes client (no fan-out to other sessions).
 * `maxUnackedDown` is `limits.maxUnackedDownPerDevice`.
 */
export function createDownSender(
  hub: ObserverHub,
  logger: BrokerLogger,
  clock: Clock,
  subscribeGraceMs: number,
  offline: OfflineDownQueue,
  maxUnackedDown: number,
): DownSender {
  const handOver = new DownHandOver(hub, logger, offline, maxUnackedDown, clock);
  const hold = (list: HeldDown[], message: DownMessage, qos: 0 | 1): void => {
    if (list.length >= MAX_PENDING_DOWN) {
      list.shift();
      hub.downDropped();
    }
    list.push({ message, qos });
  };
  /**
   * Publishes now, holds for later, or drops (and counts) one frame. `written` runs once aedes wrote a published
   * frame to the socket (or failed to, or the frame was dropped while it waited behind another); never for a held or
   * dropped one.
   */
  const publishDown = (
    connection: DeviceConnection,
    message: DownMessage,
    requestedQos: 0 | 1,
    written: (() => void) | undefined,
  ): "published" | "held" | "dropped" => {
    if (connection.closed || connection.client.closed) {
      hub.downDropped();
      return "dropped";
    }
    if (!connection.ready) {
      connection.pendingDown ??= [];
      hold(connection.pendingDown, message, requestedQos);
      return "held";
    }
    const topic = downTopic(connection.deviceId, message.channel);
    const granted = connection.subscriptions.grantedQos(topic);
    // A SUBSCRIBE's filters count from aedes' authorization of it, but what was held for them leaves only after its
    // SUBACK, a turn of the loop later (`subscribed`): a frame of a topic with frames still held waits behind them, or
    // it would overtake them.
    if (granted < 0 || isHeld(connection, message.channel)) {
      const now = clock.monotonicNow();
      if (now < connection.holdUntilMs || granted >= 0) {
        connection.heldDown ??= [];
        hold(connection.heldDown, message, requestedQos);
        // Armed with the first held frame, not for every session: most devices subscribe before any frame is held.
        if (connection.holdTimer === undefined) {
          connection.holdTimer = clock.setTimeout(() => dropHeld(connection), connection.holdUntilMs - now);
        }
        return "held";
      }
      // MQTT delivers only what a session subscribed to; the agent's outbox redelivers commands on resubscribe.
      hub.downDropped();
      return "dropped";
    }
    // Decided now, not when the frame was produced: a hello that arrived meanwhile counts.
    const codec = connection.codec;
    let payload: Uint8Array;
    try {
      payload = encodeDown(codec, message);
    } catch (err) {
      logger.error({ err, device: connection.deviceId, channel: message.channel }, "down frame does not encode");
      const refusal = unencodableRpcAnswer(message, err);
      if (refusal === undefined) {
        hub.downDropped();
        return "dropped";
      }
      // A device waits for the answer to its rpc: it gets one that says why, instead of waiting forever.
      payload = encodeDown(codec, refusal);
    }
    if (message.channel === "error" && connection.maxFrame !== null && payload.byteLength > connection.maxFrame) {
      // The broker's own refusals (a frame that did not decode, a limit) are written without the agent, which fits
      // everything it sends itself: cut here to the device's maxFrame, or not sent when not even the code fits.
      const fitted = fitErrorFrame(getCodec(codec), message.frame, connection.maxFrame);
      if (fitted === undefined) {
        hub.downDropped();
        return "dropped";
      }
      payload = encodeDown(codec, { channel: "error", frame: fitted });
    }
    // No more than a filter equal to the topic allows either: the hand-over caps that (down-hand-over.ts).
    const qos = Math.min(Math.max(requestedQos, downQos(message)), granted) as 0 | 1;
    handOver.send(connection, { topic, payload: Buffer.from(payload), qos, channel: message.channel, codec, written });
    return "published";
  };

  /** The grace period ended: whatever is still held was never subscribed to in time. */
  const dropHeld = (connection: DeviceConnection): void => {
    connection.holdTimer = undefined;
    const held = connection.heldDown;
    connection.heldDown = undefined;
    for (let i = 0; i < (held?.length ?? 0); i++) hub.downDropped();
  };

  const sender: DownSender = {
    send(connection, message, requestedQos) {
      return publishDown(connection, message, requestedQos, undefined) !== "dropped";
    },
    sendLast(connection, message) {
      return new Promise<void>((resolve) => {
        let timer: unknown;
        const done = (): void => {
          if (timer !== undefined) clock.clearTimeout(timer);
          timer = undefined;
          resolve();
        };
        timer = clock.setTimeout(done, LAST_FRAME_WAIT_MS);
        if (publishDown(connection, message, 0, done) !== "published") done();
      });
    },
    flush(connection) {
      connection.ready = true;
      if (subscribeGraceMs > 0) connection.holdUntilMs = clock.monotonicNow() + subscribeGraceMs;
      const pending = connection.pendingDown;
      connection.pendingDown = undefined;
      for (const { message, qos } of pending ?? []) sender.send(connection, message, qos);
    },
    subscribed(connection) {
      const held = connection.heldDown;
      if (held === undefined || held.length === 0) return;
      // Taken off first: a frame sent now must not find itself, or those of its topic before it, still held.
      connection.heldDown = undefined;
      const still: HeldDown[] = [];
      for (const item of held) {
        if (connection.subscriptions.grantedQos(downTopic(connection.deviceId, item.message.channel)) >= 0) {
          sender.send(connection, item.message, item.qos);
        } else {
          still.push(item);
        }
      }
      connection.heldDown = still.length === 0 ? undefined : still;
      if (still.length === 0 && connection.holdTimer !== undefined) {
        // Nothing left to drop when the grace period ends.
        clock.clearTimeout(connection.holdTimer);
        connection.holdTimer = undefined;
      }
    },
    acked(connection) {
      handOver.acked(connection);
    },
    discard(connection) {
      if (connection.downDiscarded) return offline.settled(connection.deviceId);
      connection.downDiscarded = true;
      if (connection.holdTimer !== undefined) clock.clearTimeout(connection.holdTimer);
      connection.holdTimer = undefined;
      for (let i = 0; i < (connection.pendingDown?.length ?? 0); i++) hub.downDropped();
      for (let i = 0; i < (connection.heldDown?.length ?? 0); i++) hub.downDropped();
      connection.pendingDown = undefined;
      connection.heldDown = undefined;
      const settled = handOver.settle(connection);
      return connection.closeReason === "removed" ? offline.clearSession(connection.deviceId) : settled;
    },
  };
  return sender;
}

/**
 * The transport object given to `host.open` for one connection. A class rather than an object of three closures:
 * the methods live once on the prototype, and an idle session keeps one small object.
 */
export class MqttConnectionTransport implements ConnectionTransport {
  constructor(
    private readonly connection: DeviceConnection,
    private readonly sender: DownSender,
    private readonly closeFromServer: (connection: DeviceConnection, reason: string, as?: RuntimeCloseReason) => void,
    private readonly logger: BrokerLogger,
  ) {}

  send(message: DownMessage, options: { qos: 0 | 1 }): void {
    // The agent refused something of the device's (a stale state patch, a reasoning request without an engine).
    if (message.channel === "error") logErrorFrame(this.logger, this.connection.deviceId, message.frame);
    this.sender.send(this.connection, message, options.qos);
  }

  sendProtocol(message: ProtocolMessage): void {
    this.sender.send(this.connection, protocolToDown(message), 0);
  }

  close(reason: string, as?: RuntimeCloseReason): void {
    this.closeFromServer(this.connection, reason, as);
  }

  /** The codec the session's down frames are encoded in now (a hello may change it after the session opened). */
  get codec(): CodecName {
    return this.connection.codec;
  }

  setFrameLimit(maxFrame: number | null): void {
    this.connection.maxFrame = maxFrame;
  }
}

/**
 * The answer to send in place of an rpc result that the device's codec cannot carry (a value nested deeper than the
 * codec allows, a number it has no form for): the same id, ok false and the reason. Undefined for any other frame.
 */
function unencodableRpcAnswer(message: DownMessage, err: unknown): DownMessage | undefined {
  if (message.channel !== "rpc" || message.frame.ok !== true) return undefined;
  const reason = err instanceof Error ? err.message : String(err);
  return {
    channel: "rpc",
    frame: { id: message.frame.id, ok: false, err: cutText(`result does not encode: ${reason}`, 200) },
  };
}
