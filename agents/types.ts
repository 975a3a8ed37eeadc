/**
 * Public types of the agent runtime (the AGENT API CONTRACT). The Agent base class lives in `agent.ts`,
 * the runtime in `runtime.ts`; both re-exported from `agents/index.ts`.
 */
import type { Logger } from "pino";
import type { CodecName, DownMessage, Value } from "../codecs/frames.ts";
import type { ReasoningEngine } from "./engine.ts";
import type { AgentHost, ConnectionKind } from "./host.ts";

/** What the `sql` tagged template binds. Booleans are stored as 1/0. */
export type SqlValue = null | number | bigint | string | Uint8Array | boolean;

/** Injected time: tests pass a fake clock so schedules, retries and idle eviction run without waiting. */
export interface Clock {
  /**
   * Milliseconds since the Unix epoch: the wall clock, for times that are stored, sent or compared with stored ones
   * (rows' times, alarm dates). It may step either way (NTP, an operator).
   */
  now(): number;
  /**
   * Milliseconds from an arbitrary origin on a clock that never steps (`performance.now()`): for durations measured
   * inside this process (idle timeouts, backoffs, throttles). Only the difference of two readings means anything.
   */
  monotonicNow(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Retry policy as plain data, validated when used (integers >= 1, baseDelayMs <= maxDelayMs). */
export interface RetryOptions {
  /** Total attempts including the first. Default 3. */
  maxAttempts?: number;
  /** Backoff ceiling of the first retry, ms. Default 100. */
  baseDelayMs?: number;
  /** Largest backoff ceiling, ms. Default 3000. */
  maxDelayMs?: number;
  /** Whether to try again after `err` on attempt `attempt` (1-based). Default: always. */
  shouldRetry?: (err: unknown, attempt: number) => boolean;
}

/** A fleet-wide index the operator API can read without waking agents (pending approvals, ...). */
export interface FleetDirectory {
  /** Sets (or with `null` deletes) this agent's entry `key` of `kind`; applied after the current event commits. */
  put(kind: string, key: string, value: Value | null): void;
  /** Every entry of `kind` across the fleet, as last committed. */
  list(kind: string): Array<{ agentId: string; key: string; value: Value }>;
}

/**
 * What an embedder wires into the agents of one class that is not an option (a function, a handle on a service of
 * the embedder, such as the bridge's command observer): `RuntimeOptions.agentWiring[ClassName]`, given to its agents
 * as `AgentEnv.wiring`. A config file cannot hold it, so it never travels with the options. Each class says what it
 * takes in its `validateWiring` hook and reads it through its own typed view (DeviceAgent: `DeviceAgentWiring`).
 */
export type AgentWiring = Readonly<Record<string, unknown>>;

/** What the runtime gives each agent. */
export interface AgentEnv {
  clock: Clock;
  random: () => number;
  engine?: ReasoningEngine;
  /** Already bound to the agent id (`agent`): a line that adds `agent` again writes the key twice. */
  logger: Logger;
  /**
   * Per-agent-class options (`RuntimeOptions.agentConfig[ClassName]`, the bridge's `agents.config`), `{}` when absent:
   * exactly what the class's `validateConfig` accepted, nothing wired in.
   */
  config: Readonly<Record<string, unknown>>;
  /**
   * What the embedder wired in for the class (`RuntimeOptions.agentWiring[ClassName]`), `{}` when absent: exactly what
   * the class's `validateWiring` accepted, never options.
   */
  wiring: AgentWiring;
  directory: FleetDirectory;
}

/** One open connection (an MQTT session, a WebSocket) to an agent, as the agent sees it. */
export interface Connection {
  readonly id: string;
  readonly kind: ConnectionKind;
  readonly codec: CodecName;
  readonly readonly: boolean;
  /** Decided once by `shouldSendProtocolMessages` when the connection opened; persisted. */
  readonly protocol: boolean;
  readonly context: Readonly<Record<string, string | number | boolean | undefined>>;
  /** Per-connection state, persisted with the connection row; survives hibernation. */
  readonly state: Value | null;
  setState(next: Value | null): void;
  /** Sends an application frame; held until the current event commits. `qos` defaults to 1. */
  send(message: DownMessage, options?: { qos?: 0 | 1 }): void;
  /** Asks the transport to close the connection (after the current event commits). */
  close(reason: string): void;
  /**
   * The largest frame, in bytes as encoded, the other side can receive (null: no limit), for the frames the transport
   * writes on its own: the MQTT broker cuts the text of its refusals of input that never reached the agent (a frame
   * that does not decode, a rate limit) to fit, or sends nothing. The agent's own frames are its to fit. Takes effect
   * at once and holds for the connection's life; DeviceAgent sets its device's hello `maxFrame` here.
   */
  setFrameLimit(maxFrame: number | null): void;
}

export type ScheduleType = "delayed" | "scheduled" | "cron" | "interval";

/** A persisted alarm of one agent. */
export interface Schedule {
  id: string;
  method: string;
  payload: Value;
  type: ScheduleType;
  /** Next run, ms since the Unix epoch. */
  time: number;
  cron?: string;
  intervalSeconds?: number;
}

/** One item of an agent's persistent FIFO work queue. */
export interface QueueItem {
  id: string;
  /** Exact FIFO position. */
  seq: number;
  method: string;
  payload: Value;
  /** Failed attempts so far. */
  attempts: number;
  createdAt: number;
}

/** A background task as its hooks see it. */
export interface TaskInfo {
  id: string;
  kind: string;
  input: Value;
  startedAt: number;
}

/** Given to a background task's `run` function. */
export interface TaskContext {
  id: string;
  /** Aborted by `cancelTask`, runtime shutdown or agent destruction. */
  signal: AbortSignal;
  /**
   * Reports progress; it reaches `onTaskProgress` as an ordinary mailbox event. Updates reported while the task's
   * previous progress event still waits in the mailbox join that event. With `merge`, such an update is first
   * offered to `merge(previous, update)` (previous = the last update waiting): a Value replaces the previous
   * update (the hook then sees one update instead of two), undefined keeps both. Nothing is ever merged into an
   * update the agent already saw, so merging adds no wait.
   */
  progress(update: Value, merge?: (previous: Value, update: Value) => Value | undefined): void;
}

/** How `startTask` starts a task. */
export interface TaskOptions {
  /**
   * Start `run` at once, inside the current event, instead of after it commits: its first I/O overlaps the commit.
   * The task's reports reach the agent only after the event committed; a rolled-back event aborts the task's signal
   * and drops its reports. Only for work that is safe to abandon half-started (a streamed engine call). Its row is
   * written after `run` started, when the scope that called startTask ends (the event, a transaction()), inside its
   * transaction: a row that cannot be written fails that scope, not the startTask call. Default false.
   */
  eager?: boolean;
}

/** Metrics hooks (the app maps them to Prometheus). Every hook is optional; the default does nothing. */
export interface RuntimeObserver {
  /** One group commit of `events` events finished. A batch that wrote nothing commits nothing and is not reported. */
  onCommit?(info: { agentId: string; events: number; durationMs: number }): void;
  /**
   * One event ran. `kind` is the event's kind: `open`, `message`, `close` (a connection's), `call` (an operator's),
   * `alarm` (due schedules and queue retries), `queue` (a flush of queued items), `task-progress`, `task-done`,
   * `task-failed` (a background task's reports), `start` (the first event after a wake), `handover` (a fresh instance
   * taking over from one a callback's time limit retired) and `wake` (a wake with no work of its own: the shutdown's,
   * which waits for the mailbox).
   */
  onEvent?(info: { agentId: string; kind: string; status: "committed" | "failed"; durationMs: number }): void;
  /** An event or hook failed (also given to the agent's `onError`). */
  onError?(info: { agentId: string; event: string; code: string }): void;
  /** A mailbox refused an event because it was full. */
  onMailboxFull?(info: { agentId: string; depth: number }): void;
  /** An agent was loaded into memory (`durationMs`: open + state load, before onStart). */
  onWake?(info: { agentId: string; durationMs: number }): void;
  /** An agent left memory. */
  onHibernate?(info: { agentId: string; reason: "idle" | "lru" | "shutdown" | "destroy" | "retired" }): void;
  /**
   * runtime.db refused a write of the fleet directory's index (a storage fault): the one after the agent's commit, or a
   * retry of its waiting entries. `waiting`: agents whose entries wait to be written again, this one included.
   */
  onDirectoryWriteRefused?(info: { agentId: string; waiting: number }): void;
  /**
   * The agent's directory entries no longer wait to be written again: they were written (a retry, its next index
   * write, its wake) or the agent was destroyed. `waiting`: agents whose entries still wait.
   */
  onDirectoryWaitEnded?(info: { agentId: string; waiting: number }): void;
}

/**
 * Result of `runtime.call`: expected failures are values. `retryInMs`: when the same call may succeed, where the
 * failure says so (BRIDGE_ERR_AGENT_START_TIMEOUT: the agent's next start; an agent's own BridgeError with a
 * `details.retryInMs`); absent otherwise.
 */
export type CallResult = { ok: true; value: Value } | { ok: false; code: string; message: string; retryInMs?: number };

/** The runtime, as the app and the transports see it. */
export interface AgentRuntime extends AgentHost {
  /** Runs `method` of agent `agentId` as one mailbox event (operators: REST API). Any public method but hooks. */
  call(agentId: string, method: string, args: Value[]): Promise<CallResult>;
  /**
   * Arms the alarm timer and resumes queues, interrupted tasks and missed alarms of agents on disk, after dropping the
   * runtime.db rows of agents whose database is gone. Rejects with BRIDGE_ERR_RUNTIME_CLOSED after shutdown.
   */
  start(): Promise<void>;
  /** Refuses new events, drains mailboxes, commits, closes every database. */
  shutdown(): Promise<void>;
  /**
   * Drops agent `agentId`: its database, schedules, queue, directory entries; closes its connections. Resolves true
   * when there was anything of the agent to remove, false for an id that has (or can have) no agent. Events of the
   * agent still waiting, or arriving before it is gone, fail with BRIDGE_ERR_AGENT_DESTROYED. Rejects with
   * BRIDGE_ERR_RUNTIME_CLOSED after shutdown (nothing is deleted then).
   */
  destroyAgent(agentId: string): Promise<boolean>;
  /**
   * True once `shutdown` has finished: from then on `destroyAgent` and `directory.list` refuse with
   * BRIDGE_ERR_RUNTIME_CLOSED. A caller with steps of its own around a destroy (the operator API's device removal
   * takes the registry record first) asks this before its first step, so a refusal leaves everything as it was.
   */
  readonly closed: boolean;
  stats(): { active: number; hibernated: number; mailboxDepth: number; commits: number };
  /** Fleet-wide read side of `AgentEnv.directory`. `list` throws BRIDGE_ERR_RUNTIME_CLOSED after shutdown. */
  readonly directory: { list(kind: string): Array<{ agentId: string; key: string; value: Value }> };
  /**
   * Copies every agent's database and runtime.db into `targetDir` (`agents/<id>.db`, `runtime.db`: the layout of the
   * runtime's own data directory), each consistent at an event boundary of its owner, without waking hibernated
   * agents (docs/agents.md, "Backup"). Works on a runtime never started. Rejects with BRIDGE_ERR_RUNTIME_CLOSED once a
   * shutdown began, BRIDGE_ERR_STORAGE when a copy fails (a file of that name exists, the disk is full).
   */
  backup(targetDir: string, options?: RuntimeBackupOptions): Promise<RuntimeBackupResult>;
}

export interface RuntimeBackupOptions {
  /** Agents copied at once (default 4). */
  concurrency?: number;
  /** Told after each agent's copy. */
  onAgent?: (progress: { agentId: string; done: number; total: number }) => void;
}

export interface RuntimeBackupResult {
  /** Agent databases copied. */
  agents: number;
  /** Bytes written, runtime.db included. */
  bytes: number;
}
