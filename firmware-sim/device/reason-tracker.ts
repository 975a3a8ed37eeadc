/**
 * The one reasoning request a device has open, and the checks on its streamed answer: chunks in increasing `seq`,
 * nothing after the final frame, and no partial chunks at all for a device that cannot take streams.
 */
import type { ReasonStreamFrame } from "../../codecs/frames.ts";

interface OpenRequest {
  id: string;
  streams: boolean;
  sentMs: number;
  lastSeq: number;
  firstChunkMs: number | undefined;
}

/** What a `down/reason` frame meant. */
export type ChunkOutcome =
  | { status: "chunk"; firstChunk: boolean }
  | { status: "finished"; totalMs: number; firstChunkMs: number }
  /** A QoS 1 redelivery (DUP) of something already seen: harmless. */
  | { status: "duplicate" }
  | { status: "violation"; kind: "reason-out-of-order" | "stream-to-non-streaming-device"; message: string };

export class ReasonTracker {
  #open: OpenRequest | undefined;
  /**
   * Requests ended recently, to tell a late frame from a stray one: the `seq` of the final frame of one answered in
   * full, or undefined for one the device gave up on (timed out, or ended by an error frame), whose frames may still
   * come (an engine error is an error frame, then a final frame).
   */
  readonly #ended = new Map<string, number | undefined>();

  /**
   * `brokerSetsDup`: the broker sets DUP on every PUBLISH it delivers again ([MQTT-3.3.1-1]; the bridge and mosquitto
   * do), false for one that resends without it (plain aedes), whose resend of a final frame looks like a new one.
   */
  constructor(private readonly brokerSetsDup = true) {}

  get openId(): string | undefined {
    return this.#open?.id;
  }

  get openSinceMs(): number | undefined {
    return this.#open?.sentMs;
  }

  start(id: string, streams: boolean, nowMs: number): void {
    this.#open = { id, streams, sentMs: nowMs, lastSeq: -1, firstChunkMs: undefined };
  }

  /** Gives up on the open request (timeout or error frame). */
  abandon(): void {
    if (this.#open) this.#remember(this.#open.id, undefined);
    this.#open = undefined;
  }

  onFrame(frame: ReasonStreamFrame, dup: boolean, nowMs: number): ChunkOutcome {
    const open = this.#open;
    if (!open || open.id !== frame.id) {
      if (dup) return { status: "duplicate" };
      if (this.#ended.has(frame.id)) return this.#afterEnd(frame);
      return {
        status: "violation",
        kind: "reason-out-of-order",
        message: `reason frame for unknown request ${frame.id}`,
      };
    }
    if (frame.seq <= open.lastSeq) {
      if (dup) return { status: "duplicate" };
      return {
        status: "violation",
        kind: "reason-out-of-order",
        message: `request ${frame.id}: seq ${frame.seq} after seq ${open.lastSeq}`,
      };
    }
    open.lastSeq = frame.seq;
    const firstChunk = open.firstChunkMs === undefined;
    if (firstChunk) open.firstChunkMs = nowMs;
    if (frame.fin) {
      this.#open = undefined;
      this.#remember(open.id, frame.seq);
      return {
        status: "finished",
        totalMs: nowMs - open.sentMs,
        firstChunkMs: (open.firstChunkMs ?? nowMs) - open.sentMs,
      };
    }
    if (!open.streams) {
      return {
        status: "violation",
        kind: "stream-to-non-streaming-device",
        message: `request ${frame.id}: partial chunk seq ${frame.seq} to a device that asked for stream:false`,
      };
    }
    return { status: "chunk", firstChunk };
  }

  /**
   * A frame without DUP for a request that ended. A request the device gave up on may still get its frames. Anything
   * else after a final frame is a frame the bridge should never have sent, since its final frame is always last: the
   * final frame again is a new PUBLISH of it, unless the broker resends without DUP (plain aedes resends a persistent
   * session's unacknowledged QoS 1 message so), as the command check tells a resend.
   */
  #afterEnd(frame: ReasonStreamFrame): ChunkOutcome {
    const finalSeq = this.#ended.get(frame.id);
    if (finalSeq === undefined) return { status: "duplicate" };
    const sameFinal = frame.fin === true && frame.seq === finalSeq;
    if (sameFinal && !this.brokerSetsDup) return { status: "duplicate" };
    const what = sameFinal
      ? `its final frame (seq ${finalSeq}) again without DUP, a new PUBLISH, not the broker's resend`
      : `${frame.fin ? "final frame" : "chunk"} seq ${frame.seq} after its final frame (seq ${finalSeq})`;
    return { status: "violation", kind: "reason-out-of-order", message: `request ${frame.id}: ${what}` };
  }

  #remember(id: string, finalSeq: number | undefined): void {
    this.#ended.delete(id);
    this.#ended.set(id, finalSeq);
    if (this.#ended.size > 16) this.#ended.delete(this.#ended.keys().next().value as string);
  }
}
