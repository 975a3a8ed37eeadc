import fs from "node:fs";
import path from "node:path";
import pino from "pino";
import type { Value } from "../codecs/frames.ts";
import type { AgentClass } from "./agent.ts";
import { AlarmIndex } from "./alarm-index.ts";
import { AgentCell } from "./cell.ts";
import { systemClock } from "./clock.ts";
import type { RuntimeCore } from "./core.ts";
import { AGENT_ERRORS } from "./errors.ts";
import type { AgentEvent, EventOutcome, QueuedEvent } from "./events/types.ts";
import type {
  CloseReason,
  ConnectionInit,
  DeliverOutcome,
  EventResult,
  InboundMessage,
} from "./host.ts";
import { globToRegExp, isValidAgentId } from "./ids.ts";
import { type ResolvedRuntimeOptions, type RuntimeOptions, resolveRuntimeOptions } from "./options.ts";
import { RuntimeDb } from "./runtime-db.ts";
import { TransportTable } from "./transport-table.ts";
import type { AgentRuntime, CallResult } from "./types.ts";

/**
 * Creates the agent runtime: the registry of agents (get-or-create by id), their mailboxes, storage, alarms and
 * hibernation. Implements `AgentHost` for transports.
 *
 * @example
 * const runtime = createRuntime({ dataDir: "./data", defaultAgentClass: Counter });
 * await runtime.start();
 * const r = await runtime.call("dev-1", "add", [2]);
 */
export function createRuntime(options: RuntimeOptions): AgentRuntime {
  return new Runtime(options);
}

const noop = () => {};

const COMMITTED: EventResult = Object.freeze({ status: "committed" });

function toEventResult(o: EventOutcome): EventResult {
  return o.status === "committed" ? COMMITTED : { status: "failed", code: o.code, message: o.message };
}

function toCallResult(o: EventOutcome): CallResult {
  return o.status === "committed" ? { ok: true, value: o.value } : { ok: false, code: o.code, message: o.message };
}

// The per-event resolvers are made by these functions rather than written inline as `resolve: (o) => ...`: tsx
// (esbuild with keepNames) wraps a function literal in a name-giving position in a `__name` call, an
// Object.defineProperty on every event that cost about a tenth of a call's time. A returned arrow has no name to keep.
function eventResolver(resolve: (r: EventResult) => void): (o: EventOutcome) => void {
  return (o) => resolve(toEventResult(o));
}

function callResolver(resolve: (r: CallResult) => void): (o: EventOutcome) => void {
  return (o) => resolve(toCallResult(o));
}

function callFailed(code: string, message: string): Promise<CallResult> {
  return Promise.resolve({ ok: false, code, message });
}

function failed(code: string, message: string): EventResult {
  return { status: "failed", code, message };
}

class Runtime implements AgentRuntime {
  readonly #opts: ResolvedRuntimeOptions;
  readonly #agentsDir: string;
  readonly #defaultClass: AgentClass;
  readonly #classes: Array<{ re: RegExp; cls: AgentClass }>;
  readonly #cells = new Map<string, AgentCell>();
  readonly #transports = new TransportTable();
  readonly #core: RuntimeCore;
  readonly #db: RuntimeDb;
  readonly #alarms: AlarmIndex;
  #commits = 0;
  #known: number;
  #closing = false;
  #lruTick = 0;
  #closed = false;
  #idleTimer: unknown = null;
  #capPending = false;
  readonly directory: { list(kind: string): Array<{ agentId: string; key: string; value: Value }> };

  constructor(options: RuntimeOptions) {
    this.#opts = resolveRuntimeOptions(options);
    this.#defaultClass = options.defaultAgentClass;
    this.#classes = (options.agentClasses ?? []).map((c) => ({ re: globToRegExp(c.pattern), cls: c.agentClass }));
    this.#agentsDir = path.join(options.dataDir, "agents");
    fs.mkdirSync(this.#agentsDir, { recursive: true });
    this.#known = fs.readdirSync(this.#agentsDir).filter((f) => f.endsWith(".db")).length;
    this.#db = new RuntimeDb(path.join(options.dataDir, "runtime.db"), this.#opts.synchronous);
    const clock = options.clock ?? systemClock;
    this.#alarms = new AlarmIndex(this.#db, clock, (ids) => {
      for (const id of ids) this.#enqueueInternal(id, { kind: "alarm" });
    });
    const self = this;
    this.#core = {
      clock,
      random: options.random ?? Math.random,
      logger: options.logger ?? pino({ level: "warn" }),
      engine: options.engine,
      observer: options.observer ?? {},
      storage: {
        maxDatabaseBytes: this.#opts.maxDatabaseBytes,
        synchronous: this.#opts.synchronous,
        lockingMode: this.#opts.lockingMode,
        cacheSizeKiB: this.#opts.cacheSizeKiB,
        pageSizeBytes: this.#opts.pageSizeBytes,
      },
      maxBatchEvents: this.#opts.maxBatchEvents,
      alarms: this.#alarms,
      db: this.#db,
      agentConfig: options.agentConfig ?? {},
      transportOf: (id, connectionId) => this.#transports.get(id, connectionId),
      agentFile: (id) => path.join(this.#agentsDir, `${id}.db`),
      enqueueInternal: (id, event) => this.#enqueueInternal(id, event),
      cellIdle: (id) => this.#cellIdle(id),
      reroute: (id, item) => this.#reroute(id, item),
      destroyFiles: (id) => this.#destroyFiles(id),
      countCommit: () => {
        this.#commits++;
      },
      get closing() {
        return self.#closing;
      },
      listDirectory: (kind) => this.#db.directoryList(kind),
      noteCreated: () => {
        this.#known++;
      },
    };
    this.directory = { list: (kind) => this.#db.directoryList(kind) };
  }

  // ---------- AgentHost ----------

  open(agentId: string, connection: ConnectionInit): Promise<EventResult> {
    if (this.#closing) return Promise.resolve(failed(AGENT_ERRORS.RUNTIME_CLOSED, "runtime is shutting down"));
    if (!isValidAgentId(agentId)) return Promise.resolve(failed(AGENT_ERRORS.INVALID_AGENT_ID, "invalid agent id"));
    this.#transports.set(agentId, connection.id, connection.transport);
    return this.#run(agentId, { kind: "open", init: connection }, false).then((o) => {
      if (o.status === "failed" && this.#transports.get(agentId, connection.id) === connection.transport) {
        this.#dropTransport(agentId, connection.id);
      }
      return toEventResult(o);
    });
  }

  deliver(agentId: string, connectionId: string, message: InboundMessage): DeliverOutcome {
    if (this.#closing) {
      return { accepted: true, done: Promise.resolve(failed(AGENT_ERRORS.RUNTIME_CLOSED, "runtime is shutting down")) };
    }
    if (this.#transports.get(agentId, connectionId) === undefined) {
      return {
        accepted: true,
        done: Promise.resolve(failed(AGENT_ERRORS.CONNECTION_UNKNOWN, "no open connection with this id")),
      };
    }
    const cell = this.#cell(agentId);
    if (cell.userDepth >= this.#opts.mailboxCapacity) {
      this.#core.observer.onMailboxFull?.({ agentId, depth: cell.userDepth });
      return { accepted: false, reason: "mailbox-full", ready: cell.waitForCapacity() };
    }
    const done = new Promise<EventResult>((resolve) =>
      cell.enqueue({
        event: { kind: "message", connectionId, message },
        user: true,
        resolve: eventResolver(resolve),
      }),
    );
    return { accepted: true, done };
  }

  close(agentId: string, connectionId: string, reason: CloseReason): Promise<EventResult> {
    if (this.#transports.get(agentId, connectionId) === undefined) return Promise.resolve({ status: "committed" });
    return this.#run(agentId, { kind: "close", connectionId, reason }, false).then((o) => {
      this.#dropTransport(agentId, connectionId);
      return toEventResult(o);
    });
  }

  // ---------- AgentRuntime ----------

  call(agentId: string, method: string, args: Value[]): Promise<CallResult> {
    if (this.#closing) return callFailed(AGENT_ERRORS.RUNTIME_CLOSED, "runtime is shutting down");
    // An agent in memory had its id checked when its cell was made: the pattern test is skipped on the hot path.
    if (!this.#cells.has(agentId) && !isValidAgentId(agentId))
      return callFailed(AGENT_ERRORS.INVALID_AGENT_ID, "invalid agent id");
    if (!Array.isArray(args)) return callFailed(AGENT_ERRORS.INVALID_OPTION, "args must be an array");
    if (this.#closed) return callFailed(AGENT_ERRORS.RUNTIME_CLOSED, "closed");
    // The event resolves the caller's promise itself: no async function or then around it, so an operator call
    // costs one promise and its result is one microtask closer. Inside the executor, so a fault rejects, never throws.
    return new Promise((resolve) =>
      this.#cell(agentId).enqueue({
        event: { kind: "call", method, args },
        user: false,
        resolve: callResolver(resolve),
      }),
    );
  }

  async start(): Promise<void> {
    this.#alarms.start();
    const pending = this.#alarms.pendingAgents().filter(isValidAgentId);
    await Promise.all(pending.map((id) => this.#run(id, { kind: "wake" }, false)));
  }

  async shutdown(): Promise<void> {
    if (this.#closed) return;
    this.#closing = true;
    this.#alarms.stop();
    this.#clearIdleTimer();
    for (const cell of this.#cells.values()) {
      // Unfinished tasks keep their rows: the next start reports them through onTaskInterrupted.
      for (const task of cell.tasks.values()) task.controller.abort();
      cell.tasks.clear();
    }
    for (let round = 0; round < 100; round++) {
      const busy = [...this.#cells.values()].filter((c) => c.running || c.mailbox.length > 0);
      if (busy.length === 0) break;
      await Promise.all(
        busy.map(
          (c) => new Promise<EventOutcome>((resolve) => c.enqueue({ event: { kind: "wake" }, user: false, resolve })),
        ),
      );
    }
    for (const [id, cell] of this.#cells) {
      cell.failAll(AGENT_ERRORS.RUNTIME_CLOSED, "runtime shut down");
      cell.hibernate();
      this.#core.observer.onHibernate?.({ agentId: id, reason: "shutdown" });
    }
    this.#cells.clear();
    this.#db.close();
    this.#closed = true;
  }

  async destroyAgent(agentId: string): Promise<void> {
    if (!isValidAgentId(agentId)) return;
    const cell = this.#cells.get(agentId);
    if (cell !== undefined) await cell.requestDestroy();
    else this.#destroyFiles(agentId);
  }

  stats(): { active: number; hibernated: number; mailboxDepth: number; commits: number } {
    let depth = 0;
    for (const c of this.#cells.values()) depth += c.mailbox.length;
    const active = this.#cells.size;
    return { active, hibernated: Math.max(0, this.#known - active), mailboxDepth: depth, commits: this.#commits };
  }

  // ---------- registry ----------

  #classFor(id: string): AgentClass {
    for (const c of this.#classes) if (c.re.test(id)) return c.cls;
    return this.#defaultClass;
  }

  /**
   * Get-or-create; touching makes the agent the most recently used. The LRU order is a tick per cell, not the Map's
   * order: moving an entry to the Map's end on every event left deleted slots at its front that every walk from the
   * front (the idle timer's) stepped over, a cost per event that grew with the number of active agents.
   */
  #cell(id: string): AgentCell {
    let cell = this.#cells.get(id);
    if (cell === undefined) {
      cell = new AgentCell(id, this.#classFor(id), this.#core);
      this.#cells.set(id, cell);
      this.#scheduleCap();
    }
    cell.lruTick = ++this.#lruTick;
    return cell;
  }

  /**
   * Eviction runs on a later turn of the event loop, never inside #cell: closing a database is a WAL checkpoint that
   * must stay off the arriving event's path, and by then the caller has enqueued into the new cell, so it is not idle
   * and cannot be evicted before its event ran (the LRU hang fixed in 566a33b).
   */
  #scheduleCap(): void {
    if (this.#cells.size <= this.#opts.maxActiveAgents || this.#capPending) return;
    this.#capPending = true;
    setImmediate(() => {
      this.#capPending = false;
      if (!this.#closing) this.#enforceCap();
    });
  }

  #run(agentId: string, event: AgentEvent, user: boolean): Promise<EventOutcome> {
    if (this.#closed)
      return Promise.resolve({ status: "failed", code: AGENT_ERRORS.RUNTIME_CLOSED, message: "closed" });
    const cell = this.#cell(agentId);
    return new Promise((resolve) => cell.enqueue({ event, user, resolve }));
  }

  #enqueueInternal(agentId: string, event: AgentEvent): void {
    if (this.#closed || !isValidAgentId(agentId)) return;
    if (this.#closing && event.kind !== "wake") return;
    this.#cell(agentId).enqueue({ event, user: false, resolve: noop });
  }

  #reroute(agentId: string, item: QueuedEvent): void {
    if (this.#closing || this.#closed) {
      item.resolve({ status: "failed", code: AGENT_ERRORS.RUNTIME_CLOSED, message: "runtime is shutting down" });
      return;
    }
    const stale = this.#cells.get(agentId);
    // A closed cell still in the registry would bounce the event back here forever.
    if (stale?.closed === true) this.#cells.delete(agentId);
    this.#cell(agentId).enqueue(item);
  }

  #dropTransport(agentId: string, connectionId: string): void {
    this.#transports.delete(agentId, connectionId);
  }

  // ---------- hibernation ----------

  #evict(cell: AgentCell, reason: "idle" | "lru"): void {
    cell.hibernate();
    this.#cells.delete(cell.id);
    this.#core.observer.onHibernate?.({ agentId: cell.id, reason });
  }

  /** Least recently used idle agents leave memory while more than maxActiveAgents are in it. */
  #enforceCap(): void {
    const excess = this.#cells.size - this.#opts.maxActiveAgents;
    if (excess <= 0) return;
    const idle: AgentCell[] = [];
    for (const cell of this.#cells.values()) if (cell.idle) idle.push(cell);
    if (idle.length === 0) return;
    if (excess === 1) {
      let lru = idle[0];
      for (const cell of idle) if (cell.lruTick < lru.lruTick) lru = cell;
      this.#evict(lru, "lru");
      return;
    }
    idle.sort((a, b) => a.lruTick - b.lruTick);
    for (const cell of idle.slice(0, excess)) this.#evict(cell, "lru");
  }

  #cellIdle(_id: string): void {
    if (this.#closing) return;
    this.#enforceCap();
    this.#armIdleTimer();
  }

  #clearIdleTimer(): void {
    if (this.#idleTimer !== null) this.#core.clock.clearTimeout(this.#idleTimer);
    this.#idleTimer = null;
  }

  /**
   * One timer for the whole registry, at the moment the earliest agent turns idle-expired. An armed timer stays: it
   * is due no later than any agent active since (their expiry is at least now + idleTimeoutMs), so the walk over
   * every agent runs only when no timer is armed, not after every event.
   */
  #armIdleTimer(): void {
    if (this.#idleTimer !== null) return;
    if (this.#cells.size === 0) {
      this.#clearIdleTimer();
      return;
    }
    this.#armIdleTimerAt(this.#core.clock.now());
  }

  #sweepIdle(): void {
    if (this.#closing) return;
    const now = this.#core.clock.now();
    let waiting = false;
    for (const cell of [...this.#cells.values()]) {
      if (cell.lastActiveMs + this.#opts.idleTimeoutMs > now) {
        waiting = true;
        continue;
      }
      if (cell.idle) this.#evict(cell, "idle");
      else waiting = true;
    }
    if (waiting) this.#armIdleTimerAt(now);
  }

  #armIdleTimerAt(now: number): void {
    let earliest = Number.POSITIVE_INFINITY;
    for (const cell of this.#cells.values())
      earliest = Math.min(earliest, cell.lastActiveMs + this.#opts.idleTimeoutMs);
    if (earliest === Number.POSITIVE_INFINITY) return;
    // A busy agent past its timeout is looked at again one timeout later rather than in a tight loop.
    const at = earliest <= now ? now + this.#opts.idleTimeoutMs : earliest;
    this.#idleTimer = this.#core.clock.setTimeout(() => {
      this.#idleTimer = null;
      this.#sweepIdle();
    }, at - now);
  }

  #destroyFiles(agentId: string): void {
    this.#cells.delete(agentId);
    for (const transport of this.#transports.take(agentId)) {
      try {
        transport.close("agent destroyed");
      } catch {}
    }
    this.#alarms.forget(agentId);
    const file = path.join(this.#agentsDir, `${agentId}.db`);
    let existed = false;
    for (const f of [file, `${file}-wal`, `${file}-shm`]) {
      try {
        fs.unlinkSync(f);
        if (f === file) existed = true;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT")
          this.#core.logger.warn({ err, agent: agentId }, "unlink failed");
      }
    }
    if (existed) this.#known = Math.max(0, this.#known - 1);
    this.#core.observer.onHibernate?.({ agentId, reason: "destroy" });
  }
}
