/**
 * What a message that fell out of the full offline buffer means to the device that produced it. The buffer drops
 * the oldest entry whatever its kind, as a fixed RAM ring does. A lost state report waits for the next full report
 * to repair it (the shadow counts it until then). A lost command ack leaves the command owed no ack: the device
 * dropped it by design, so the end-of-run check must not call the command unacked; the bridge redelivers the
 * command on the device's next session and the device answers it again from its command book, which keeps a bounded
 * number of such commands and counts the ones it forgets. Lost telemetry needs nothing: only acknowledged readings
 * are checked.
 */
import type { FleetMetrics } from "../stats.ts";
import type { CommandBook } from "./command-book.ts";
import type { Outgoing } from "./outbox.ts";
import type { DeviceShadow } from "./shadow.ts";

/** The parts of a device that book a lost message. */
export interface BufferLossTarget {
  readonly metrics: FleetMetrics;
  readonly commands: CommandBook;
  readonly shadow: DeviceShadow | undefined;
}

export function bookBufferLoss(device: BufferLossTarget, message: Outgoing): void {
  if (message.kind === "state") device.shadow?.reportLost();
  if (message.kind !== "ack") return;
  device.metrics.counters.acksDropped++;
  if (device.commands.ackDropped(message.ref as string)) device.metrics.counters.commandsForgotten++;
}
