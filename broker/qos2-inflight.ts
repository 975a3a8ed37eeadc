/**
 * QoS 2 messages of each device that are being handled: handed to the up path, their answer not yet given to aedes.
 * aedes learns that a QoS 2 message was received only when the publish hook answers (it stores the message then), so
 * while the first copy waits for its agent's commit a copy sent again (DUP, [MQTT-4.3.3]) looks new to aedes, and
 * would reach the agent twice. The publish hook looks a packet id up here first (docs/broker.md, "Up path and QoS").
 *
 * Kept per device id, not per connection: a persistent session ([MQTT-3.1.2-4]) outlives its connection, and its
 * device resends after reconnecting, maybe while the old connection's copy still waits for its commit.
 */
import type { DeviceConnection } from "./connection.ts";
import type { UplinkOutcome } from "./uplink.ts";

/** One QoS 2 message being handled. */
export interface Qos2Handling {
  /** The connection the copy being handled arrived on. */
  readonly connection: DeviceConnection;
  /** Settles with the outcome aedes was told, once it was told. */
  readonly outcome: Promise<UplinkOutcome>;
}

interface Entry extends Qos2Handling {
  settle(outcome: UplinkOutcome): void;
}

export class Qos2InFlight {
  /** By device id, then packet id. A device's map exists only while one of its messages is in flight. */
  readonly #byDevice = new Map<string, Map<number, Entry>>();

  /** The message `messageId` of the device that is being handled, if any. */
  find(deviceId: string, messageId: number): Qos2Handling | undefined {
    return this.#byDevice.get(deviceId)?.get(messageId);
  }

  /**
   * Records that `connection` started handling its QoS 2 message `messageId` (replacing what an earlier connection of
   * the device left under that id). Call the returned function exactly once, right after aedes was given the answer:
   * from then on aedes' own store answers later copies.
   */
  begin(connection: DeviceConnection, messageId: number): (outcome: UplinkOutcome) => void {
    const deviceId = connection.deviceId;
    let messages = this.#byDevice.get(deviceId);
    if (messages === undefined) {
      messages = new Map();
      this.#byDevice.set(deviceId, messages);
    }
    let settle!: (outcome: UplinkOutcome) => void;
    const outcome = new Promise<UplinkOutcome>((resolve) => {
      settle = resolve;
    });
    const entry: Entry = { connection, outcome, settle };
    messages.set(messageId, entry);
    return (result) => {
      entry.settle(result);
      const current = this.#byDevice.get(deviceId);
      // A later connection of the device may have taken the id over meanwhile; its entry stays.
      if (current?.get(messageId) !== entry) return;
      current.delete(messageId);
      if (current.size === 0) this.#byDevice.delete(deviceId);
    };
  }

  /** Devices with a message in flight (for tests). */
  get devices(): number {
    return this.#byDevice.size;
  }
}
