import type { Logger } from "pino";
import type { Value } from "../codecs/frames.ts";
import type { AlarmIndex } from "./alarm-index.ts";
import type { DeferredClose } from "./deferred-close.ts";
import type { DirectoryIndex } from "./directory-index.ts";
import type { ReasoningEngine } from "./engine.ts";
import type { AgentEvent, EventOutcome, QueuedEvent } from "./events/types.ts";
import type { ConnectionTransport } from "./host.ts";
import type { RuntimeDb } from "./runtime-db.ts";
import type { StartBackoff } from "./start-backoff.ts";
import type { StorageSettings } from "./storage.ts";
import type { AgentWiring, Clock, RuntimeObserver } from "./types.ts";

/** What the runtime lends each agent cell: shared services, never another agent's internals. */
export interface RuntimeCore {
  readonly clock: Clock;
  readonly random: () => number;
  readonly logger: Logger;
  readonly engine: ReasoningEngine | undefined;
  /** The embedder's observer, guarded: its hooks never throw (guarded-observer.ts). */
  readonly observer: RuntimeObserver;
  readonly storage: StorageSettings;
  /** Closes hibernated agents' databases with their fsyncs off the event loop (deferred-close.ts). */
  readonly closer: DeferredClose;
  /** Most events run in one group commit. */
  readonly maxBatchEvents: number;
  /**
   * Longest a callback awaited inside an event (schedule, queue item, operator call, hook) may take to settle, ms
   * (agents/callback-timeout.ts).
   */
  readonly callbackTimeoutMs: number;
  readonly alarms: AlarmIndex;
  /** Agents whose onStart timed out in a row, and the wait before their next wake (start-backoff.ts). */
  readonly startBackoff: StartBackoff;
  readonly db: RuntimeDb;
  /** The fleet directory's index writes after each commit, and the retries of those runtime.db refuses. */
  readonly directoryIndex: DirectoryIndex;
  /** Each class's options, by class name (`AgentEnv.config`). */
  readonly agentConfig: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  /** What the embedder wires into each class's agents, by class name (`AgentEnv.wiring`). */
  readonly agentWiring: Readonly<Record<string, AgentWiring>>;
  /** The live transport of an agent's open connection, kept while it hibernates; undefined when none. */
  transportOf(agentId: string, connectionId: string): ConnectionTransport | undefined;
  agentFile(agentId: string): string;
  /** Delivers a runtime event (alarm, task result) to an agent, waking it; bypasses the mailbox capacity. */
  enqueueInternal(agentId: string, event: AgentEvent): void;
  /**
   * An event reached a cell that closed (hibernated, retired or destroyed): it runs in the agent's current cell, woken
   * if needed (while a shutdown drains too), or fails with BRIDGE_ERR_RUNTIME_CLOSED once the runtime has shut down.
   * Never leaves it unresolved.
   */
  reroute(agentId: string, item: QueuedEvent): void;
  /** The queue flush of `agentId` settled: one that failed as a whole sets the agent's alarm again (runtime-alarms.ts). */
  queueFlushSettled(agentId: string, outcome: EventOutcome): void;
  /**
   * Runs `item` (an event nothing would send again) in the agent's current cell later: its `tries`-th try waits as a
   * failed alarm's would (1 s doubling to 5 min, runtime-alarms.ts).
   */
  retryEventLater(agentId: string, item: QueuedEvent, tries: number): void;
  /** The agent's events that retryEventLater holds (a wake's start event must leave their tasks' rows to them). */
  heldEvents(agentId: string): QueuedEvent[];
  /**
   * `batch`, just taken from the agent's mailbox, less the task reports that must wait behind reports of the same
   * task held by retryEventLater (they join those): a task's reports reach the agent in the order it made them.
   */
  holdBehindReports(agentId: string, batch: QueuedEvent[]): QueuedEvent[];
  /** A cell finished its mailbox: eviction bookkeeping. */
  cellIdle(agentId: string): void;
  /** Destroys an agent's files and index entries (the cell already drained); true when it had any. */
  destroyFiles(agentId: string): boolean;
  countCommit(): void;
  /** An agent database file was created (for the hibernated count). */
  noteCreated(): void;
  /** True once shutdown began: task outcomes are ignored so their rows stay for onTaskInterrupted. */
  readonly closing: boolean;
  /** Directory entries of `kind` (read side). */
  listDirectory(kind: string): Array<{ agentId: string; key: string; value: Value }>;
}
