/**
 * The packet ids of a persistent session's down frames ([MQTT-2.3.1-2]: a new PUBLISH takes an id that no PUBLISH of
 * the session still waiting for its PUBACK has).
 *
 * aedes numbers each QoS 1 frame it writes from a counter of the connection (`client._nextId`, lib/qos-packet.js) that
 * starts at a random id with each connection (lib/client.js), while it resends a persistent session's stored frames at
 * its next connection with the ids they had (handlers/connect.js `emptyQueue`). A new frame of that connection (one
 * queued while the device was away included) could so take the id of a resent frame still unacknowledged: a device may
 * drop it as a repeat, and its PUBACK clears the first stored frame with that id, the resent one, while the new one
 * stays stored and comes again at the next connection.
 *
 * mosquitto keeps its counter in the session, and so does the broker: every connection of a device's persistent
 * session reads and advances the same counter, so a new frame takes the id after the last one the session used. It
 * also passes over the ids of the frames aedes' store held when the connection opened, which aedes resends with them:
 * once the counter has gone round its 65535 ids, one of them could come up again. A clean session starts afresh
 * (aedes' random start; [MQTT-3.1.2-6]), and so does a device whose session was dropped (removed).
 */

const MAX_PACKET_ID = 65_535;
const NONE: ReadonlySet<number> = new Set();

/** The id after `id`: 65535 is followed by 1, as 0 is no packet id ([MQTT-2.3.1-1]). */
function after(id: number): number {
  return id >= MAX_PACKET_ID ? 1 : id + 1;
}

class SessionCounter {
  /** The ids of the frames stored when the session's latest connection opened: not handed out to new frames. */
  stored: ReadonlySet<number> = NONE;

  constructor(private next: number) {}

  /** The id the next new frame gets: the counter's, past any stored frame's. */
  peek(): number {
    // Bounded: with every id stored (a window of 65535 allows it) there is no free one to find.
    for (let steps = 0; steps < MAX_PACKET_ID && this.stored.has(this.next); steps++) this.next = after(this.next);
    return this.next;
  }

  set(id: number): void {
    this.next = id;
  }
}

/** aedes' counter of `client`, when it has the one this file knows (an aedes that numbers otherwise is left alone). */
function counterOf(client: object): number | undefined {
  const next: unknown = Reflect.get(client, "_nextId");
  return typeof next === "number" && Number.isInteger(next) && next >= 1 && next <= MAX_PACKET_ID ? next : undefined;
}

export class SessionPacketIds {
  /** By device id: one counter per persistent session aedes' store may hold. */
  readonly #counters = new Map<string, SessionCounter>();

  /**
   * A persistent session of the device is about to open on aedes' `client`, with `stored` the packet ids of the frames
   * aedes' store holds for it: the client numbers its new frames from the session's counter. Call before its CONNACK,
   * after which aedes resends those frames and numbers the rest.
   */
  resume(deviceId: string, client: object, stored: Iterable<number>): void {
    const start = counterOf(client);
    if (start === undefined) return;
    let counter = this.#counters.get(deviceId);
    if (counter === undefined) {
      counter = new SessionCounter(start);
      this.#counters.set(deviceId, counter);
    }
    const ids = new Set(stored);
    counter.stored = ids.size === 0 ? NONE : ids;
    const session = counter;
    // aedes reads and increments the field itself (QoSPacket); an own accessor makes that the session's counter.
    Object.defineProperty(client, "_nextId", {
      configurable: true,
      enumerable: true,
      get: () => session.peek(),
      set: (id: number) => session.set(id),
    });
  }

  /** The device's session is gone from aedes' store (a clean session opened, or it was dropped): so is its counter. */
  forget(deviceId: string): void {
    this.#counters.delete(deviceId);
  }
}
