import path from "node:path";
import pino from "pino";
import type { Value } from "../codecs/frames.ts";
import { BridgeError } from "../errors/bridge-error.ts";
import type { AgentClass } from "./agent.ts";
import { checkAgentConfig } from "./agent-config-check.ts";
import { DirectoryIndex } from "./directory-index.ts";
import { openAgentsDir } from "./data-dir.ts";
import { AlarmIndex } from "./alarm-index.ts";
import type { AgentCell } from "./cell.ts";
import { systemClock } from "./clock.ts";
import type { RuntimeCore } from "./core.ts";
import { DeferredClose } from "./deferred-close.ts";
import { AGENT_ERRORS } from "./errors.ts";
import type { EventOutcome } from "./events/types.ts";
import type { CloseReason, ConnectionInit, DeliverOutcome, EventResult, InboundMessage } from "./host.ts";
import { guardObserver } from "./guarded-observer.ts";
import { globToRegExp, isValidAgentId } from "./ids.ts";
import { type ResolvedRuntimeOptions, type RuntimeOptions, resolveRuntimeOptions } from "./options.ts";
import { RuntimeDb } from "./runtime-db.ts";
import {
  failEventRetries,
  fireAlarm,
  type HeldEvents,
  heldEvents,
  holdBehindReports,
  queueFlushSettled,
  retryEventLater,
} from "./runtime-alarms.ts";
import { cellIdle, clearIdleTimer } from "./runtime-hibernation.ts";
import { cellFor, destroyFiles, enqueueInternal, reroute, runEvent } from "./runtime-registry.ts";
import { backupRuntime } from "./runtime-snapshot.ts";
import { dropRowsOfMissingAgents, START_WAKE_CONCURRENCY, wakePendingAgents } from "./runtime-start.ts";
import { callFailed, callResolver, eventResolver, failed, toEventResult } from "./runtime-results.ts";
import { StartBackoff } from "./start-backoff.ts";
import { abandonTasks } from "./tasks.ts";
import { TransportTable } from "./transport-table.ts";
import type { AgentRuntime, CallResult, RuntimeBackupOptions, RuntimeBackupResult } from "./types.ts";

/**
 * Creates the agent runtime: the registry of agents (get-or-create by id), their mailboxes, storage, alarms and
 * hibernation. Implements `AgentHost` for transports. Options are validated here: a bad runtime option throws
 * BRIDGE_ERR_INVALID_OPTION, and per-class options (`agentConfig`) are checked by each served class's
 * `validateConfig`, a refusal or a key naming no served class throwing BRIDGE_ERR_CONFIG (agent-config-check.ts).
 *
 * @example
 * const runtime = createRuntime({ dataDir: "./data", defaultAgentClass: Counter });
 * await runtime.start();
 * const r = await runtime.call("dev-1", "add", [2]);
 */
export function createRuntime(options: RuntimeOptions): AgentRuntime {
  return new Runtime(options);
}

/**
 * The runtime's state and its host API (AgentHost for transports, AgentRuntime for operators). The rest is in
 * functions taking the runtime: runtime-registry.ts (get-or-create, runtime events, destroy), runtime-hibernation.ts
 * (the LRU cap and the idle timer), runtime-results.ts (what the host API returns). Exported for those files only:
 * agents/index.ts exports createRuntime, typed as AgentRuntime, so the internal fields below are not public API.
 */
export class Runtime implements AgentRuntime {
  /** Internal (runtime-*.ts). */
  readonly opts: ResolvedRuntimeOptions;
  /** Internal (runtime-registry.ts). The folder of the agent database files. */
  readonly agentsDir: string;
  /** Internal (runtime-registry.ts). */
  readonly defaultClass: AgentClass;
  /** Internal (runtime-registry.ts). The agentClasses patterns, first match wins. */
  readonly classes: Array<{ re: RegExp; cls: AgentClass }>;
  /** Internal (runtime-*.ts). The agents in memory. */
  readonly cells = new Map<string, AgentCell>();
  /** Internal (runtime-registry.ts). Open connections' transports, kept while their agent hibernates. */
  readonly transports = new TransportTable();
  /** Internal (runtime-*.ts). What every cell is lent. */
  readonly core: RuntimeCore;
  /** Internal (runtime-registry.ts). */
  readonly alarms: AlarmIndex;
  /** Events waiting for a later try after their wake failed, by timer (runtime-alarms.ts, retryEventLater). */
  readonly eventRetries = new Map<unknown, HeldEvents>();
  /** Internal (runtime-registry.ts). Agent database files on disk (for the hibernated count). */
  known: number;
  /** Internal (runtime-*.ts). Set once shutdown began. */
  closing = false;
  /** Internal (runtime-registry.ts). The last LRU tick handed out (cellFor). */
  lruTick = 0;
  /** Set once shutdown finished; public as `AgentRuntime.closed`, set by `shutdown` only. */
  closed = false;
  /** Internal (runtime-hibernation.ts). The one idle timer, null when none is armed. */
  idleTimer: unknown = null;
  /** Internal (runtime-hibernation.ts). An LRU eviction is scheduled. */
  capPending = false;
  readonly #db: RuntimeDb;
  #commits = 0;
  readonly directory: { list(kind: string): Array<{ agentId: string; key: string; value: Value }> };

  constructor(options: RuntimeOptions) {
    this.opts = resolveRuntimeOptions(options);
    // Before anything is made or opened: a bad class option fails here, not at each agent's first wake.
    checkAgentConfig(options);
    this.defaultClass = options.defaultAgentClass;
    this.classes = (options.agentClasses ?? []).map((c) => ({ re: globToRegExp(c.pattern), cls: c.agentClass }));
    this.agentsDir = path.join(options.dataDir, "agents");
    // A data dir that is a file, or runtime.db damaged or written by a newer version: a BRIDGE_ERR_STORAGE naming the
    // path and the problem (data-dir.ts, runtime-db-open.ts), not a bare system or SQLite error.
    this.known = openAgentsDir(this.agentsDir).filter((f) => f.endsWith(".db")).length;
    const clock = options.clock ?? systemClock;
    const logger = options.logger ?? pino({ level: "warn" });
    this.#db = new RuntimeDb(path.join(options.dataDir, "runtime.db"), this.opts.synchronous, this.opts.lockingMode);
    try {
      this.alarms = new AlarmIndex(
        this.#db,
        clock,
        (ids) => {
          for (const id of ids) fireAlarm(this, id);
        },
        logger,
      );
    } catch (err) {
      // Its rows could not be read: the file is not left open (and, under EXCLUSIVE, locked) by a runtime never made.
      this.#db.close();
      throw err;
    }
    const self = this;
    // Guarded once, here: no hook that throws reaches the runtime's bookkeeping (guarded-observer.ts).
    const observer = guardObserver(options.observer ?? {}, logger, clock);
    const storage = {
      maxDatabaseBytes: this.opts.maxDatabaseBytes,
      synchronous: this.opts.synchronous,
      lockingMode: this.opts.lockingMode,
      cacheSizeKiB: this.opts.cacheSizeKiB,
      pageSizeBytes: this.opts.pageSizeBytes,
    };
    this.core = {
      clock,
      random: options.random ?? Math.random,
      logger,
      engine: options.engine,
      observer,
      storage,
      closer: new DeferredClose(storage, logger),
      maxBatchEvents: this.opts.maxBatchEvents,
      callbackTimeoutMs: this.opts.callbackTimeoutMs,
      alarms: this.alarms,
      startBackoff: new StartBackoff(clock, logger),
      db: this.#db,
      directoryIndex: new DirectoryIndex(this.#db, clock, logger, observer),
      agentConfig: options.agentConfig ?? {},
      agentWiring: options.agentWiring ?? {},
      transportOf: (id, connectionId) => this.transports.get(id, connectionId),
      agentFile: (id) => path.join(this.agentsDir, `${id}.db`),
      enqueueInternal: (id, event) => enqueueInternal(this, id, event),
      queueFlushSettled: (id, outcome) => queueFlushSettled(this, id, outcome),
      retryEventLater: (id, item, tries) => retryEventLater(this, id, item, tries),
      heldEvents: (id) => heldEvents(this, id),
      holdBehindReports: (id, batch) => holdBehindReports(this, id, batch),
      cellIdle: (id) => cellIdle(this, id),
      reroute: (id, item) => reroute(this, id, item),
      destroyFiles: (id) => destroyFiles(this, id),
      countCommit: () => {
        this.#commits++;
      },
      get closing() {
        return self.closing;
      },
      listDirectory: (kind) => this.#db.directoryList(kind),
      noteCreated: () => {
        this.known++;
      },
    };
    this.directory = {
      list: (kind) => {
        // runtime.db is closed: answered like destroyAgent, rather than a storage error about a closed connection.
        if (this.closed) throw new BridgeError(AGENT_ERRORS.RUNTIME_CLOSED, "runtime is shut down", { kind });
        return this.#db.directoryList(kind);
      },
    };
  }

  // ---------- AgentHost ----------

  open(agentId: string, connection: ConnectionInit): Promise<EventResult> {
    if (this.closing) return Promise.resolve(failed(AGENT_ERRORS.RUNTIME_CLOSED, "runtime is shutting down"));
    if (!isValidAgentId(agentId)) return Promise.resolve(failed(AGENT_ERRORS.INVALID_AGENT_ID, "invalid agent id"));
    this.transports.set(agentId, connection.id, connection.transport);
    return runEvent(this, agentId, { kind: "open", init: connection }, false).then((o) => {
      if (o.status === "failed" && this.transports.get(agentId, connection.id) === connection.transport) {
        this.transports.delete(agentId, connection.id);
      }
      return toEventResult(o);
    });
  }

  deliver(agentId: string, connectionId: string, message: InboundMessage): DeliverOutcome {
    if (this.closing) {
      return { accepted: true, done: Promise.resolve(failed(AGENT_ERRORS.RUNTIME_CLOSED, "runtime is shutting down")) };
    }
    if (this.transports.get(agentId, connectionId) === undefined) {
      return {
        accepted: true,
        done: Promise.resolve(failed(AGENT_ERRORS.CONNECTION_UNKNOWN, "no open connection with this id")),
      };
    }
    const cell = cellFor(this, agentId);
    if (cell.userDepth >= this.opts.mailboxCapacity) {
      this.core.observer.onMailboxFull?.({ agentId, depth: cell.userDepth });
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
    if (this.transports.get(agentId, connectionId) === undefined) return Promise.resolve({ status: "committed" });
    return runEvent(this, agentId, { kind: "close", connectionId, reason }, false).then((o) => {
      this.transports.delete(agentId, connectionId);
      return toEventResult(o);
    });
  }

  // ---------- AgentRuntime ----------

  call(agentId: string, method: string, args: Value[]): Promise<CallResult> {
    if (this.closing) return callFailed(AGENT_ERRORS.RUNTIME_CLOSED, "runtime is shutting down");
    // An agent in memory had its id checked when its cell was made: the pattern test is skipped on the hot path.
    if (!this.cells.has(agentId) && !isValidAgentId(agentId))
      return callFailed(AGENT_ERRORS.INVALID_AGENT_ID, "invalid agent id");
    if (!Array.isArray(args)) return callFailed(AGENT_ERRORS.INVALID_OPTION, "args must be an array");
    if (this.closed) return callFailed(AGENT_ERRORS.RUNTIME_CLOSED, "closed");
    // The event resolves the caller's promise itself: no async function or then around it, so an operator call
    // costs one promise and its result is one microtask closer. Inside the executor, so a fault rejects, never throws.
    return new Promise((resolve) =>
      cellFor(this, agentId).enqueue({
        event: { kind: "call", method, args },
        user: false,
        resolve: callResolver(resolve),
      }),
    );
  }

  async start(): Promise<void> {
    // Its databases are closed: answered like the other methods after shutdown, rather than a bare "database
    // connection is not open", and with no alarm timer armed to keep the process alive.
    if (this.closing || this.closed) {
      throw new BridgeError(AGENT_ERRORS.RUNTIME_CLOSED, "runtime is shut down; create a new one to start again");
    }
    // Before the alarms arm and pending agents wake: a row of an agent whose database is gone would make it again.
    dropRowsOfMissingAgents(this);
    this.alarms.start();
    const pending = this.alarms.pendingAgents().filter(isValidAgentId);
    await wakePendingAgents(this, pending, Math.min(this.opts.maxActiveAgents, START_WAKE_CONCURRENCY));
  }

  async shutdown(): Promise<void> {
    if (this.closed) return;
    this.closing = true;
    this.alarms.stop();
    this.core.directoryIndex.stop();
    clearIdleTimer(this);
    failEventRetries(this);
    // Unfinished tasks keep their rows: the next start reports them through onTaskInterrupted.
    for (const cell of this.cells.values()) abandonTasks(cell);
    for (let round = 0; round < 100; round++) {
      const busy = [...this.cells.values()].filter((c) => c.running || c.mailbox.length > 0);
      if (busy.length === 0) break;
      await Promise.all(
        busy.map(
          (c) => new Promise<EventOutcome>((resolve) => c.enqueue({ event: { kind: "wake" }, user: false, resolve })),
        ),
      );
    }
    for (const [id, cell] of this.cells) {
      cell.failAll(AGENT_ERRORS.RUNTIME_CLOSED, "runtime shut down");
      // Already out of memory, and counted then: an agent retired while the shutdown waited for its hung callback.
      // Events that waited behind it were rerouted to a fresh cell, which replaced it here; with none but the
      // shutdown's own wake (which wakes no fresh instance), its closed cell is still listed.
      if (cell.closed) continue;
      cell.hibernate();
      this.core.observer.onHibernate?.({ agentId: id, reason: "shutdown" });
    }
    this.cells.clear();
    // Hibernated databases whose close still waits for an fsync: closed before the process may end.
    this.core.closer.settleAll();
    // Alarm rows runtime.db refused during the run get one last try: the next start reads them.
    this.alarms.saveUnsaved();
    this.#db.close();
    this.closed = true;
    // A descriptor of the closer whose fsync is still queued closes when that returns: awaited, so that a runtime
    // started after this one on the same files never has its locks dropped by it (leftover-descriptors.ts).
    await this.core.closer.idle();
  }

  async destroyAgent(agentId: string): Promise<boolean> {
    if (!isValidAgentId(agentId)) return false;
    // The runtime database is closed: answered like the other methods, rather than a raw SQLite error with the files
    // of the agent (its database, alarm row) left half removed.
    if (this.closed) throw new BridgeError(AGENT_ERRORS.RUNTIME_CLOSED, "runtime is shut down", { agent: agentId });
    const cell = this.cells.get(agentId);
    if (cell === undefined) return destroyFiles(this, agentId);
    await cell.requestDestroy();
    return true;
  }

  backup(targetDir: string, options?: RuntimeBackupOptions): Promise<RuntimeBackupResult> {
    // Async: a refusal (closed runtime, bad option) is a rejection like a failed copy, never a throw.
    return Promise.resolve().then(() => backupRuntime(this, targetDir, options));
  }

  stats(): { active: number; hibernated: number; mailboxDepth: number; commits: number } {
    let depth = 0;
    for (const c of this.cells.values()) depth += c.mailbox.length;
    const active = this.cells.size;
    return { active, hibernated: Math.max(0, this.known - active), mailboxDepth: depth, commits: this.#commits };
  }
}
