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
 * Only stored frames can collide, so only a connection that resends some is renumbered: before its CONNACK, its
 * counter moves to the id right after the end of the run the stored ids form (65535 followed by 1; the run ends at the
 * largest gap between two of them). Its new frames then take ids free of them until the counter comes round to the
 * run: all 65535 but the run's span, the ids numbered since the oldest frame still unacknowledged. A takeover's
 * earlier connection may still number frames aedes had of it: their ids are passed over too (`idsOfUnwrittenFrames`).
 * With none of either, aedes' random start stays. The counter is written as the plain field aedes declares, and
 * nothing is kept between connections: an own accessor on each client made every persistent one a dictionary-mode
 * object (about 1.4 KB more per connected device, and slower on aedes' paths).
 */

export const MAX_PACKET_ID = 65_535;

/** `id` moved `steps` ids on (back for a negative `steps`): 65535 is followed by 1, as 0 is no packet id. */
function ahead(id: number, steps: number): number {
  return ((((id - 1 + steps) % MAX_PACKET_ID) + MAX_PACKET_ID) % MAX_PACKET_ID) + 1;
}

/**
 * The id right after the end of the cyclic run `ids` form: the largest gap between two of them (65535 followed by 1)
 * is where the run ends and starts again. Undefined for no ids.
 */
export function afterRun(ids: readonly number[]): number | undefined {
  if (ids.length === 0) return undefined;
  const sorted = [...new Set(ids)].sort((a, b) => a - b);
  const last = sorted.length - 1;
  // The gap from the largest id round to the smallest first: a run that does not wrap ends at the largest id.
  let end = sorted[last];
  let widest = sorted[0] + MAX_PACKET_ID - sorted[last];
  for (let i = 0; i < last; i++) {
    const gap = sorted[i + 1] - sorted[i];
    if (gap > widest) {
      widest = gap;
      end = sorted[i];
    }
  }
  return ahead(end, 1);
}

/** An earlier connection of the device, still listed while this one opens (a takeover). */
export interface EarlierConnection {
  readonly client: object;
  readonly clean: boolean;
  /** Frames handed to aedes (`client.publish`) and not yet written: each may still be numbered (and stored). */
  readonly downInAedes: number;
}

/** aedes' counter of `client`, when it has the one this file knows (an aedes that numbers otherwise is left alone). */
function counterOf(client: object): number | undefined {
  if (!Object.hasOwn(client, "_nextId")) return undefined;
  const next: unknown = Reflect.get(client, "_nextId");
  return typeof next === "number" && Number.isInteger(next) && next >= 1 && next <= MAX_PACKET_ID ? next : undefined;
}

/**
 * The ids the frames of a takeover's `earlier` connections that aedes has not written yet may have or get, as far as
 * they can reach aedes' store: call before reading it. A takeover closes those connections to new frames first, but
 * aedes numbers a frame it already had just before writing it (after storing it), from the connection's counter, and
 * then records the id in the store: each such frame may have taken one of the counter's latest ids (the store not yet
 * updated) or take one of its next ones. Only a persistent connection's frames are stored.
 */
export function idsOfUnwrittenFrames(earlier: Iterable<EarlierConnection>): number[] {
  const ids: number[] = [];
  for (const connection of earlier) {
    const next = counterOf(connection.client);
    const unwritten = Math.min(connection.downInAedes, MAX_PACKET_ID);
    if (connection.clean || unwritten <= 0 || next === undefined) continue;
    // Its two ends stand for the range: twice the frames aedes holds is far from half the ids, so the largest gap
    // between the ids taken never lies inside it.
    ids.push(ahead(next, -unwritten), ahead(next, unwritten - 1));
  }
  return ids;
}

/**
 * A persistent session is about to open on aedes' `client`, and `taken` are the packet ids its new frames must not
 * take: those of the frames aedes' store holds for it, which aedes resends with them right after the CONNACK, and
 * `idsOfUnwrittenFrames` of a takeover. The client's counter moves to the id after their run; it stays aedes' own when
 * there are none. Call before the CONNACK.
 */
export function numberPastResent(client: object, taken: readonly number[]): void {
  if (counterOf(client) === undefined) return;
  const start = afterRun(taken);
  // A plain write of the data field aedes' constructor made: the client keeps its shape (and fast properties).
  if (start !== undefined) Reflect.set(client, "_nextId", start);
}
