/**
 * The DeviceAgent's working parts behind the agent class: the stores, and the few actions several handlers share
 * (error frames, shadow resync and deltas, command delivery). Frames go through `Connection.send`, so they leave only
 * after the event's writes commit and always in the connection's own codec.
 */
import type { DownMessage, ValueMap } from "../../codecs/frames.ts";
import type { Connection } from "../types.ts";
import { CommandOutbox, commandFrame } from "./command-outbox.ts";
import type { CommandRecord } from "./command-outbox.ts";
import type { DeviceAgentOptions } from "./options.ts";
import type { DevicePorts } from "./ports.ts";
import { PresenceStore } from "./presence.ts";
import { ShadowStore } from "./shadow-store.ts";
import { TelemetryStore } from "./telemetry-store.ts";

/** Agent method the command TTL schedule calls (public on DeviceAgent). */
export const EXPIRE_COMMAND_METHOD = "expireCommand";

export class DeviceCore {
  readonly telemetry: TelemetryStore;
  readonly shadow: ShadowStore;
  readonly commands: CommandOutbox;
  readonly presence: PresenceStore;
  /**
   * Sessions that already got every open command on connect (a device that had never said hello); their first
   * hello then sends only new ones. In memory only: after hibernation a hello may redeliver, which acks dedupe.
   */
  readonly deliveredOnConnect = new Set<string>();

  constructor(
    readonly ports: DevicePorts,
    readonly options: DeviceAgentOptions,
  ) {
    const now = () => ports.now();
    this.telemetry = new TelemetryStore(ports.sql, now, {
      maxAgeSeconds: options.telemetryMaxAgeSeconds,
      maxRows: options.telemetryMaxRows,
      everyRows: options.telemetryRetentionEveryRows,
    });
    this.shadow = new ShadowStore(ports.sql, now);
    this.commands = new CommandOutbox(ports.sql, now);
    this.presence = new PresenceStore(ports.sql, now);
  }

  /** Connections that are the device itself (MQTT sessions; WebSocket clients are viewers, not the device). */
  deviceConnections(except?: string): Connection[] {
    return this.ports.connections().filter((c) => c.kind !== "ws" && c.id !== except);
  }

  isDevice(conn: Connection): boolean {
    return conn.kind !== "ws";
  }

  /** Sends `message` to every open device connection. */
  sendToDevice(message: DownMessage, qos: 0 | 1 = 1): number {
    const targets = this.deviceConnections();
    for (const conn of targets) conn.send(message, { qos });
    return targets.length;
  }

  /** Refuses something `conn` sent with a `down/error` frame (in its codec). */
  sendError(conn: Connection, code: string, msg: string, extra: { id?: string; v?: number } = {}): void {
    conn.send({ channel: "error", frame: { code, msg, ...extra } }, { qos: 1 });
  }

  /** Full resync on hello: the whole desired state at its version, when the device wants sync. */
  resync(conn: Connection): void {
    if (!this.presence.profile().caps.sync) return;
    const shadow = this.shadow.get();
    conn.send(
      { channel: "state", frame: { v: shadow.desired.version, d: shadow.desired.state, full: true } },
      { qos: 1 },
    );
    this.shadow.markDeltaSent(shadow.delta);
  }

  /**
   * Sends a changed delta to the device. Gated by the device's `sync` capability, not by the protocol flag: a binary
   * thermostat still gets its deltas, in its own codec.
   */
  pushDelta(desiredVersion: number, delta: ValueMap): void {
    if (!this.presence.profile().caps.sync) return;
    if (this.sendToDevice({ channel: "state", frame: { v: desiredVersion, d: delta } }) > 0) {
      this.shadow.markDeltaSent(delta);
    }
  }

  /**
   * Delivers open commands in order while the device is online. `onlyQueued` sends just the new ones; otherwise
   * (reconnect, hello) unacknowledged SENT commands go again too. `target` limits delivery to one connection (the
   * one that just said hello; during a takeover the old session is about to go).
   */
  deliverCommands(onlyQueued: boolean, target?: Connection): void {
    const targets = target === undefined ? this.deviceConnections() : [target];
    if (targets.length === 0) return;
    const { deliver, finished } = this.commands.takeDeliveries(onlyQueued);
    for (const done of finished) this.commandFinished(done.command, done.scheduleId);
    for (const command of deliver) {
      for (const conn of targets) conn.send({ channel: "cmd", frame: commandFrame(command) }, { qos: 1 });
    }
  }

  /** A command reached a final state: its TTL alarm is no longer needed; old history is pruned. */
  commandFinished(command: CommandRecord, scheduleId: string | null): void {
    if (scheduleId !== null) this.ports.cancelSchedule(scheduleId);
    this.commands.prune(this.options.commandHistoryMax);
    this.ports.logger.debug({ agent: this.ports.id, command: command.id, state: command.state }, "command finished");
  }
}
