/**
 * A device's offline queue in aedes' store: the QoS 1 down frames aedes writes to the device at the start of its next
 * persistent session (`clean: false`), right after the CONNACK and before anything else. aedes puts there each QoS 1
 * frame it is handed, until the device acknowledges it. The broker adds the QoS 1 frames a persistent session still
 * had waiting in its own queue (down-hand-over.ts: behind one aedes was storing, or for room in the window of
 * unacknowledged ones) when it ended: the agent was told they were sent, and [MQTT-4.4.0-1] promises them to the
 * session, after those in front, which aedes resends by itself.
 *
 * Writes of one device, and the clear of its whole session when it is removed, run one after another, and `settled`
 * lets a new session of the device wait for them before its CONNACK (aedes reads the queue and the stored
 * subscriptions once, then): frames added later would wait for yet another session.
 *
 * It also notes which devices keep a persistent session there (kept-sessions.ts), as their sessions open and as it
 * clears them, and numbers a resuming session's new frames past those it resends (session-packet-ids.ts).
 */
import type { Clock } from "./clock.ts";
import type { DeviceConnection, EncodedDown } from "./connection.ts";
import { BrokerErrorCode } from "./errors.ts";
import { KeptSessions } from "./kept-sessions.ts";
import type { ObserverHub } from "./observer.ts";
import type { BrokerLogger } from "./options.ts";
import { clearPersistentSession, type SessionStore } from "./persistent-session.ts";
import { type EarlierConnection, idsOfUnwrittenFrames, numberPastResent } from "./session-packet-ids.ts";
import { ThrottledWarningPerKey } from "./throttled-warning-per-key.ts";

/** A QoS 1 PUBLISH as aedes stores it (aedes-packet): `brokerId` and `brokerCounter` tell it apart in the queue. */
export interface StoredPublish {
  cmd: "publish";
  topic: string;
  payload: Buffer;
  qos: 1;
  retain: false;
  dup: false;
  brokerId: string;
  brokerCounter: number;
}

/** The calls of aedes' persistence on a client's outgoing queue (aedes-persistence). */
export interface OutgoingStore {
  outgoingEnqueue(sub: { clientId: string }, packet: StoredPublish): Promise<void>;
  outgoingStream(client: { id: string }): AsyncIterable<{ messageId?: number }>;
  /** Removes the first queued packet with this `messageId` (undefined for one never written). */
  outgoingClearMessageId(client: { id: string }, packet: { messageId?: number }): Promise<unknown>;
}

/** Stamps a packet as aedes' own Packet does: the broker's id and the next value of its counter. */
export type PacketStamp = () => { brokerId: string; brokerCounter: number };

/**
 * Frames a device's offline queue may hold (aedes' own included) when the broker adds to it, and frames a session may
 * have waiting in the broker's own queue past a full window (down-hand-over.ts); the rest are refused: dropped and
 * counted. aedes' store is in memory, and a device may never come back, or never acknowledge.
 */
export const MAX_QUEUED_DOWN_PER_DEVICE = 256;

export const QUEUE_FULL_LINE = "device's offline queue is full; down frames dropped";

export class OfflineDownQueue {
  /** The latest write or clear of each device still running. */
  readonly #chains = new Map<string, Promise<void>>();
  readonly #full: ThrottledWarningPerKey;
  /** The devices whose persistent session aedes' store may hold. */
  readonly kept = new KeptSessions();

  constructor(
    private readonly store: () => SessionStore,
    private readonly stamp: PacketStamp,
    private readonly hub: ObserverHub,
    private readonly logger: BrokerLogger,
    clock: Clock,
  ) {
    // A device that reconnects in a loop with frames behind must not write a line per session.
    this.#full = new ThrottledWarningPerKey(logger, clock, QUEUE_FULL_LINE, { keysAre: "devices" });
  }

  /** Appends `frames` (QoS 1, in the order the agent sent them) to the device's queue, up to the bound. */
  keep(deviceId: string, frames: EncodedDown[]): Promise<void> {
    return this.#after(deviceId, () => this.#keep(deviceId, frames));
  }

  /**
   * Drops the device's whole persistent session from aedes' store, its queue included (persistent-session.ts): nothing
   * of a removed device may reach whoever takes its id later.
   */
  clearSession(deviceId: string): Promise<void> {
    this.kept.forget(deviceId);
    return this.#after(deviceId, () => clearPersistentSession(this.store(), deviceId));
  }

  /** A session of the device opened (its open committed): noted, or forgotten, as a kept one (kept-sessions.ts). */
  opened(connection: Pick<DeviceConnection, "deviceId" | "clean" | "recordId">): void {
    this.kept.opened(connection);
  }

  /** Resolves once every write and clear of the device started so far is done. */
  settled(deviceId: string): Promise<void> {
    return this.#chains.get(deviceId) ?? Promise.resolve();
  }

  /**
   * A persistent session of the device is about to open: resolves with how many frames the device's queue holds once
   * its writes started so far are done (aedes resends each of them right after the CONNACK; 0 when the store cannot
   * be read). First it drops a session aedes holds for another record of the id (removed and added again, or just
   * removed, by another process before the registry watch looked), so the device resumes nothing of the removed one:
   * before the count, and before the agent's open, which may send frames of its own into the queue. Then the session's
   * new frames are numbered past the packet ids of those it resends, and past those `earlier` connections of the
   * device (a takeover's) may still give frames of the queue (session-packet-ids.ts). Never rejects.
   */
  async queuedAtOpen(
    connection: Pick<DeviceConnection, "deviceId" | "recordId" | "client">,
    earlier: readonly EarlierConnection[] = [],
  ): Promise<number> {
    const { deviceId } = connection;
    // Before the store is read: what aedes numbers meanwhile is in the range this takes.
    const unwritten = idsOfUnwrittenFrames(earlier);
    if (this.kept.heldForOtherRecord(deviceId, connection.recordId)) await this.clearSession(deviceId);
    await this.settled(deviceId);
    let queued: QueuedIds = { count: 0, ids: [] };
    try {
      queued = await readQueued(this.store(), deviceId);
    } catch (err) {
      this.logger.error({ err, device: deviceId }, "device's offline queue could not be read");
    }
    numberPastResent(connection.client, [...queued.ids, ...unwritten]);
    return queued.count;
  }

  #after(deviceId: string, step: () => Promise<void>): Promise<void> {
    const next = this.settled(deviceId)
      .then(step)
      .catch((err: unknown) => {
        this.logger.error({ err, device: deviceId }, "device's offline queue could not be written");
      });
    this.#chains.set(deviceId, next);
    void next.then(() => {
      if (this.#chains.get(deviceId) === next) this.#chains.delete(deviceId);
    });
    return next;
  }

  async #keep(deviceId: string, frames: EncodedDown[]): Promise<void> {
    let kept = 0;
    // -1 until the queue was read: a store that fails before that refuses nothing for the bound.
    let room = -1;
    try {
      const store = this.store();
      const queued = (await readQueued(store, deviceId)).count;
      room = Math.min(frames.length, Math.max(0, MAX_QUEUED_DOWN_PER_DEVICE - queued));
      for (; kept < room; kept++) {
        const frame = frames[kept];
        // One at a time, in order: the queue is written in the order the frames were sent.
        await store.outgoingEnqueue(
          { clientId: deviceId },
          {
            cmd: "publish",
            topic: frame.topic,
            payload: frame.payload,
            qos: 1,
            retain: false,
            dup: false,
            ...this.stamp(),
          },
        );
        // Handed to aedes, as a frame given to `client.publish` is.
        this.hub.messageOut(frame.channel, frame.codec);
        frame.written?.();
      }
    } finally {
      // Past the bound, not for a failed write: the frames are refused as an online session's full queue refuses them.
      const refused = kept === room;
      for (let i = kept; i < frames.length; i++) {
        this.hub.downDropped();
        if (refused) this.hub.limitBreach(BrokerErrorCode.downQueueFull);
        frames[i].written?.();
      }
      if (refused && kept < frames.length) {
        this.#full.note(deviceId, { device: deviceId, dropped: frames.length - kept, max: MAX_QUEUED_DOWN_PER_DEVICE });
      }
    }
  }
}

/** How many frames the device's queue in aedes' store holds, and the packet ids of those aedes numbered already. */
interface QueuedIds {
  count: number;
  ids: number[];
}

async function readQueued(store: OutgoingStore, deviceId: string): Promise<QueuedIds> {
  const queued: QueuedIds = { count: 0, ids: [] };
  for await (const packet of store.outgoingStream({ id: deviceId })) {
    queued.count++;
    if (packet.messageId !== undefined) queued.ids.push(packet.messageId);
  }
  return queued;
}
