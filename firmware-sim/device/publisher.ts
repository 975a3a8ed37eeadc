/**
 * The up path of one device: buffer or send, the in-flight window, deliberate QoS 1 duplicates, PUBACK booking and
 * latency, replay after a reconnect. The device decides what to send; this decides when.
 */
import type { RandomSource } from "../clock.ts";
import type { LeanConnection } from "../mqtt/lean-connection.ts";
import type { FleetMetrics } from "../stats.ts";
import type { DeviceBehaviour } from "./device-env.ts";
import { type Outgoing, Outbox } from "./outbox.ts";

export class Publisher {
  readonly #outbox: Outbox;
  #connection: LeanConnection | undefined;
  /** Buffered messages flow only once the connection is fully up (after the hello's PUBACK). */
  #flowing = false;

  constructor(
    private readonly behaviour: DeviceBehaviour,
    private readonly metrics: FleetMetrics,
    private readonly random: RandomSource,
    private readonly nowMs: () => number,
    /** A message fell out of the full offline buffer. */
    private readonly onLost: (message: Outgoing) => void,
  ) {
    this.#outbox = new Outbox(behaviour.offlineBufferSize);
  }

  /** Messages queued or in flight. */
  get pending(): number {
    return this.#outbox.inflight + this.#outbox.queued;
  }

  /** A connection was accepted: messages may be sent on it with `sendFirst`, the buffer waits for `open`. */
  attach(connection: LeanConnection): void {
    this.#connection = connection;
  }

  /** The device is online: replay the buffer. */
  open(): void {
    this.#flowing = true;
    this.flush();
  }

  /** The connection ended: unacknowledged messages go back in front of the buffer for a DUP retransmission. */
  detach(): void {
    this.#connection = undefined;
    this.#flowing = false;
    for (const dropped of this.#outbox.onDisconnect()) this.#lose(dropped);
  }

  /** Sends now if the window allows, else buffers (dropping the oldest when full). */
  queue(message: Outgoing): void {
    if (!this.#flowing) this.metrics.counters.buffered++;
    for (const dropped of this.#outbox.enqueue(message)) this.#lose(dropped);
    this.flush();
  }

  /** Sends ahead of the buffer (the hello, which must open every connection). */
  sendFirst(message: Outgoing): void {
    if (this.#connection) this.#transmit(this.#outbox.track(message, 1), message);
  }

  /** The oldest message in flight that `match` accepts (Outbox.oldestInflight). */
  oldestInflight(match: (message: Outgoing) => boolean): Outgoing | undefined {
    return this.#outbox.oldestInflight(match);
  }

  flush(): void {
    if (!this.#flowing || !this.#connection) return;
    const max = this.behaviour.maxInflight;
    for (let next = this.#outbox.next(max); next; next = this.#outbox.next(max)) {
      this.#transmit(next.messageId, next.message);
    }
  }

  /** Books a PUBACK; returns the message it completed (undefined for a duplicate's second PUBACK). */
  onPuback(messageId: number): Outgoing | undefined {
    const message = this.#outbox.onPuback(messageId);
    if (!message) return undefined;
    this.metrics.counters.acked++;
    this.metrics.pubackLatency.record(this.nowMs() - message.sentMs);
    // A slot in the in-flight window opened: send what waits behind it.
    this.flush();
    return message;
  }

  #transmit(messageId: number, message: Outgoing): void {
    const connection = this.#connection!;
    const c = this.metrics.counters;
    if (message.dup) c.retransmitted++;
    else c.published++;
    message.sentMs = this.nowMs();
    connection.publish(message.topic, message.payload, 1, messageId, message.dup);
    message.dup = true;
    if (this.behaviour.duplicateRatio > 0 && this.random() < this.behaviour.duplicateRatio) {
      c.duplicatesSent++;
      this.#outbox.owesExtra(messageId);
      connection.publish(message.topic, message.payload, 1, messageId, true);
    }
  }

  #lose(message: Outgoing): void {
    this.metrics.counters.bufferDropped++;
    this.onLost(message);
  }
}
