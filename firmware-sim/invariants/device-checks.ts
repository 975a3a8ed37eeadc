/**
 * The per-device invariants checked once at the end of a run, after the drain.
 */
import type { CommandBook } from "../device/command-book.ts";
import type { DeviceShadow } from "../device/shadow.ts";
import type { ViolationKind } from "./violations.ts";

/** What the end-of-run checks read from a device. */
export interface DeviceEndState {
  deviceId: string;
  everOnline: boolean;
  /** A twin shares its original's command book; the original reports on it. */
  twin: boolean;
  commands: CommandBook;
  shadow: DeviceShadow | undefined;
}

export function checkDeviceAtEnd(
  device: DeviceEndState,
  violation: (kind: ViolationKind, message: string) => void,
): void {
  if (!device.everOnline) violation("device-never-connected", `device ${device.deviceId} never came online`);
  if (device.twin) return;
  for (const id of device.commands.unconfirmed()) {
    violation("command-unacked", `command ${id}: no ack of it was acknowledged`);
  }
  const convergence = device.shadow?.convergence();
  if (convergence?.status === "diverged") {
    const { key, desired, reported } = convergence;
    violation(
      "state-not-converged",
      `${key}: desired ${JSON.stringify(desired)}, reported ${JSON.stringify(reported)}`,
    );
  } else if (convergence?.status === "report-unconfirmed") {
    violation("state-not-converged", `${convergence.pending} state report(s) never acknowledged`);
  }
}
