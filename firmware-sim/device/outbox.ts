/**
 * What a device has to send: the bounded offline buffer plus the QoS 1 messages in flight by packet id.
 * Unacknowledged messages go back to the front of the buffer on disconnect and are retransmitted with DUP set on the
 * next connection [MQTT-4.4.0-1], so nothing acknowledged is ever resent and nothing unacknowledged is forgotten
 * unless the buffer overflows.
 */
import type { UpChannel } from "../../codecs/frames.ts";
import { OfflineBuffer } from "../offline-buffer.ts";

/** Why a message exists, so its PUBACK (or its loss) can be booked. */
export type OutgoingKind = "hello" | "telemetry" | "state" | "ack" | "reason";

/** One encoded up message. */
export interface Outgoing {
  channel: UpChannel;
  topic: string;
  payload: Uint8Array;
  kind: OutgoingKind;
  /** Telemetry: its seq; ack: the command id; reason: the request id. */
  ref: number | string | undefined;
  /** Set once it has been transmitted and may have reached the broker. */
  dup: boolean;
  /** When it was last transmitted (fleet clock). */
  sentMs: number;
}

interface InFlight {
  message: Outgoing | undefined;
  /** PUBACKs still expected for this packet id (2 after a deliberate duplicate). */
  owed: number;
}

export class Outbox {
  readonly #buffer: OfflineBuffer<Outgoing>;
  readonly #inflight = new Map<number, InFlight>();
  #nextId = 1;
  #inflightMessages = 0;

  constructor(capacity: number) {
    this.#buffer = new OfflineBuffer(capacity);
  }

  /** Messages waiting (offline or beyond the in-flight window). */
  get queued(): number {
    return this.#buffer.size;
  }

  /** Messages sent and not yet acknowledged. */
  get inflight(): number {
    return this.#inflightMessages;
  }

  /** Buffers `message`; returns whatever fell out of the full buffer. */
  enqueue(message: Outgoing): Outgoing[] {
    const result = this.#buffer.push(message);
    return result.status === "stored" ? [] : result.dropped;
  }

  /** Takes the next buffered message and gives it a free packet id, when under `maxInflight`. */
  next(maxInflight: number): { messageId: number; message: Outgoing } | undefined {
    if (this.#inflightMessages >= maxInflight || this.#buffer.size === 0) return undefined;
    const message = this.#buffer.shift()!;
    return { messageId: this.track(message, 1), message };
  }

  /** Registers `message` as in flight under a fresh packet id. */
  track(message: Outgoing, owed: number): number {
    // [MQTT-2.3.1-2]: a packet id is reused only once its flow has completed, duplicates' extra PUBACK included.
    let id = this.#nextId;
    while (this.#inflight.has(id)) id = id === 65535 ? 1 : id + 1;
    this.#nextId = id === 65535 ? 1 : id + 1;
    this.#inflight.set(id, { message, owed });
    this.#inflightMessages++;
    return id;
  }

  /**
   * The message sent longest ago, not yet acknowledged, that `match` accepts. Packet ids are added to the map as they
   * are sent and removed on their PUBACK, so its order is the order of sending.
   */
  oldestInflight(match: (message: Outgoing) => boolean): Outgoing | undefined {
    for (const entry of this.#inflight.values()) if (entry.message && match(entry.message)) return entry.message;
    return undefined;
  }

  /** A duplicate of packet `messageId` was sent: one more PUBACK will come for it. */
  owesExtra(messageId: number): void {
    const entry = this.#inflight.get(messageId);
    if (entry) entry.owed++;
  }

  /** Books a PUBACK; returns the message it completes (undefined for a duplicate's second PUBACK). */
  onPuback(messageId: number): Outgoing | undefined {
    const entry = this.#inflight.get(messageId);
    if (!entry) return undefined;
    entry.owed--;
    const message = entry.message;
    if (message) {
      entry.message = undefined;
      this.#inflightMessages--;
    }
    if (entry.owed <= 0) this.#inflight.delete(messageId);
    return message;
  }

  /**
   * The connection ended: unacknowledged messages go back in front of the buffer, marked DUP, except hellos (a new
   * connection sends a fresh one). Returns what overflowed.
   */
  onDisconnect(): Outgoing[] {
    const unacked: Outgoing[] = [];
    for (const entry of this.#inflight.values()) {
      if (entry.message && entry.message.kind !== "hello") unacked.push(entry.message);
    }
    this.#inflight.clear();
    this.#inflightMessages = 0;
    this.#nextId = 1;
    return this.#buffer.pushFront(unacked);
  }
}
