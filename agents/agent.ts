import type { Value, ValueMap } from "../codecs/frames.ts";
import type { AgentCell } from "./cell.ts";
import { handleDefaultMessage } from "./default-message.ts";
import { isCallerInputError } from "./caller-input.ts";
import { errorCode, errorMessage } from "./errors.ts";
import { assertWritable, sqlWriteCheck } from "./readonly-guard.ts";
import type { CloseReason, InboundMessage, ProtocolMessage } from "./host.ts";
import { retryWithBackoff } from "./retry.ts";
import { liveCell } from "./retirement.ts";
import * as queue from "./queue.ts";
import * as schedules from "./schedules.ts";
import * as tasks from "./tasks.ts";
import type {
  AgentEnv,
  AgentWiring,
  Connection,
  QueueItem,
  RetryOptions,
  Schedule,
  ScheduleType,
  SqlValue,
  TaskContext,
  TaskOptions,
  TaskInfo,
} from "./types.ts";

/**
 * Told by the runtime before `onError` for every failed event or hook (whose writes were rolled back), and whenever a
 * savepoint is rolled back without an error report (a schedule or queue callback to be retried, a `transaction()`
 * whose error the caller caught). Keyed by a
 * symbol, so a subclass that overrides `onError` without `super` (its default only logs) cannot skip it: rows cached
 * in memory (DeviceAgent's telemetry ids and shapes, presence) must never run ahead of the database. Internal.
 */
export const ROLLED_BACK: unique symbol = Symbol("agent.rolledBack");

/**
 * Asked by the runtime, inside the event that produces it, before each of its own protocol frames (identity, a state
 * sync) is queued for a protocol-enabled connection: false leaves it out for that connection. The base class admits
 * every one; DeviceAgent declines a frame larger than the device's maxFrame (and sends a small error frame instead).
 * Keyed by a symbol, like ROLLED_BACK: runtime plumbing, not a hook in the public API, and never callable by name.
 */
export const ADMIT_PROTOCOL: unique symbol = Symbol("agent.admitProtocol");

/**
 * Told by the runtime when a task's outcome hook (`onTaskDone`, `onTaskFailed`, or `onTaskInterrupted` at a start)
 * failed: its writes rolled back, `onError` was told, and the task is done with all the same (its row goes in that
 * event), so no hook will ever hear of the task again. Whatever waited for its outcome would wait for good: this is
 * the agent's one chance to end it (DeviceAgent fails the reasoning turn the task was a round of). Runs inside that
 * event, in a savepoint of its own, so what it writes commits with it; a throw is reported as the hook's was
 * (`onError` with the hook's name) and nothing runs it again. Not called on an instance the hook's time limit
 * retired (its calls are refused): the fresh instance's `onStart` finds what it left. Keyed by a symbol, like
 * ROLLED_BACK: runtime plumbing, not a hook in the public API, and never callable by name. Synchronous.
 */
export const OUTCOME_HOOK_FAILED: unique symbol = Symbol("agent.outcomeHookFailed");

/** What the runtime hands the base constructor. Internal: agents are constructed only by the runtime. */
export interface AgentInit {
  id: string;
  env: AgentEnv;
  cell: AgentCell;
}

/**
 * The base class of every agent: a persistent single-threaded actor with its own SQLite database, state,
 * connections, schedules, queue and background tasks. Subclass it (or DeviceAgent) and override the hooks.
 *
 * Inside an event a readonly connection sent (an rpc from a `?readonly=1` viewer), every call that would change what
 * the agent keeps throws BRIDGE_ERR_READONLY_CONNECTION (readonly-guard.ts): setState, a `sql` statement that may
 * write, schedule, scheduleEvery, cancelSchedule, queue, dequeue, startTask, cancelTask, destroy, `env.directory.put`
 * and a connection's setState. The refused call rolls its event back like any throw; reads work as usual.
 *
 * @example
 * class Counter extends Agent<{ n: number }> {
 *   static override callable = ["add"];
 *   override initialState = { n: 0 };
 *   add(by: number) { this.setState({ n: this.state.n + by }); return this.state.n; }
 * }
 */
export abstract class Agent<S extends Value = ValueMap> {
  /** Methods devices (up/rpc) and WebSocket clients may call by name. Nothing else is callable. */
  static callable: readonly string[] = [];

  /**
   * Checks this class's options (`agentConfig[ClassName]`, what its agents get as `env.config`) before any agent of
   * it exists: the app calls it for every configured class when the bridge starts, so a bad option stops the start
   * instead of failing every agent of the class when it wakes. Throw a BridgeError `BRIDGE_ERR_CONFIG` with
   * `details.field` naming the option and `details.rule` saying what it must be. Default: any options are accepted.
   *
   * @example
   * static override validateConfig(config: Readonly<Record<string, unknown>>): void {
   *   if (config.targetC !== undefined && typeof config.targetC !== "number") {
   *     const rule = "must be a number";
   *     throw new BridgeError("BRIDGE_ERR_CONFIG", `targetC ${rule}`, { field: "targetC", rule });
   *   }
   * }
   */
  static validateConfig(_config: Readonly<Record<string, unknown>>): void {}

  /**
   * Checks what the embedder wires into this class's agents (`RuntimeOptions.agentWiring[ClassName]`, what they get
   * as `env.wiring`, `{}` when none): `createRuntime` calls it for every class it serves, so a value of the wrong kind
   * or a misspelt key stops the creation instead of being ignored by every agent. Throw like `validateConfig`
   * (`details.field` names the key). Default: anything is accepted; DeviceAgent's takes `commandObserver` only.
   *
   * @example
   * static override validateWiring(wiring: AgentWiring): void {
   *   if (typeof wiring.notify !== "function") {
   *     const rule = "must be a function";
   *     throw new BridgeError("BRIDGE_ERR_CONFIG", `notify ${rule}`, { field: "notify", rule });
   *   }
   * }
   */
  static validateWiring(_wiring: AgentWiring): void {}

  readonly id: string;
  readonly env: AgentEnv;
  /** State before the first setState. Override as a class field. */
  initialState: S = {} as S;
  readonly #home: AgentCell;

  constructor(init: AgentInit) {
    this.id = init.id;
    this.env = init.env;
    this.#home = init.cell;
  }

  /**
   * The agent's cell, for every call this instance makes into the runtime. Once the runtime retired the instance (a
   * callback or hook of it ran past callbackTimeoutMs), each call throws BRIDGE_ERR_AGENT_RETIRED: the
   * callback's promise may still run, and its late writes must not land in another event (agents/retirement.ts).
   */
  get #cell(): AgentCell {
    const cell = liveCell(this.#home);
    // An instance dropped with a batch abandoned to a storage fault (cell-mailbox.ts, abandonBatch) keeps its cell,
    // which the next event wakes with a fresh instance: the dropped one must not reach that instance's database.
    if (cell.agent !== null && cell.agent !== this) throw cell.notInMemory();
    return cell;
  }

  /** The current state (as of this event, including its own uncommitted setState). */
  get state(): S {
    const s = this.#cell.getState();
    return (s === undefined ? this.initialState : s) as S;
  }

  /**
   * Replaces the state: validated now (validateStateChange), persisted in this event's transaction, broadcast after
   * commit to protocol-enabled connections, then onStateChanged. Throws BRIDGE_ERR_READONLY_CONNECTION inside an event
   * that a readonly connection sent (an rpc from a viewer), so that event's writes roll back.
   */
  setState(next: S): void {
    const cell = this.#cell;
    assertWritable(cell, "setState");
    cell.setAgentState(next, null);
  }

  /** Throw a BridgeError to refuse a state change. `source` is the connection that asked, or null. */
  validateStateChange(_next: S, _source: Connection | null): void {}

  onStateChanged(_state: S, _source: Connection | null): void | Promise<void> {}

  /**
   * Runs one statement on this agent's database; values are always bound parameters. Inside a readonly connection's
   * event a statement that may write throws BRIDGE_ERR_READONLY_CONNECTION; reads run.
   */
  sql<Row = Record<string, SqlValue>>(strings: TemplateStringsArray, ...values: SqlValue[]): Row[] {
    const cell = this.#cell;
    return cell.sqlRunner().tagged<Row>(strings, values, sqlWriteCheck(cell));
  }

  /** Runs `fn` in a savepoint: it commits with the event, or rolls back alone when it throws. `fn` is synchronous. */
  transaction<T>(fn: () => T): T {
    return this.#cell.nested(fn);
  }

  getConnections(): Connection[] {
    return [...this.#cell.connections.values()];
  }

  getConnection(id: string): Connection | undefined {
    return this.#cell.connections.get(id);
  }

  /** Runs `this[method](payload, schedule)` at a Date, after a delay in seconds, or on a cron expression. */
  schedule(when: Date | number | string, method: string, payload?: Value, opts?: { retry?: RetryOptions }): Schedule {
    const cell = this.#cell;
    assertWritable(cell, "schedule");
    return schedules.createSchedule(cell, when, method, payload ?? null, opts?.retry);
  }

  /** Runs `this[method](payload, schedule)` every `intervalSeconds`. */
  scheduleEvery(intervalSeconds: number, method: string, payload?: Value, opts?: { retry?: RetryOptions }): Schedule {
    const cell = this.#cell;
    assertWritable(cell, "scheduleEvery");
    return schedules.createInterval(cell, intervalSeconds, method, payload ?? null, opts?.retry);
  }

  cancelSchedule(id: string): boolean {
    const cell = this.#cell;
    assertWritable(cell, "cancelSchedule");
    return schedules.cancelSchedule(cell, id);
  }

  getSchedule(id: string): Schedule | undefined {
    return schedules.getSchedule(this.#cell, id);
  }

  getSchedules(filter?: { type?: ScheduleType; timeRange?: { start?: Date; end?: Date } }): Schedule[] {
    return schedules.listSchedules(this.#cell, filter);
  }

  /** Appends `this[method](payload, item)` to the persistent FIFO queue; returns the item id. */
  queue(method: string, payload: Value, opts?: { retry?: RetryOptions }): string {
    const cell = this.#cell;
    assertWritable(cell, "queue");
    return queue.enqueueItem(cell, method, payload, opts?.retry);
  }

  getQueue(id: string): QueueItem | undefined {
    return queue.getItem(this.#cell, id);
  }

  dequeue(id: string): boolean {
    const cell = this.#cell;
    assertWritable(cell, "dequeue");
    return queue.removeItem(cell, id);
  }

  getQueues(): QueueItem[] {
    return queue.listItems(this.#cell);
  }

  /** Retries `fn` with exponential backoff and full jitter on the injected clock and random source. */
  retry<T>(fn: (attempt: number) => Promise<T>, opts?: RetryOptions): Promise<T> {
    return retryWithBackoff(fn, opts, this.env.clock, this.env.random);
  }

  /** Starts background work outside the mailbox (after this event commits, or now: `eager`); returns the task id. */
  startTask(kind: string, input: Value, run: (task: TaskContext) => Promise<Value>, options?: TaskOptions): string {
    const cell = this.#cell;
    assertWritable(cell, "startTask");
    return tasks.startTask(cell, kind, input, run, options);
  }

  cancelTask(id: string): boolean {
    const cell = this.#cell;
    assertWritable(cell, "cancelTask");
    return tasks.cancelTask(cell, id);
  }

  getTasks(): TaskInfo[] {
    return tasks.listTasks(this.#cell);
  }

  /**
   * True while task `id` has an outcome to come: it runs, or its report waits in the mailbox for its hook. False once
   * an outcome hook (or `onTaskInterrupted`) was run for it, or for an id no task had. Unlike `getTasks()`, which lists
   * only the running ones, it counts a task that ended and whose hook has not run yet; it reads the task's row only
   * when the task is not in memory.
   */
  hasTask(id: string): boolean {
    return tasks.hasTask(this.#cell, id);
  }

  onTaskProgress(_task: TaskInfo, _update: Value): void | Promise<void> {}
  onTaskDone(_task: TaskInfo, _result: Value): void | Promise<void> {}
  onTaskFailed(_task: TaskInfo, _error: { code: string; message: string }): void | Promise<void> {}
  /** A task was unfinished at the last stop (restart); start it again or give up. */
  onTaskInterrupted(_task: TaskInfo): void | Promise<void> {}

  /** Runs on every wake (first use, after hibernation, after restart) before any other event. */
  onStart(): void | Promise<void> {}
  onConnect(_conn: Connection, _ctx: { request?: unknown }): void | Promise<void> {}

  /** Default: up/rpc calls `static callable` methods and replies on down/rpc; client-state sets the state. */
  onMessage(conn: Connection, message: InboundMessage): void | Promise<void> {
    return handleDefaultMessage(this, this.#cell, conn, message);
  }

  onClose(_conn: Connection, _reason: CloseReason): void | Promise<void> {}

  /** Internal: see ROLLED_BACK. Nothing to drop in the base class. */
  [ROLLED_BACK](): void {}

  /** Internal: see OUTCOME_HOOK_FAILED. Nothing waits for a task in the base class. */
  [OUTCOME_HOOK_FAILED](_task: TaskInfo): void {}

  /** Internal: see ADMIT_PROTOCOL. The base class sends every protocol frame. */
  [ADMIT_PROTOCOL](_conn: Connection, _message: ProtocolMessage): boolean {
    return true;
  }

  /**
   * Told about every failed event, hook, schedule, queue item. Default: logs it at error level with its stack, or, for
   * a caller's input the agent refused (an invalid argument in an operator's call, an unknown rpc method: see
   * isCallerInputError), at debug level without a stack: the caller got the failure as its answer, and a line at
   * error per bad request would drown the real faults.
   */
  onError(error: unknown, context: { event: string }): void {
    if (isCallerInputError(error, context.event)) {
      this.env.logger.debug(
        { event: context.event, code: errorCode(error), error: errorMessage(error) },
        "agent refused a caller's input",
      );
      return;
    }
    this.env.logger.error({ err: error, event: context.event }, "agent event failed");
  }

  /** Asked once per connection. Default: protocol messages for JSON connections only. */
  shouldSendProtocolMessages(conn: Connection, _ctx: { request?: unknown }): boolean {
    return conn.codec === "json";
  }

  /** Destroys this agent (database, schedules, queue) after the current event; do not await it inside an event. */
  destroy(): Promise<void> {
    const cell = this.#cell;
    // An instance kept after it hibernated: its cell is closed and no longer the agent's. Destroying through it unlinked
    // the database of the instance woken since, which went on out of the registry beside the next one it made.
    if (cell.closed && cell.pendingDestroy === null) throw cell.notInMemory();
    assertWritable(cell, "destroy");
    return cell.requestDestroy();
  }
}

/**
 * Any concrete agent class. Constructed only by the runtime (it passes an internal AgentInit); a subclass that
 * declares a constructor must pass its arguments through to `super`.
 */
export interface AgentClass {
  new (...args: never[]): Agent<Value>;
  /** Checks the class's options when the bridge starts (see `Agent.validateConfig`). */
  validateConfig(config: Readonly<Record<string, unknown>>): void;
  /** Checks what the embedder wires into the class's agents (see `Agent.validateWiring`). */
  validateWiring(wiring: AgentWiring): void;
}

/** How the runtime constructs a class (the one place the constructor's real parameter is named). */
export function constructAgent(cls: AgentClass, init: AgentInit): Agent<Value> {
  return new (cls as unknown as new (init: AgentInit) => Agent<Value>)(init);
}
