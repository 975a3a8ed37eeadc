import type { Value } from "../codecs/frames.ts";
import { BridgeError } from "../errors/bridge-error.ts";
import type { Agent, AgentClass } from "./agent.ts";
import type { ConnectionImpl } from "./connection.ts";
import type { RuntimeCore } from "./core.ts";
import { releaseOutputs } from "./cell-after-batch.ts";
import { failAll, hibernate, requestDestroy } from "./cell-lifecycle.ts";
import { drainContinuation, drainStarter, enqueue, waitForCapacity } from "./cell-mailbox.ts";
import { nested, nestedAsync, reportError, write } from "./cell-scope.ts";
import { directoryPut, setAgentState, writeStateBytes } from "./cell-state.ts";
import { AGENT_ERRORS } from "./errors.ts";
import type { QueuedEvent } from "./events/types.ts";
import type { Handover } from "./retirement.ts";
import type { Output, Scope } from "./scope.ts";
import type { SqlRunner } from "./sql-runner.ts";
import type { RunningTask } from "./tasks.ts";
import type { Connection } from "./types.ts";

/**
 * One agent in memory: its mailbox, database handle, connections, state cache and running tasks.
 * Events run strictly one at a time (the input gate is `running`); the events waiting when a batch starts run in one
 * transaction with a SAVEPOINT each (group commit), and their outputs leave only after COMMIT (output gate).
 *
 * This class is the cell's data and the methods the rest of the runtime calls; the machinery behind them is in
 * functions taking the cell, one concern per file:
 * - cell-mailbox.ts: the mailbox, its capacity waiters and the drain loop;
 * - cell-batch.ts: one batch: group commit, savepoints per event;
 * - cell-after-batch.ts: after a commit: the output gate opening, the next alarm and queue flush;
 * - cell-scope.ts: writes outside events, nested savepoints, rollbacks and error reports;
 * - cell-state.ts: the agent state and directory writes;
 * - cell-lifecycle.ts: wake, hibernate, destroy.
 * The fields under "internal" are public only so those files can reach them; nothing else may touch them.
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
  /** When the agent last finished work, on the monotonic clock: idle eviction counts from it. */
  lastActiveMs: number;
  /** The runtime's LRU order: a higher tick was used more recently (see runtime-registry.ts, cellFor). */
  lruTick = 0;
  /** Schedules or queue retry times changed: recompute the agent's next alarm after the batch. */
  alarmDirty = false;
  /** Queue items were added: flush after the batch. */
  queueDirty = false;
  /**
   * Set when a callback ran past callbackTimeoutMs (the timeout): the agent instance is cut off and the cell leaves
   * memory once its batch ends (retirement.ts). Null while the instance is live.
   */
  retired: BridgeError | null = null;
  /**
   * What the retired instance could not act on, for the fresh one (retirement.ts): failures for its onError,
   * connections to send the committed state. Null until there is something.
   */
  handover: Handover | null = null;

  // ---------- internal: the cell-*.ts files only ----------

  /** Internal. The database handle, null while the agent is not in memory; everyone else calls sqlRunner(). */
  sql: SqlRunner | null = null;
  /** Internal (cell-state.ts, cell-lifecycle.ts). The decoded state; everyone else calls getState(). */
  state: Value | undefined = undefined;
  /** Internal (cell-state.ts, cell-lifecycle.ts). How many chunk rows the stored state spans. */
  stateChunks = 0;
  /** Internal (cell-scope.ts, cell-batch.ts through setScope). The innermost open scope; null between events. */
  scope: Scope | null = null;
  /** Internal (cell-mailbox.ts). Transports waiting for room in the bounded part of the mailbox. */
  capacityWaiters: Array<() => void> = [];
  /** Internal (cell-lifecycle.ts, cell-mailbox.ts). Set once destroyAgent asked; the destroy waits for the drain. */
  pendingDestroy: { promise: Promise<void>; resolve: () => void } | null = null;
  /** Internal (cell-mailbox.ts). The microtask that starts a drain: one closure per cell, not one per batch. */
  readonly startDrain: () => void = drainStarter(this);
  /** Internal (cell-mailbox.ts, cell-batch.ts). The rest of a drain after an async batch: one closure per cell. */
  readonly afterAsyncBatch: () => void = drainContinuation(this);

  constructor(id: string, cls: AgentClass, core: RuntimeCore) {
    this.id = id;
    this.cls = cls;
    this.core = core;
    this.lastActiveMs = core.clock.monotonicNow();
  }

  // ---------- mailbox (cell-mailbox.ts) ----------

  enqueue(item: QueuedEvent): void {
    enqueue(this, item);
  }

  /** Resolves when the bounded part of the mailbox has room again, or the cell closed (deliver again to learn why). */
  waitForCapacity(): Promise<void> {
    return waitForCapacity(this);
  }

  /** Whether the database handle is open (woken and not dropped after a fault or hibernation). */
  get inMemory(): boolean {
    return this.sql !== null;
  }

  get idle(): boolean {
    return !this.running && this.mailbox.length === 0 && this.tasks.size === 0 && this.pendingDestroy === null;
  }

  // ---------- scopes: writes, outputs, undo (cell-scope.ts) ----------

  get inEvent(): boolean {
    return this.scope !== null;
  }

  /** The batch runner (cell-batch.ts) sets the scope of the event it runs, and clears it after. */
  setScope(scope: Scope | null): void {
    this.scope = scope;
  }

  /** Runs `fn` in the current event, or alone in its own transaction when no event runs (a timer in agent code). */
  write<T>(fn: () => T): T {
    return write(this, fn);
  }

  onUndo(step: () => void): void {
    this.scope?.addUndo(step);
  }

  /**
   * Defers `write` to the end of the current scope (the event, a transaction(), a write outside events), still inside
   * its transaction: it runs once the scope's work ended well, and a throw from it fails the scope. Outside any scope,
   * at once (in a transaction of its own).
   */
  deferWrite(write: () => void): void {
    if (this.scope !== null) this.scope.addDeferredWrite(write);
    else this.write(write);
  }

  /** Held behind the output gate inside an event; outside one (nothing to commit) it leaves at once. */
  output(o: Output): void {
    if (this.scope !== null) this.scope.addOutput(o);
    else releaseOutputs(this, [o]);
  }

  /** Synchronous savepoint: `fn`'s writes and in-memory changes roll back alone when it throws. */
  nested<T>(fn: () => T): T {
    return nested(this, fn);
  }

  /** Savepoint around an awaited hook or callback inside an event (rpc method, schedule, queue item). */
  nestedAsync<T>(fn: () => Promise<T>): Promise<T> {
    return nestedAsync(this, fn);
  }

  /** Tells the observer and the agent's onError that an event's work failed (after its rollback). */
  reportError(err: unknown, event: string): void {
    reportError(this, err, event);
  }

  // ---------- storage and state (cell-state.ts) ----------

  sqlRunner(): SqlRunner {
    if (this.sql === null) throw this.notInMemory();
    return this.sql;
  }

  /**
   * The agent instance of this cell, for a call of agent code that needs it (setState, schedule, queue): an instance
   * kept after it hibernated reaches a cell whose agent is gone, and is told so (BRIDGE_ERR_AGENT_HIBERNATED) rather
   * than failing with a TypeError.
   */
  liveAgent(): Agent<Value> {
    if (this.agent === null) throw this.notInMemory();
    return this.agent;
  }

  /** What a call of agent code into a cell out of memory throws (BRIDGE_ERR_AGENT_HIBERNATED). */
  notInMemory(): BridgeError {
    return new BridgeError(AGENT_ERRORS.AGENT_HIBERNATED, `agent ${this.id} is not in memory`, { agent: this.id });
  }

  getState(): Value | undefined {
    return this.state;
  }

  /** Writes the encoded state in chunks in the current transaction; the scope's undo restores the chunk count. */
  writeStateBytes(scope: Scope, bytes: Uint8Array): void {
    writeStateBytes(this, scope, bytes);
  }

  setAgentState(next: Value, source: Connection | null): void {
    setAgentState(this, next, source);
  }

  /** The fleet directory: this agent's row in its own DB now, the runtime's index after commit. */
  directoryPut(kind: string, key: string, value: Value | null): void {
    directoryPut(this, kind, key, value);
  }

  // ---------- lifecycle (cell-lifecycle.ts) ----------

  /** Releases the object and DB handle (hibernation or shutdown); connections stay with the host. */
  hibernate(): void {
    hibernate(this);
  }

  requestDestroy(): Promise<void> {
    return requestDestroy(this);
  }

  /** Fails every queued event (shutdown of a cell that cannot run). */
  failAll(code: string, message: string): void {
    failAll(this, code, message);
  }
}
