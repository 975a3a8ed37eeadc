/**
 * DeviceAgent: the default agent class, serving one device with zero code: telemetry with retention, a shadow with
 * versions and deltas, a command outbox, online status, rpc, and reasoning with tools and operator approvals.
 * Subclass it (`class Thermostat extends DeviceAgent`) to add callable methods, override the `on*` device hooks or
 * set `static deviceOptions`.
 */
import type { Value, ValueMap } from "../../codecs/frames.ts";
import { ADMIT_PROTOCOL, Agent, OUTCOME_HOOK_FAILED, ROLLED_BACK } from "../agent.ts";
import type { CloseReason, InboundMessage, ProtocolMessage } from "../host.ts";
import { callOnError } from "../on-error.ts";
import type { AgentWiring, Connection, TaskInfo } from "../types.ts";
import type { CommandRecord, CommandState } from "./command-outbox.ts";
import { COMMAND_STATES } from "./command-outbox.ts";
import { cutText } from "../../codecs/cut-text.ts";
import { onAckTimeout } from "./ack-timeout.ts";
import type { CommandObserver } from "./command-observer.ts";
import { DeviceCore } from "./device-core.ts";
import { handleAck } from "./handlers/ack.ts";
import { handleHello } from "./handlers/hello.ts";
import { handleReportedState } from "./handlers/state.ts";
import { handleTelemetry } from "./handlers/telemetry.ts";
import { withRpcFrameLimit } from "./frame-limit.ts";
import type { DeviceAgentOptions } from "./options.ts";
import { resolveDeviceAgentOptions } from "./options.ts";
import type { DeviceProfile, DeviceStatus } from "./presence.ts";
import type { Approval, ApprovalStatus } from "./reasoning/approval-store.ts";
import type { ResolveApprovalResult } from "./reasoning/approval-flow.ts";
import { handleToolCalls, resolveApproval, resumeWaitingTurns } from "./reasoning/approval-flow.ts";
import type { ConversationEntry } from "./reasoning/conversation-store.ts";
import { Reasoner } from "./reasoning/reasoner.ts";
import { reasonRequestId } from "./reasoning/request-id.ts";
import { endTurnOfFailedOutcome, tryEndStrandedTurns } from "./reasoning/stranded-turns.ts";
import type { UsageTotals } from "./reasoning/turn-store.ts";
import { migrateDeviceSchema } from "./schema.ts";
import type { Shadow } from "./shadow-store.ts";
import type { Reading } from "./telemetry-readings.ts";
import type { TelemetryPage, TelemetryRow } from "./telemetry-store.ts";
import { invalidArgument, optionalInteger, readCommandInput, readTelemetryQuery } from "./arguments.ts";
import { isValueMap } from "./values.ts";
import { checkDeviceAgentWiring, deviceAgentWiring } from "./wiring.ts";

/** Result of `setDesired`: applied at `version`, or refused because `expectedVersion` was not current. */
export type SetDesiredResult = { status: "ok"; version: number } | { status: "conflict"; version: number };

/**
 * @example
 * class Thermostat extends DeviceAgent {
 *   static override callable = [...DeviceAgent.callable, "setTarget"];
 *   static override deviceOptions = { telemetryMaxRows: 10_000 };
 *   setTarget(celsius: number) { return this.setDesired({ target: celsius }); }
 * }
 */
export class DeviceAgent extends Agent<ValueMap> {
  /** Methods the device (up/rpc) and WebSocket clients may call. Operators reach every public method via the API. */
  static override callable: readonly string[] = ["ping", "getShadow", "getStatus", "getCommand"];
  /** Per-class option overrides, under the bridge config's `agentConfig[ClassName]`. */
  static deviceOptions: Partial<DeviceAgentOptions> = {};

  /**
   * The class's options as its agents will resolve them (`env.config` over `static deviceOptions` over the
   * defaults), checked when the bridge starts. `this` is the class the app asks about, so a subclass's own
   * `deviceOptions` are part of the check.
   */
  static override validateConfig(config: Readonly<Record<string, unknown>>): void {
    // biome-ignore lint/complexity/noThisInStatic: the asked subclass's deviceOptions, not DeviceAgent's.
    resolveDeviceAgentOptions(this.deviceOptions, config);
  }

  /**
   * Takes `commandObserver` (a function, see `commandObserverWiring`) and nothing else. A subclass wired with more
   * checks its own keys and hands the rest to `super.validateWiring`.
   */
  static override validateWiring(wiring: AgentWiring): void {
    checkDeviceAgentWiring(wiring);
  }

  /** The resolved options (validated at construction). */
  protected readonly options: DeviceAgentOptions = resolveDeviceAgentOptions(
    (this.constructor as typeof DeviceAgent).deviceOptions,
    this.env.config,
  );
  /** The app's command metrics hook, wired in (`env.wiring`, see command-observer.ts). */
  readonly #commandObserver: CommandObserver | undefined = deviceAgentWiring(this.env.wiring).commandObserver;
  readonly #core: DeviceCore = new DeviceCore(
    {
      id: this.id,
      className: this.constructor.name,
      sql: (strings, ...values) => this.sql(strings, ...values),
      now: () => this.env.clock.now(),
      random: () => this.env.random(),
      logger: this.env.logger,
      directory: this.env.directory,
      engine: () => this.env.engine,
      connections: () => this.getConnections(),
      connection: (id) => this.getConnection(id),
      scheduleIn: (delaySeconds, method, payload) => this.schedule(delaySeconds, method, payload),
      cancelSchedule: (id) => this.cancelSchedule(id),
      startTask: (kind, input, run, taskOptions) => this.startTask(kind, input, run, taskOptions),
      cancelTask: (id) => this.cancelTask(id),
      hasTask: (id) => this.hasTask(id),
      transaction: (fn) => this.transaction(fn),
      reportError: (err, event) => callOnError(this, err, event),
      commandTransition: (commandId, from, state) => this.#reportCommandTransition(commandId, from, state),
      sessionGreeted: () => resumeWaitingTurns(this.#reasoner),
    },
    this.options,
  );
  readonly #reasoner: Reasoner = new Reasoner(this.#core, {
    queryTelemetry: (q) => this.queryTelemetry(q) as unknown as Value,
    getShadow: () => this.getShadow() as unknown as Value,
    setDesired: (patch, expected) => this.setDesired(patch, expected),
    sendCommand: (input) => this.sendCommand(input) as unknown as Value,
  });

  // ---------- device hooks for subclasses ----------

  /** After a hello was recorded. */
  protected onHello(_profile: DeviceProfile, _conn: Connection): void | Promise<void> {}
  /** After telemetry was stored (the readings as stored, with resolved times). */
  protected onTelemetry(_readings: readonly Reading[], _conn: Connection): void | Promise<void> {}
  /** After a reported patch was applied. */
  protected onReportedState(_shadow: Shadow, _conn: Connection): void | Promise<void> {}
  /** After a command reached SUCCEEDED or FAILED by the device's ack. */
  protected onCommandResult(_command: CommandRecord): void | Promise<void> {}

  // ---------- lifecycle ----------

  override onStart(): void | Promise<void> {
    migrateDeviceSchema(this.#core.ports.sql);
    // A reasoning turn left running without its round (stranded-turns.ts) ends now; if that fails, the migration
    // above stands, and the device's next question looks again.
    tryEndStrandedTurns(this.#reasoner, "onStart");
  }

  override onConnect(conn: Connection, _ctx: { request?: unknown }): void | Promise<void> {
    // Nothing is sent here: an MQTT session opens before its CONNACK, so it has subscribed to nothing yet and the
    // broker would drop the frames (and a command would spend a delivery attempt). See `greet`.
    if (!this.#core.isDevice(conn)) return;
    this.#core.presence.touch();
    // The maxFrame of its last hello (kept across sessions) also bounds the broker's own refusals in this session.
    conn.setFrameLimit(this.#core.presence.profile().caps.maxFrame);
  }

  // Not async: a frame whose hooks return nothing stays on the runtime's synchronous batch path (no promise and no
  // microtask per event); a hook's promise, when there is one, is handed back for the runtime to await.
  override onMessage(conn: Connection, message: InboundMessage): void | Promise<void> {
    const core = this.#core;
    const device = core.isDevice(conn);
    if (device) core.presence.heard();
    // A session's first message other than a hello greets it. Before the message is handled, so that a state report
    // compares against the full state just sent (no extra delta); but after an ack, so that a session opening with
    // the ack of a command (firmware flushing what it buffered offline) is not sent that command again.
    const greets = device && message.channel !== "hello";
    if (greets && message.channel !== "ack") core.greetHelloless(conn);
    const handled = this.#dispatch(conn, message, device);
    if (greets && message.channel === "ack") core.greetHelloless(conn);
    if (!device) return handled;
    // The last_seen row (once a second at most) is written after the handler, in the same event: a question's engine
    // request leaves when the event's synchronous part ends (after-request-write.ts), and after a quiet second this
    // write was the one statement before it.
    if (handled === undefined) return core.presence.persistHeard();
    return handled.then(() => core.presence.persistHeard());
  }

  // #private: a prototype method would be reachable by name through runtime.call.
  #dispatch(conn: Connection, message: InboundMessage, device: boolean): void | Promise<void> {
    const core = this.#core;
    switch (message.channel) {
      case "hello":
      case "telemetry":
      case "state":
      case "ack":
        if (!device) {
          core.sendError(conn, "BRIDGE_ERR_DEVICE_ONLY", `${message.channel} is accepted only from the device itself`);
          return;
        }
        return this.#onDeviceFrame(conn, message);
      case "reason": {
        // A reasoning turn writes the conversation and may act on the device: not for readonly viewers. The refusal
        // names the request like every other refusal of a question, so a client with several open can tell which.
        if (!conn.readonly) return this.#reasoner.request(conn, message.frame);
        const id = reasonRequestId(message.frame);
        core.sendError(
          conn,
          "BRIDGE_ERR_READONLY",
          "a readonly connection may not start reasoning",
          id === null ? {} : { id },
        );
        return;
      }
      case "rpc": {
        // The base class answers on the connection it is handed: a device's gets a send that keeps within maxFrame.
        const maxFrame = device ? core.presence.profile().caps.maxFrame : null;
        return super.onMessage(maxFrame === null ? conn : withRpcFrameLimit(conn, maxFrame), message);
      }
      default:
        return super.onMessage(conn, message);
    }
  }

  #reportCommandTransition(commandId: string, from: CommandState | null, state: CommandState): void {
    if (this.#commandObserver === undefined) return;
    try {
      this.#commandObserver({ agentId: this.id, commandId, from, state });
    } catch (err) {
      // Metrics must never fail a command.
      this.env.logger.warn({ err }, "command observer threw");
    }
  }

  // #private: a prototype method would be reachable by name through runtime.call.
  #onDeviceFrame(conn: Connection, message: InboundMessage): void | Promise<void> {
    const core = this.#core;
    switch (message.channel) {
      case "hello": {
        const profile = handleHello(core, conn, message.frame);
        return profile === undefined ? undefined : this.onHello(profile, conn);
      }
      case "telemetry": {
        const readings = handleTelemetry(core, conn, message.frame);
        return readings.length > 0 ? this.onTelemetry(readings, conn) : undefined;
      }
      case "state": {
        return handleReportedState(core, conn, message.frame) === undefined
          ? undefined
          : this.onReportedState(core.shadow.get(), conn);
      }
      case "ack": {
        const command = handleAck(core, conn, message.frame);
        return command === undefined ? undefined : this.onCommandResult(command);
      }
      default:
        return;
    }
  }

  override onClose(conn: Connection, reason: CloseReason): void | Promise<void> {
    if (!this.#core.isDevice(conn)) {
      this.#reasoner.onConnectionClosing(conn.id);
      return;
    }
    // Online is the count of open device sessions: a takeover closes the old session after the new one opened.
    if (this.#core.deviceConnections(conn.id).length === 0) this.#core.presence.recordClose(reason);
    else this.#core.presence.touch();
    this.#reasoner.onConnectionClosing(conn.id);
  }

  /**
   * A failed event's writes were rolled back: cached rows may be ahead of the database. Not in onError, which a
   * subclass may override without calling super.
   */
  override [ROLLED_BACK](): void {
    this.#core.invalidateCaches();
    this.#reasoner.turns.invalidate();
  }

  /** The runtime's own frames (identity, state broadcasts) keep within the device's maxFrame too (frame-limit.ts). */
  override [ADMIT_PROTOCOL](conn: Connection, message: ProtocolMessage): boolean {
    return this.#core.admitProtocol(conn, message);
  }

  override onTaskProgress(task: TaskInfo, update: Value): void | Promise<void> {
    this.#reasoner.onProgress(task, update);
  }

  override onTaskDone(task: TaskInfo, result: Value): void | Promise<void> {
    this.#reasoner.onDone(task, result, (turn, round) => handleToolCalls(this.#reasoner, turn, round));
  }

  override onTaskFailed(task: TaskInfo, error: { code: string; message: string }): void | Promise<void> {
    this.#reasoner.onFailed(task, error);
  }

  override onTaskInterrupted(task: TaskInfo): void | Promise<void> {
    this.#reasoner.onInterrupted(task);
  }

  /** An outcome hook of a task failed and rolled back: a reasoning turn the task was a round of ends failed. */
  override [OUTCOME_HOOK_FAILED](task: TaskInfo): void {
    endTurnOfFailedOutcome(this.#reasoner, task);
  }

  // ---------- public API (device rpc: `callable`; operators: runtime.call) ----------

  /** Liveness check: the server time. */
  ping(): { pong: true; t: number } {
    return { pong: true, t: this.env.clock.now() };
  }

  /** Online status, last seen, firmware, codec and capabilities. */
  getStatus(): DeviceStatus {
    return this.#core.presence.status(this.#core.deviceConnections().length);
  }

  /** Stored telemetry: `{from, to, metric, limit, order}` (times ms since epoch; newest first by default). */
  queryTelemetry(query: Value = {}): TelemetryRow[] {
    return this.#core.telemetry.query(readTelemetryQuery(query));
  }

  /**
   * `queryTelemetry` a page at a time: `{readings, next}`, where `next` (`{ts, id}` of the last reading, null when the
   * page was not full) passed back as `after` continues the query exactly where the page ended.
   */
  queryTelemetryPage(query: Value = {}): TelemetryPage {
    return this.#core.telemetry.queryPage(readTelemetryQuery(query));
  }

  /** Runs telemetry retention now (it also runs every `telemetryRetentionEveryRows` inserts). Returns rows deleted. */
  enforceTelemetryRetention(): number {
    return this.#core.telemetry.enforceRetention();
  }

  /** Reported and desired state with versions, and the delta between them. */
  getShadow(): Shadow {
    return this.#core.shadow.get();
  }

  /** Merges `patch` into the desired state (null deletes); with `expectedVersion`, only if it is current. */
  setDesired(patch: Value, expectedVersion?: Value): SetDesiredResult {
    if (!isValueMap(patch)) throw invalidArgument("patch", "must be a map");
    const expected = optionalInteger(expectedVersion, "expectedVersion");
    const result = this.#core.shadow.desire(patch, expected);
    if (result.status === "conflict") return result;
    if (result.deltaChanged) this.#core.pushDelta(result.version, result.delta);
    return { status: "ok", version: result.version };
  }

  /** Queues a command `{name, args?, ttlSeconds?, maxAttempts?, ackTimeoutSeconds?}`; sent at once when online. */
  sendCommand(input: Value): CommandRecord {
    return this.#core.queueCommand(readCommandInput(input, this.options));
  }

  getCommand(id: Value): CommandRecord | null {
    if (typeof id !== "string") throw invalidArgument("id", "must be text");
    return this.#core.commands.get(id) ?? null;
  }

  /** Commands newest first, optionally of one state. */
  listCommands(filter: Value = {}): CommandRecord[] {
    const map = isValueMap(filter) ? filter : {};
    const state = map.state;
    if (state !== undefined && !COMMAND_STATES.includes(state as CommandState)) {
      throw invalidArgument("state", `must be one of ${COMMAND_STATES.join(", ")}`);
    }
    return this.#core.commands.list({
      state: state as CommandState | undefined,
      limit: optionalInteger(map.limit, "limit"),
    });
  }

  /** Alarm target: expires command `payload.id` if it is still open at its TTL. */
  expireCommand(payload: Value): void {
    if (!isValueMap(payload) || typeof payload.id !== "string") return;
    const expired = this.#core.commands.expire(payload.id);
    if (expired !== undefined) this.#core.commandFinished(expired.command, expired.alarms);
  }

  /** Alarm target: command `payload.id` was not acknowledged in time after its latest delivery (ack-timeout.ts). */
  commandAckTimedOut(payload: Value): void {
    onAckTimeout(this.#core, payload);
  }

  /** The last `limit` conversation messages (default 50), oldest first. */
  getConversation(options: Value = {}): ConversationEntry[] {
    const map = isValueMap(options) ? options : {};
    return this.#reasoner.conversation.recent(optionalInteger(map.limit, "limit") ?? 50);
  }

  /** Engine usage of this device so far: requests (engine rounds), prompt, cached and completion tokens. */
  getUsage(): UsageTotals {
    return this.#reasoner.turns.usage();
  }

  /** Both of the above read in one event, so a turn that ends meanwhile is in both or in neither. */
  getConversationWithUsage(options: Value = {}): { messages: ConversationEntry[]; usage: UsageTotals } {
    return { messages: this.getConversation(options), usage: this.getUsage() };
  }

  /** Approvals newest first, optionally of one status. */
  listApprovals(filter: Value = {}): Approval[] {
    const map = isValueMap(filter) ? filter : {};
    const status = typeof map.status === "string" ? (map.status as ApprovalStatus) : undefined;
    return this.#reasoner.approvals.list(status, optionalInteger(map.limit, "limit") ?? 100);
  }

  /** An operator approves or refuses a pending tool call; the reasoning turn then continues. */
  resolveApproval(approvalId: Value, approve: Value, reason?: Value): ResolveApprovalResult {
    if (typeof approvalId !== "string") throw invalidArgument("approvalId", "must be text");
    if (typeof approve !== "boolean") throw invalidArgument("approve", "must be a boolean");
    const why = typeof reason === "string" ? cutText(reason, 500) : null;
    return resolveApproval(this.#reasoner, approvalId, approve ? "approved" : "rejected", why);
  }

  /** Alarm target: a pending approval ran out of time and counts as refused. */
  expireApproval(payload: Value): void {
    if (!isValueMap(payload) || typeof payload.id !== "string") return;
    resolveApproval(this.#reasoner, payload.id, "expired", "approval timed out");
  }
}
