/**
 * Commands a device has seen, by id. Firmware must execute a command once even when the bridge or the broker
 * redelivers it (QoS 1 is at-least-once), and answer a redelivery with the same ack it gave the first time.
 * An ack can fall out of the full offline buffer like any message; a command whose every ack did is not owed an ack
 * any more (the bridge redelivers it on the device's next session, and the device answers it again).
 */
import type { AckFrame } from "../../codecs/frames.ts";

interface CommandRecord {
  ack: AckFrame;
  deliveries: number;
  /** An ack of it got a PUBACK. */
  confirmed: boolean;
  /** Acks of it queued and not dropped from the full offline buffer: sent, in flight or waiting to be. */
  acksOwed: number;
}

/** Outcome of receiving a command. */
export type CommandReceipt =
  | { status: "new" }
  /** `afterConfirmedAck`: the device's ack of it had already been acknowledged (stored) by the bridge. */
  | { status: "duplicate"; ack: AckFrame; afterConfirmedAck: boolean };

export class CommandBook {
  readonly #records = new Map<string, CommandRecord>();

  /** A command arrived. A duplicate is answered with its ack again, so that ack is owed from now on. */
  receive(id: string): CommandReceipt {
    const record = this.#records.get(id);
    if (!record) return { status: "new" };
    record.deliveries++;
    record.acksOwed++;
    return { status: "duplicate", ack: record.ack, afterConfirmedAck: record.confirmed };
  }

  /** Remembers the ack of a newly executed command. */
  executed(ack: AckFrame): void {
    this.#records.set(ack.id, { ack, deliveries: 1, confirmed: false, acksOwed: 1 });
  }

  /** An ack of command `id` fell out of the full offline buffer: it will never be sent. */
  ackDropped(id: string): void {
    const record = this.#records.get(id);
    if (record) record.acksOwed--;
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

  /**
   * Ids of commands whose ack never got a PUBACK although one is still owed. Those whose every ack was dropped from
   * the full buffer are left out: the device dropped them by design, as it drops telemetry.
   */
  unconfirmed(): string[] {
    return [...this.#records].filter(([, r]) => !r.confirmed && r.acksOwed > 0).map(([id]) => id);
  }
}
