/**
 * Commands a device has seen, by id. Firmware must execute a command once even when the bridge or the broker
 * redelivers it (QoS 1 is at-least-once), and answer a redelivery with the same ack it gave the first time.
 * An ack can fall out of the full offline buffer like any message; a command whose every ack did is not owed an ack
 * any more (the bridge redelivers it on the device's next session, or once its ack timeout elapses, and the device
 * answers it again).
 *
 * The book is bounded, so that a long run does not grow it for good. A command still owed an ack is always kept (the
 * end-of-run check needs it): each such ack is a message in the device's outbox, so there are never more of them than
 * the outbox holds (`offlineBufferSize` + `maxInflight`). A command whose every ack fell out of the full buffer is
 * kept only to answer a redelivery from its record: the latest `MAX_DROPPED_ACK_COMMANDS` of those are kept, the
 * oldest forgotten first and counted by the caller (a redelivery of one is then run again as new). The bridge
 * redelivers only the commands it sent and has not finished, at most `commandMaxInFlight` (16) per device, far fewer
 * than that. Of the confirmed ones, the latest `MAX_CONFIRMED_COMMANDS` are kept, the oldest forgotten first: as many
 * as the bridge keeps finished commands per device (`commandHistoryMax`'s default). So the book still holds every
 * command the bridge holds, the only ones it could (wrongly) deliver again or answer the read-back of: an older one is
 * pruned there, and its read-back would find it missing.
 */
import type { AckFrame } from "../../codecs/frames.ts";

/** Confirmed commands kept per device id (the bridge's default `commandHistoryMax`). */
export const MAX_CONFIRMED_COMMANDS = 1000;
/** Unconfirmed commands owed no ack (every ack dropped from the full offline buffer) kept per device id. */
export const MAX_DROPPED_ACK_COMMANDS = 1000;

/** The MQTT facts of the PUBLISH that carried a down frame. */
export interface Delivery {
  /** Its DUP flag: the broker delivers it again. */
  dup: boolean;
  /** Its packet id (undefined at QoS 0). */
  packetId: number | undefined;
}

/** A command handed over outside MQTT (a test): a first delivery, DUP 0, no packet id. */
const FIRST_DELIVERY: Delivery = { dup: false, packetId: undefined };

interface CommandRecord {
  ack: AckFrame;
  /** An ack of it got a PUBACK. */
  confirmed: boolean;
  /** Acks of it queued and not dropped from the full offline buffer: sent, in flight or waiting to be. */
  acksOwed: number;
  /** The MQTT packet id of its latest delivery (undefined at QoS 0). */
  packetId: number | undefined;
}

/** Outcome of receiving a command. */
export type CommandReceipt =
  | { status: "new" }
  /**
   * `afterConfirmedAck`: the device's ack of it had already been acknowledged (stored) by the bridge.
   * `brokerResend`: it is the broker's resend of the PUBLISH that brought it before, not a new PUBLISH of it.
   */
  | { status: "duplicate"; ack: AckFrame; afterConfirmedAck: boolean; brokerResend: boolean };

export class CommandBook {
  readonly #records = new Map<string, CommandRecord>();
  /** Ids of the confirmed records, oldest confirmation first. */
  readonly #confirmedIds = new Set<string>();
  /** Ids of the unconfirmed records owed no ack, the one whose last ack was dropped longest ago first. */
  readonly #droppedAckIds = new Set<string>();

  /**
   * `brokerSetsDup`: the broker sets DUP on every PUBLISH it delivers again ([MQTT-3.3.1-1]; the bridge and mosquitto
   * do), false for one that resends without it (plain aedes).
   */
  constructor(private readonly brokerSetsDup = true) {}

  /**
   * A command arrived, in `delivery`. A duplicate is answered with its ack again, so that ack is owed from now on.
   */
  receive(id: string, delivery = FIRST_DELIVERY): CommandReceipt {
    const record = this.#records.get(id);
    if (!record) return { status: "new" };
    const brokerResend = this.#isBrokerResend(delivery, record.packetId);
    record.packetId = delivery.packetId;
    record.acksOwed++;
    this.#droppedAckIds.delete(id);
    return { status: "duplicate", ack: record.ack, afterConfirmedAck: record.confirmed, brokerResend };
  }

  /** Remembers the ack of a newly executed command, which came in a PUBLISH with `packetId`. */
  executed(ack: AckFrame, packetId?: number): void {
    this.#records.set(ack.id, { ack, confirmed: false, acksOwed: 1, packetId });
  }

  /**
   * True when a repeated command is the broker's resend of the PUBLISH that brought it before (`previousPacketId`),
   * not a new PUBLISH (the bridge sending the command again). A broker that sets DUP on a resend says which: DUP 0 is
   * a first delivery, whatever order frames arrive in. One that does not (plain aedes) resends with the packet id of
   * the earlier delivery ([MQTT-4.4.0-1]), so that is the sign then; a new PUBLISH that happens to get the same packet
   * id (aedes numbers each connection from 1) passes for a resend from such a broker.
   */
  #isBrokerResend(delivery: Delivery, previousPacketId: number | undefined): boolean {
    if (delivery.dup) return true;
    return !this.brokerSetsDup && delivery.packetId !== undefined && delivery.packetId === previousPacketId;
  }

  /**
   * An ack of command `id` fell out of the full offline buffer: it will never be sent. Returns true when that left
   * more than `MAX_DROPPED_ACK_COMMANDS` commands owed no ack, so the oldest of them was forgotten.
   */
  ackDropped(id: string): boolean {
    const record = this.#records.get(id);
    if (!record) return false;
    record.acksOwed--;
    if (record.confirmed || record.acksOwed > 0) return false;
    this.#droppedAckIds.delete(id);
    this.#droppedAckIds.add(id);
    if (this.#droppedAckIds.size <= MAX_DROPPED_ACK_COMMANDS) return false;
    const oldest = this.#droppedAckIds.values().next().value as string;
    this.#droppedAckIds.delete(oldest);
    this.#records.delete(oldest);
    return true;
  }

  confirm(id: string): void {
    const record = this.#records.get(id);
    if (!record || record.confirmed) return;
    record.confirmed = true;
    this.#droppedAckIds.delete(id);
    this.#confirmedIds.add(id);
    if (this.#confirmedIds.size <= MAX_CONFIRMED_COMMANDS) return;
    const oldest = this.#confirmedIds.values().next().value as string;
    this.#confirmedIds.delete(oldest);
    this.#records.delete(oldest);
  }

  get size(): number {
    return this.#records.size;
  }

  /** Commands whose ack got a PUBACK, with the ack's outcome (the latest `MAX_CONFIRMED_COMMANDS`). */
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
