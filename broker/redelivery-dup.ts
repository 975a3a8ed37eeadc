/**
 * The DUP flag on the PUBLISH frames a persistent session's next connection gets again ([MQTT-3.3.1-1]: the server
 * sets DUP when it attempts to re-deliver a PUBLISH; DUP 0 says it is the first attempt).
 *
 * aedes resends a persistent session's queue right after the CONNACK (handlers/connect.js `emptyQueue`) as it stored
 * it: DUP 0, also on a frame it had written before. Its store tells the two apart: aedes numbers a frame (its packet
 * id) when it writes it, and records that number in the store before the write (`outgoingUpdate`, in `deliverQoS` and
 * in `emptyQueue`). A stored PUBLISH with a packet id was therefore written, or at least attempted, once; one without
 * was never written (queued while the device was offline, or by the broker's own offline queue), and its first
 * delivery keeps DUP 0. A PUBREL stored in place of its PUBLISH carries no DUP flag and is left as it is.
 *
 * The queue is read through the store's `outgoingStream`, so that is where the flag is set: on a copy, read by read,
 * leaving the stored frame as it was (the next reconnect decides again from its packet id).
 */
import { Readable } from "node:stream";

/** A frame of a client's outgoing queue as aedes' store yields it (aedes-packet), the fields read here. */
export interface QueuedFrame {
  cmd?: string;
  qos?: number;
  messageId?: number;
  dup?: boolean;
}

/** The store call aedes reads a client's queue with (aedes-persistence). */
export interface QueueReader {
  outgoingStream(client: { id: string }): AsyncIterable<QueuedFrame>;
}

/** True for a queued PUBLISH that aedes has written, or tried to write, to the client before. */
export function isRedelivery(frame: QueuedFrame): boolean {
  return frame.cmd === "publish" && (frame.qos ?? 0) > 0 && frame.messageId !== undefined;
}

async function* markedRedeliveries(frames: AsyncIterable<QueuedFrame>): AsyncGenerator<QueuedFrame> {
  for await (const frame of frames) yield isRedelivery(frame) && frame.dup !== true ? { ...frame, dup: true } : frame;
}

/**
 * Makes `store` yield each queued PUBLISH it has written before with DUP set. Call once, before any client connects.
 * The result stays a stream, as aedes pipes it (`pipeline`).
 */
export function markRedeliveries(store: QueueReader): void {
  const read = store.outgoingStream.bind(store);
  store.outgoingStream = (client) => Readable.from(markedRedeliveries(read(client)));
}
