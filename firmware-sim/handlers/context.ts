import type { UpChannel, UpFrames } from "../../codecs/frames.ts";
import type { AliasRecovery } from "../device/alias-recovery.ts";
import type { CommandBook } from "../device/command-book.ts";
import type { ReasonTracker } from "../device/reason-tracker.ts";
import type { DeviceShadow } from "../device/shadow.ts";
import type { ViolationKind } from "../invariants/violations.ts";
import type { Profile } from "../profiles/index.ts";
import type { FleetMetrics } from "../stats.ts";

/** What a down-channel handler may see and do on the device that received the frame. */
export interface DeviceContext {
  readonly deviceId: string;
  readonly profile: Profile;
  readonly metrics: FleetMetrics;
  readonly commands: CommandBook;
  readonly reasons: ReasonTracker;
  /** Present for profiles with a shadow. */
  readonly shadow: DeviceShadow | undefined;
  /** Says hello again and resends when the agent refuses telemetry for want of the metric alias table. */
  readonly aliases: Pick<AliasRecovery, "aliasesUnknown">;
  /** Fleet (true) time, ms since the epoch. */
  nowMs(): number;
  /** The device's own clock (skewed), or undefined for a device without a clock. */
  deviceNowMs(): number | undefined;
  /** Queues an up frame (QoS 1); `ref` ties its PUBACK to a command id. */
  send<C extends UpChannel>(channel: C, frame: UpFrames[C], ref?: string): void;
  /** Records a broken invariant. */
  violation(kind: ViolationKind, message: string): void;
  /** The open reasoning request ended (answered, failed or abandoned): the next one may be scheduled. */
  reasonDone(): void;
}
