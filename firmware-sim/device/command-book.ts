/**
 * Commands a device has seen, by id. Firmware must execute a command once even when the bridge or the broker
 * redelivers it (QoS 1 is at-least-once), and answer a redelivery with the same ack it gave the first time.
 */
import type { AckFrame } from "../../codecs/frames.ts";

interface CommandRecord {
  ack: AckFrame;
  deliveries: number;
  /** An ack of it got a PUBACK. */
  confirmed: boolean;
}

/** Outcome of receiving a command. */
export type CommandReceipt =
  | { status: "new" }
  /** `afterConfirmedAck`: the device's ack of it had already been acknowledged (stored) by the bridge. */
  | { status: "duplicate"; ack: AckFrame; afterConfirmedAck: boolean };

export class CommandBook {
  readonly #records = new Map<string, CommandRecord>();

  receive(id: string): CommandReceipt {
    const record = this.#records.get(id);
    if (!record) return { status: "new" };
    record.deliveries++;
    return { status: "duplicate", ack: record.ack, afterConfirmedAck: record.confirmed };
  }

  /** Remembers the ack of a newly executed command. */
  executed(ack: AckFrame): void {
    this.#records.set(ack.id, { ack, deliveries: 1, confirmed: false });
  }

  confirm(id: string): void {
    const record = this.#records.get(id);
    if (record) record.confirmed = true;
  }

  get size(): number {
    return this.#records.size;
  }

  /** Commands whose ack got a PUBACK, with the ack's outcome. */
  confirmed(): { id: string; ok: boolean }[] {
    return [...this.#records].filter(([, r]) => r.confirmed).map(([id, r]) => ({ id, ok: r.ack.ok }));
  }

  /** Ids of commands whose ack never got a PUBACK. */
  unconfirmed(): string[] {
    return [...this.#records].filter(([, r]) => !r.confirmed).map(([id]) => id);
  }
}
