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
  /** Ids finished recently, to tell a late redelivery from a stray frame. */
  readonly #finished: string[] = [];

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
    if (this.#open) this.#remember(this.#open.id);
    this.#open = undefined;
  }

  onFrame(frame: ReasonStreamFrame, dup: boolean, nowMs: number): ChunkOutcome {
    const open = this.#open;
    if (!open || open.id !== frame.id) {
      if (dup || this.#finished.includes(frame.id)) return { status: "duplicate" };
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
      this.#remember(open.id);
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

  #remember(id: string): void {
    this.#finished.push(id);
    if (this.#finished.length > 16) this.#finished.shift();
  }
}
