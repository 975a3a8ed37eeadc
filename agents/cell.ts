import fs from "node:fs";
import { performance } from "node:perf_hooks";
import type { Value } from "../codecs/frames.ts";
import { BridgeError } from "../errors/bridge-error.ts";
import { type Agent, type AgentClass, constructAgent, ROLLED_BACK } from "./agent.ts";
import type { ConnectionImpl } from "./connection.ts";
import type { RuntimeCore } from "./core.ts";
import { afterBatch, failure, releaseOutputs, runBatch } from "./cell-batch.ts";
import { AGENT_ERRORS, errorCode } from "./errors.ts";
import type { QueuedEvent } from "./events/types.ts";
import { type Output, Scope } from "./scope.ts";
import { readStateChunks, writeStateChunks } from "./state-store.ts";
import { openAgentDatabase, SqlRunner } from "./storage.ts";
import type { RunningTask } from "./tasks.ts";
import type { Connection } from "./types.ts";
import { decodeValue, encodeValue } from "./value-codec.ts";

/** Starts a drain on the next microtask (see enqueue). */
const RESOLVED = Promise.resolve();

/**
 * One agent in memory: its mailbox, database handle, connections, state cache and running tasks.
 * Events run strictly one at a time (the input gate is `running`); the events waiting when a batch starts run in one
 * transaction with a SAVEPOINT each (group commit), and their outputs leave only after COMMIT (output gate).
 */
export class AgentCell {
  readonly id: string;
  readonly cls: AgentClass;
  readonly core: RuntimeCore;
  agent: Agent<Value> | null = null;
  readonly connections = new Map<string, ConnectionImpl>();
  readonly mailbox: QueuedEvent[] = [];
  readonly tasks = new Map<string, RunningTask>();
  /** Deliver events waiting (the bounded part of the mailbox). */
  userDepth = 0;
  running = false;
  closed = false;
  lastActiveMs: number;
  /** The runtime's LRU order: a higher tick was used more recently (see Runtime #cell). */
  lruTick = 0;
  /** Schedules or queue retry times changed: recompute the agent's next alarm after the batch. */
  alarmDirty = false;
  /** Queue items were added: flush after the batch. */
  queueDirty = false;
  #sql: SqlRunner | null = null;
  #state: Value | undefined = undefined;
  #stateChunks = 0;
  #scope: Scope | null = null;
  #capacityWaiters: Array<() => void> = [];
  #destroy: { promise: Promise<void>; resolve: () => void } | null = null;
  /** One closure per cell, not one per batch: the microtask that starts a drain. Never rejects. */
  readonly #startDrain = (): void => {
    try {
      this.#drain();
    } catch (err) {
      this.#drainFailed(err);
    }
  };

  constructor(id: string, cls: AgentClass, core: RuntimeCore) {
    this.id = id;
    this.cls = cls;
    this.core = core;
    this.lastActiveMs = core.clock.now();
  }

  // ---------- mailbox ----------

  enqueue(item: QueuedEvent): void {
    if (this.closed) {
      // A hibernated or destroyed cell never drains again: the event goes to the agent's current cell (or fails
      // with BRIDGE_ERR_RUNTIME_CLOSED), so no event is ever left unresolved here.
      this.core.reroute(this.id, item);
      return;
    }
    this.mailbox.push(item);
    if (item.user) this.userDepth++;
    // No clock read here: an agent with events waiting is running, and a running agent is never idle-evicted; the
    // drain stamps lastActiveMs when it stops.
    if (!this.running) {
      // Start on the next microtask, so events delivered in the same tick share one group commit. A resolved
      // promise's then, not queueMicrotask: Node wraps each queueMicrotask callback in an AsyncResource, which cost
      // more than the rest of the mailbox's work for a one-event batch.
      this.running = true;
      RESOLVED.then(this.#startDrain);
    }
  }

  /** Resolves when the bounded part of the mailbox has room again, or the cell closed (deliver again to learn why). */
  waitForCapacity(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => this.#capacityWaiters.push(resolve));
  }

  #releaseCapacityWaiters(): void {
    if (this.#capacityWaiters.length === 0) return;
    const waiters = this.#capacityWaiters;
    this.#capacityWaiters = [];
    for (const w of waiters) w();
  }

  /** Hands every queued event of a closed cell on (see enqueue) and wakes transports waiting for capacity. */
  #evacuate(): void {
    const items = this.mailbox.splice(0);
    this.userDepth = 0;
    this.#releaseCapacityWaiters();
    for (const item of items) this.core.reroute(this.id, item);
  }

  /** Whether the database handle is open (woken and not dropped after a fault or hibernation). */
  get inMemory(): boolean {
    return this.#sql !== null;
  }

  get idle(): boolean {
    return !this.running && this.mailbox.length === 0 && this.tasks.size === 0 && this.#destroy === null;
  }

  /**
   * Runs batches until the mailbox is empty. Synchronous while the batches finish synchronously (see runBatch);
   * an async batch hands the rest of the drain to its promise, and `running` stays true until the drain stops.
   */
  #drain(): void {
    let handedOff = false;
    try {
      while (this.mailbox.length > 0 && !this.closed) {
        const batch = this.mailbox.splice(0, this.core.maxBatchEvents);
        for (const item of batch) if (item.user) this.userDepth--;
        this.#releaseCapacityWaiters();
        if (this.#sql === null) {
          try {
            this.#wake();
          } catch (err) {
            for (const item of batch) item.resolve(failure(err));
            this.#reportError(err, "wake");
            continue;
          }
          batch.unshift({ event: { kind: "start" }, user: false, resolve: () => {} });
        }
        let pending: Promise<void> | undefined;
        try {
          pending = runBatch(this, batch, this.#afterAsyncBatch);
        } catch (err) {
          this.#abandonBatch(batch, err);
        }
        if (pending !== undefined) {
          handedOff = true;
          pending.catch((err: unknown) => {
            // A storage fault outside any handler (BEGIN or ROLLBACK failing): see #abandonBatch.
            this.#abandonBatch(batch, err);
            this.#afterAsyncBatch();
          });
          return;
        }
        if (this.#destroy !== null && this.mailbox.length === 0) break;
      }
    } finally {
      if (!handedOff) this.#stopDrain();
    }
  }

  /** The rest of a drain after an async batch, run by the batch in the turn it committed in. Never throws. */
  readonly #afterAsyncBatch = (): void => {
    try {
      if (this.#destroy !== null && this.mailbox.length === 0) this.#stopDrain();
      else this.#drain();
    } catch (err) {
      this.#drainFailed(err);
    }
  };

  #drainFailed(err: unknown): void {
    this.core.logger.error({ err, agent: this.id }, "mailbox drain failed");
  }

  /** The drain stopped: hand a closed cell's rest on, finish a destroy, or tell the runtime the cell is idle. */
  #stopDrain(): void {
    this.running = false;
    this.lastActiveMs = this.core.clock.now();
    try {
      if (this.closed) this.#evacuate();
      else if (this.#destroy !== null && this.mailbox.length === 0) this.#finishDestroy();
      else this.core.cellIdle(this.id);
    } catch (err) {
      this.#reportError(err, "lifecycle");
    }
  }

  #abandonBatch(batch: QueuedEvent[], err: unknown): void {
    this.#scope = null;
    try {
      if (this.#sql?.inTransaction) this.#sql.control("ROLLBACK");
    } catch {}
    for (const item of batch) item.resolve(failure(err));
    this.#reportError(err, "batch");
    // Memory may now differ from the database: drop the handle and object so the next event reloads both.
    try {
      this.#sql?.db.close();
    } catch {}
    this.#sql = null;
    this.agent = null;
    this.connections.clear();
  }

  #wake(): void {
    const t0 = performance.now();
    const file = this.core.agentFile(this.id);
    const existed = fs.existsSync(file);
    const sql = new SqlRunner(openAgentDatabase(file, this.core.storage));
    if (!existed) this.core.noteCreated();
    this.#sql = sql;
    const stored = readStateChunks(sql);
    this.#state = stored === null ? undefined : decodeValue(stored.bytes);
    this.#stateChunks = stored?.chunks ?? 0;
    const env = {
      clock: this.core.clock,
      random: this.core.random,
      engine: this.core.engine,
      logger: this.core.logger.child({ agent: this.id }),
      config: this.core.agentConfig[this.cls.name] ?? {},
      directory: {
        put: (kind: string, key: string, value: Value | null) => this.directoryPut(kind, key, value),
        list: (kind: string) => this.core.listDirectory(kind),
      },
    };
    this.agent = constructAgent(this.cls, { id: this.id, env, cell: this });
    this.core.observer.onWake?.({ agentId: this.id, durationMs: performance.now() - t0 });
  }

  // ---------- scopes: writes, outputs, undo ----------

  get inEvent(): boolean {
    return this.#scope !== null;
  }

  /** The batch runner (cell-batch.ts) sets the scope of the event it runs, and clears it after. */
  setScope(scope: Scope | null): void {
    this.#scope = scope;
  }

  /** Runs `fn` in the current event, or alone in its own transaction when no event runs (a timer in agent code). */
  write<T>(fn: () => T): T {
    if (this.#scope !== null) return fn();
    const sql = this.sqlRunner();
    const scope = new Scope(null, true);
    this.#scope = scope;
    sql.control("BEGIN");
    try {
      const result = fn();
      sql.control("COMMIT");
      this.#scope = null;
      releaseOutputs(this, scope.outputs);
      if (!this.running) afterBatch(this);
      return result;
    } catch (err) {
      if (sql.inTransaction) sql.control("ROLLBACK");
      this.#scope = null;
      scope.rollback();
      throw err;
    }
  }

  onUndo(step: () => void): void {
    this.#scope?.addUndo(step);
  }

  output(o: Output): void {
    if (this.#scope !== null) this.#scope.addOutput(o);
    else releaseOutputs(this, [o]);
  }

  /** Synchronous savepoint: `fn`'s writes and in-memory changes roll back alone when it throws. */
  nested<T>(fn: () => T): T {
    if (this.#scope === null) return this.write(() => this.nested(fn));
    const sql = this.sqlRunner();
    const scope = new Scope(this.#scope);
    this.#scope = scope;
    sql.control("SAVEPOINT nest");
    try {
      const result = fn();
      if (result instanceof Promise) {
        throw new BridgeError(AGENT_ERRORS.INVALID_OPTION, "transaction() takes a synchronous function", {
          field: "fn",
        });
      }
      sql.control("RELEASE nest");
      this.#scope = scope.parent;
      scope.mergeIntoParent();
      return result;
    } catch (err) {
      this.#unwindNested(scope);
      throw err;
    }
  }

  /** Savepoint around an awaited hook or callback inside an event (rpc method, schedule, queue item). */
  async nestedAsync<T>(fn: () => Promise<T>): Promise<T> {
    const sql = this.sqlRunner();
    const scope = new Scope(this.#scope);
    this.#scope = scope;
    sql.control("SAVEPOINT nest");
    try {
      const result = await fn();
      sql.control("RELEASE nest");
      this.#scope = scope.parent;
      scope.mergeIntoParent();
      return result;
    } catch (err) {
      this.#unwindNested(scope);
      throw err;
    }
  }

  #unwindNested(scope: Scope): void {
    const sql = this.sqlRunner();
    if (sql.inTransaction) {
      sql.control("ROLLBACK TO nest");
      sql.control("RELEASE nest");
    }
    this.#scope = scope.parent;
    scope.rollback();
    // A savepoint rolled back without an error report (a schedule or queue callback that will be retried, a
    // transaction() whose error the caller caught) undoes rows the agent may have cached too.
    this.#rolledBack();
  }

  /** Tells the agent that rows it wrote were rolled back, so it drops what it cached of them (see ROLLED_BACK). */
  #rolledBack(): void {
    try {
      this.agent?.[ROLLED_BACK]();
    } catch (hookErr) {
      this.core.logger.error({ err: hookErr, agent: this.id }, "dropping cached rows failed");
    }
  }

  // ---------- storage and state ----------

  sqlRunner(): SqlRunner {
    if (this.#sql === null) {
      throw new BridgeError(AGENT_ERRORS.AGENT_HIBERNATED, `agent ${this.id} is not in memory`, { agent: this.id });
    }
    return this.#sql;
  }

  getState(): Value | undefined {
    return this.#state;
  }

  /** Writes the encoded state in chunks in the current transaction; the scope's undo restores the chunk count. */
  writeStateBytes(scope: Scope, bytes: Uint8Array): void {
    const previousChunks = this.#stateChunks;
    this.#stateChunks = writeStateChunks(this.sqlRunner(), bytes, previousChunks);
    scope.addUndo(() => {
      this.#stateChunks = previousChunks;
    });
  }

  setAgentState(next: Value, source: Connection | null): void {
    const agent = this.agent!;
    agent.validateStateChange(next, source);
    encodeValue(next); // a value that cannot be stored fails here, at the call, not at commit
    this.write(() => {
      const previous = this.#state;
      this.#state = next;
      const scope = this.#scope!;
      scope.addUndo(() => {
        this.#state = previous;
      });
      if (!scope.root.implicit) {
        scope.stateSource = { source: source?.id ?? null };
        return;
      }
      // Outside an event there is no event end to persist at: persist and broadcast with this write.
      this.writeStateBytes(scope, encodeValue(next));
      for (const conn of this.connections.values()) {
        if (conn.protocol && conn.id !== source?.id) {
          scope.addOutput({ type: "protocol", connectionId: conn.id, message: { type: "state", state: next } });
        }
      }
      scope.addOutput({
        type: "action",
        run: () => {
          Promise.resolve()
            .then(() => agent.onStateChanged(next, source))
            .catch((err: unknown) => this.#reportError(err, "onStateChanged"));
        },
      });
    });
  }

  /** The fleet directory: this agent's row in its own DB now, the runtime's index after commit. */
  directoryPut(kind: string, key: string, value: Value | null): void {
    this.write(() => {
      const sql = this.sqlRunner();
      if (value === null) sql.run("DELETE FROM _bridge_directory WHERE kind = ? AND key = ?", kind, key);
      else
        sql.run(
          "INSERT OR REPLACE INTO _bridge_directory (kind, key, value) VALUES (?, ?, ?)",
          kind,
          key,
          encodeValue(value),
        );
      this.core.alarms.markPending(this.id);
      this.output({ type: "action", run: () => this.core.db.directoryPut(this.id, kind, key, value) });
    });
  }

  #reportError(err: unknown, event: string): void {
    this.core.observer.onError?.({ agentId: this.id, event, code: errorCode(err) });
    // Before onError, and whatever a subclass's onError does: memory must not stay ahead of the rolled-back rows.
    this.#rolledBack();
    try {
      if (this.agent !== null) this.agent.onError(err, { event });
      else this.core.logger.error({ err, agent: this.id, event }, "agent event failed");
    } catch (hookErr) {
      this.core.logger.error({ err: hookErr, agent: this.id }, "onError threw");
    }
  }

  reportError(err: unknown, event: string): void {
    this.#reportError(err, event);
  }

  // ---------- lifecycle ----------

  /** Releases the object and DB handle (hibernation or shutdown); connections stay with the host. */
  hibernate(): void {
    if (this.closed) return;
    this.closed = true;
    this.#sql?.db.close();
    this.#sql = null;
    this.agent = null;
    this.connections.clear();
    // Nothing may wait on a closed cell: a running drain hands its rest on when it stops (see #drain).
    if (!this.running) this.#evacuate();
    else this.#releaseCapacityWaiters();
  }

  requestDestroy(): Promise<void> {
    if (this.#destroy !== null) return this.#destroy.promise;
    let resolve!: () => void;
    const promise = new Promise<void>((r) => {
      resolve = r;
    });
    this.#destroy = { promise, resolve };
    if (!this.running) this.#finishDestroy();
    return promise;
  }

  #finishDestroy(): void {
    const pending = this.#destroy!;
    for (const task of this.tasks.values()) task.controller.abort();
    this.tasks.clear();
    for (const item of this.mailbox.splice(0)) {
      item.resolve({ status: "failed", code: AGENT_ERRORS.RUNTIME_CLOSED, message: "agent destroyed" });
    }
    this.userDepth = 0;
    this.hibernate();
    try {
      this.core.destroyFiles(this.id);
    } finally {
      pending.resolve();
    }
  }

  /** Fails every queued event (shutdown of a cell that cannot run). */
  failAll(code: string, message: string): void {
    for (const item of this.mailbox.splice(0)) item.resolve({ status: "failed", code, message });
    this.userDepth = 0;
    this.#releaseCapacityWaiters();
  }
}
