/**
 * The DeviceAgent's working parts behind the agent class: the stores, and the few actions several handlers share
 * (error frames, shadow resync and deltas, command delivery). Frames go through `Connection.send`, so they leave only
 * after the event's writes commit and always in the connection's own codec.
 */
import type { DesiredStateFrame, DownMessage, ValueMap } from "../../codecs/frames.ts";
import type { ProtocolMessage } from "../host.ts";
import { protocolToDown } from "../protocol-down.ts";
import type { Connection } from "../types.ts";
import { ackTimer } from "./ack-timeout.ts";
import { CommandOutbox, commandFrame } from "./command-outbox.ts";
import type { CommandAlarms, CommandRecord, CommandRoute } from "./command-outbox.ts";
import type { CommandInput } from "./arguments.ts";
import type { DeviceAgentOptions } from "./options.ts";
import { MetricAliasStore } from "./metric-aliases.ts";
import type { DevicePorts } from "./ports.ts";
import { PresenceStore } from "./presence.ts";
import { refuseNewerDeviceTables } from "./schema.ts";
import { ShadowStore } from "./shadow-store.ts";
import { TelemetryStore } from "./telemetry-store.ts";
import type { Oversize } from "./frame-limit.ts";
import { FRAME_TOO_LARGE, fitErrorFrame, oversize, oversizeReason } from "./frame-limit.ts";
import { decodeValue, encodeValue } from "./values.ts";

/** How an error frame names a refused protocol frame. */
const PROTOCOL_FRAME_NAMES: Record<ProtocolMessage["type"], string> = {
  identity: "identity frame",
  state: "agent state",
};

/** Agent method the command TTL schedule calls (public on DeviceAgent). */
export const EXPIRE_COMMAND_METHOD = "expireCommand";

export class DeviceCore {
  readonly telemetry: TelemetryStore;
  readonly shadow: ShadowStore;
  readonly commands: CommandOutbox;
  readonly presence: PresenceStore;
  /** The metric alias table of the device's last hello that declared one. */
  readonly aliases: MetricAliasStore;
  /** Id of the device session that already got its pending commands (cache of device_meta "greeted"). */
  #greeted: string | null | undefined;
  /** The kinds of protocol frame refused for maxFrame so far (logged once each while the agent is in memory). */
  readonly #protocolRefusalsLogged = new Set<ProtocolMessage["type"]>();

  constructor(
    readonly ports: DevicePorts,
    readonly options: DeviceAgentOptions,
  ) {
    // First, as the agent is constructed: tables a newer build migrated fail the wake before any store reads them.
    refuseNewerDeviceTables(ports.sql);
    const now = () => ports.now();
    this.telemetry = new TelemetryStore(ports.sql, now, {
      maxAgeSeconds: options.telemetryMaxAgeSeconds,
      maxRows: options.telemetryMaxRows,
      everyRows: options.telemetryRetentionEveryRows,
    });
    this.shadow = new ShadowStore(ports.sql, now);
    this.commands = new CommandOutbox(
      ports.sql,
      now,
      (id, from, to) => ports.commandTransition?.(id, from, to),
      ackTimer(ports, options.commandAckTimeoutMs),
    );
    this.presence = new PresenceStore(ports.sql, now);
    this.aliases = new MetricAliasStore(ports.sql);
  }

  /**
   * Marks `conn` as the session that got its pending frames; true when it had not been greeted yet. Persisted, so a
   * wake from hibernation does not redeliver (and spend attempts) within the same session.
   */
  markGreeted(conn: Connection): boolean {
    if (this.#greeted === undefined) {
      const rows = this.ports.sql<{ value: Uint8Array | null }>`SELECT value FROM device_meta WHERE key = 'greeted'`;
      const stored = rows.length > 0 ? decodeValue(rows[0].value) : null;
      this.#greeted = typeof stored === "string" ? stored : null;
    }
    if (this.#greeted === conn.id) return false;
    this.ports.sql`INSERT INTO device_meta (key, value) VALUES ('greeted', ${encodeValue(conn.id)})
      ON CONFLICT (key) DO UPDATE SET value = excluded.value`;
    this.#greeted = conn.id;
    this.ports.sessionGreeted?.();
    return true;
  }

  /**
   * Drops in-memory caches of rows (greeted session, open command count, device profile, telemetry ids and shapes, what
   * was derived from the shadow). Called when an event failed: its writes were rolled back, so the caches may be ahead
   * of the database.
   */
  invalidateCaches(): void {
    this.#greeted = undefined;
    this.commands.invalidate();
    this.shadow.invalidate();
    this.telemetry.invalidate();
    this.presence.invalidate();
    this.aliases.invalidate();
  }

  /**
   * A session whose first up message is not a hello gets the desired state and pending commands with that message:
   * by then it has subscribed (firmware subscribes before it publishes), unlike at connect time. This holds for a
   * device that said hello in an earlier session too: the alias table and profile are kept, so firmware may reconnect
   * and go straight to telemetry, and its unacknowledged commands must still go again in the new session.
   */
  greetHelloless(conn: Connection): void {
    if (!this.markGreeted(conn)) return;
    if (this.shadow.get().desired.version > 0) this.resync(conn);
    this.deliverCommands(false, conn);
  }

  /**
   * Whether one of the runtime's own frames (identity, the agent-state broadcast) may go to `conn`: true unless it is
   * larger than the device's maxFrame in the connection's codec (a WebSocket viewer has no limit). One that is larger
   * is left out for that connection, and the device gets a `down/error` BRIDGE_ERR_FRAME_TOO_LARGE without `v`
   * instead (a refused desired state carries its `v`); the first refusal of each kind is logged, not every broadcast.
   */
  admitProtocol(conn: Connection, message: ProtocolMessage): boolean {
    if (!this.isDevice(conn)) return true;
    const maxFrame = this.presence.profile().caps.maxFrame;
    if (maxFrame === null) return true;
    const tooLarge = oversize(conn, protocolToDown(message), maxFrame);
    if (tooLarge === undefined) return true;
    this.sendError(conn, FRAME_TOO_LARGE, oversizeReason(PROTOCOL_FRAME_NAMES[message.type], tooLarge));
    if (!this.#protocolRefusalsLogged.has(message.type)) {
      this.#protocolRefusalsLogged.add(message.type);
      this.ports.logger.warn(
        { connection: conn.id, frame: message.type, ...tooLarge },
        "a protocol frame larger than the device's maxFrame was not sent (logged once)",
      );
    }
    return false;
  }

  /** Connections that are the device itself (MQTT sessions; WebSocket clients are viewers, not the device). */
  deviceConnections(except?: string): Connection[] {
    return this.ports.connections().filter((c) => c.kind !== "ws" && c.id !== except);
  }

  isDevice(conn: Connection): boolean {
    return conn.kind !== "ws";
  }

  /**
   * Refuses something `conn` sent with a `down/error` frame (in its codec). For a device with a maxFrame the message
   * is cut to fit, and a device whose maxFrame cannot hold even the code gets nothing.
   */
  sendError(conn: Connection, code: string, msg: string, extra: { id?: string; v?: number } = {}): void {
    const maxFrame = this.isDevice(conn) ? this.presence.profile().caps.maxFrame : null;
    const frame = fitErrorFrame(conn, { code, msg, ...extra }, maxFrame);
    if (frame !== undefined) conn.send({ channel: "error", frame }, { qos: 1 });
  }

  /** Full resync on hello: the whole desired state at its version, when the device wants sync. */
  resync(conn: Connection): void {
    const caps = this.presence.profile().caps;
    if (!caps.sync) return;
    const shadow = this.shadow.get();
    const frame: DesiredStateFrame = { v: shadow.desired.version, d: shadow.desired.state, full: true };
    if (this.#sendState(conn, frame, "full desired state", caps.maxFrame)) this.shadow.markDeltaSent(shadow.delta);
  }

  /**
   * Sends a changed delta to the device. Gated by the device's `sync` capability, not by the protocol flag: a binary
   * thermostat still gets its deltas, in its own codec.
   */
  pushDelta(desiredVersion: number, delta: ValueMap): void {
    const caps = this.presence.profile().caps;
    if (!caps.sync) return;
    const frame: DesiredStateFrame = { v: desiredVersion, d: delta };
    let sent = 0;
    for (const conn of this.deviceConnections()) {
      if (this.#sendState(conn, frame, "state delta", caps.maxFrame)) sent++;
    }
    if (sent > 0) this.shadow.markDeltaSent(delta);
  }

  /**
   * Sends a `down/state` frame, or, when it is larger than the device's maxFrame, a `down/error`
   * BRIDGE_ERR_FRAME_TOO_LARGE carrying the desired version instead; true when the state went. The shadow is left as
   * it is either way: the delta is not recorded as sent, so the next change sends it again.
   */
  #sendState(conn: Connection, frame: DesiredStateFrame, what: string, maxFrame: number | null): boolean {
    const message: DownMessage = { channel: "state", frame };
    const tooLarge = oversize(conn, message, maxFrame);
    if (tooLarge === undefined) {
      conn.send(message, { qos: 1 });
      return true;
    }
    this.sendError(conn, FRAME_TOO_LARGE, oversizeReason(what, tooLarge), { v: frame.v });
    return false;
  }

  /**
   * Queues a command (its TTL alarm set) and delivers it at once to the device's open sessions when the window has
   * room (`commandMaxInFlight`); its record.
   */
  queueCommand(input: CommandInput): CommandRecord {
    let id = "";
    do
      id = `cmd-${Math.floor(this.ports.random() * 36 ** 8)
        .toString(36)
        .padStart(8, "0")}`;
    while (this.commands.get(id) !== undefined);
    this.commands.add({ id, ...input });
    this.commands.setSchedule(id, this.ports.scheduleIn(input.ttlSeconds, EXPIRE_COMMAND_METHOD, { id }).id);
    // Not only the new one: a session that reconnected and has not been greeted yet (greetHelloless) gets the older
    // unacknowledged commands first, or its greeting would send them after this one, out of seq order. A session
    // that got them already is skipped, so for a greeted one this sends the new command alone.
    this.deliverCommands(false);
    return this.commands.get(id)!;
  }

  /**
   * Delivers open commands in order while the device is online. `onlyQueued` sends just the new ones; otherwise
   * (reconnect, hello) unacknowledged SENT commands go again too, except to a session that already got them (a
   * command sent after the session connected and before its greeting). `target` limits delivery to one connection
   * (the one that just said hello; during a takeover the old session is about to go). A command whose frame is larger
   * than the device's maxFrame on every target is not sent: it ends FAILED with the sizes as its error (a session
   * whose codec it does not fit is skipped, one it fits gets it). Only the `commandMaxInFlight` oldest open commands
   * go (the window); a command that ends here lets the next one in.
   */
  deliverCommands(onlyQueued: boolean, target?: Connection): void {
    const open = this.deviceConnections();
    const targets = target === undefined ? open : [target];
    if (targets.length === 0) return;
    const byId = new Map(targets.map((conn) => [conn.id, conn]));
    const { deliver, finished } = this.commands.takeDeliveries({
      onlyQueued,
      sessions: [...byId.keys()],
      openSessions: open.map((conn) => conn.id),
      route: this.#routeAmong(byId),
      maxInFlight: this.options.commandMaxInFlight,
    });
    for (const done of finished) this.#commandEnded(done.command, done.alarms);
    this.#sendCommands(deliver, byId);
  }

  /**
   * The ack timeout of SENT command `id` elapsed (ack-timeout.ts): it goes again to every open device session, one
   * more attempt with its timeout re-armed, or ends as a reconnect would end it (out of attempts: FAILED), its place
   * going to the next. Offline nothing happens: the next session's greeting redelivers it, as after any reconnect.
   * A session that connected and has not been greeted yet first gets the older open commands it lacks, as a new
   * command gives them (queueCommand): one whose own timeout fell while the device was offline must not be
   * overtaken, and the greeting does not send again what that session got here.
   */
  redeliverTimedOut(id: string): void {
    const open = this.deviceConnections();
    if (open.length === 0) return;
    // Sends nothing when every session has every command of the window. When it sent this one to a session that
    // lacked it, that delivery was its attempt: takeTimedOut below then finds it sent just now and leaves it.
    this.deliverCommands(false);
    const byId = new Map(open.map((conn) => [conn.id, conn]));
    const outcome = this.commands.takeTimedOut(
      id,
      [...byId.keys()],
      this.#routeAmong(byId),
      this.options.commandMaxInFlight,
    );
    if (outcome === undefined) return;
    if (outcome.status === "ended") this.commandFinished(outcome.command, outcome.alarms);
    else this.#sendCommands([outcome], byId);
  }

  /** The route of a command among the sessions (connection ids) of `byId`: those its frame fits (routeCommand). */
  #routeAmong(
    byId: ReadonlyMap<string, Connection>,
  ): (command: CommandRecord, sessions: readonly string[]) => CommandRoute {
    const maxFrame = this.presence.profile().caps.maxFrame;
    return (command, sessions) =>
      routeCommand(
        command,
        sessions.map((id) => byId.get(id)!),
        maxFrame,
      );
  }

  /** Sends each command's `down/cmd` to the sessions it goes to. */
  #sendCommands(
    deliver: ReadonlyArray<{ command: CommandRecord; to: readonly string[] }>,
    byId: ReadonlyMap<string, Connection>,
  ): void {
    for (const { command, to } of deliver) {
      const message: DownMessage = { channel: "cmd", frame: commandFrame(command) };
      for (const id of to) byId.get(id)!.send(message, { qos: 1 });
    }
  }

  /**
   * The device acknowledged a command, it expired, or its last attempt went unacknowledged: besides what ends with
   * it, the place it held in the window goes to the next open command, sent at once to the device's open sessions.
   */
  commandFinished(command: CommandRecord, alarms: CommandAlarms): void {
    this.#commandEnded(command, alarms);
    // Only a delivered command (sentAt set) held a place, and only a full window leaves commands waiting for it: the
    // common command-at-a-time ack costs no read of the window (the open count is kept in memory).
    if (command.sentAt === null || this.commands.openCount() < this.options.commandMaxInFlight) return;
    this.deliverCommands(false);
  }

  /** A command reached a final state: its TTL and ack timeout alarms are no longer needed; old history is pruned. */
  #commandEnded(command: CommandRecord, alarms: CommandAlarms): void {
    if (alarms.ttl !== null) this.ports.cancelSchedule(alarms.ttl);
    if (alarms.ack !== null) this.ports.cancelSchedule(alarms.ack);
    this.commands.prune(this.options.commandHistoryMax);
    this.ports.logger.debug({ command: command.id, state: command.state }, "command finished");
  }
}

/**
 * The sessions among `targets` that `command` can go to: those whose codec its frame fits within maxFrame. When it
 * fits none, why (the sizes in the first one's codec).
 */
function routeCommand(command: CommandRecord, targets: readonly Connection[], maxFrame: number | null): CommandRoute {
  if (maxFrame === null) return { to: targets.map((conn) => conn.id) };
  const message: DownMessage = { channel: "cmd", frame: commandFrame(command) };
  const to: string[] = [];
  let first: Oversize | undefined;
  for (const conn of targets) {
    const tooLarge = oversize(conn, message, maxFrame);
    if (tooLarge === undefined) to.push(conn.id);
    else first ??= tooLarge;
  }
  return to.length > 0 || first === undefined ? { to } : { refused: oversizeReason("command frame", first) };
}
