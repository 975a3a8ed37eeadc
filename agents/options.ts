import type { Logger } from "pino";
import { BridgeError } from "../errors/bridge-error.ts";
import type { AgentClass } from "./agent.ts";
import type { ReasoningEngine } from "./engine.ts";
import { MAX_TIMER_MS } from "./clock.ts";
import { AGENT_ERRORS } from "./errors.ts";
import type { AgentWiring, Clock, RuntimeObserver } from "./types.ts";

/** Options of `createRuntime`. */
export interface RuntimeOptions {
  /** Folder for agent databases (`agents/<id>.db`) and the runtime's own `runtime.db`. Created if missing. */
  dataDir: string;
  /** Class of agents no pattern matches. */
  defaultAgentClass: AgentClass;
  /** Classes by glob on agent ids (`*`, `?`), first match wins. */
  agentClasses?: Array<{ pattern: string; agentClass: AgentClass }>;
  /** Default: the system clock. */
  clock?: Clock;
  /** Default: Math.random. */
  random?: () => number;
  engine?: ReasoningEngine;
  /** Default: a pino logger at level "warn". */
  logger?: Logger;
  /** Per-class options (`AgentEnv.config`), by class name; checked by each class's `validateConfig` at creation. */
  agentConfig?: Record<string, Record<string, unknown>>;
  /**
   * Per-class values the embedder wires into its agents that are not options (a function, a handle on a service of
   * its own, such as the bridge's command observer: `commandObserverWiring`), by class name, given as
   * `AgentEnv.wiring`: apart from the options, never merged into `env.config`. Checked by each class's
   * `validateWiring` at creation, as `agentConfig` is by `validateConfig`. Default: none.
   *
   * @example
   * createRuntime({ dataDir, defaultAgentClass: DeviceAgent, agentWiring: commandObserverWiring([DeviceAgent], count) })
   */
  agentWiring?: Record<string, AgentWiring>;
  /** Deliver events waiting per agent before `deliver` answers mailbox-full. Default 256. */
  mailboxCapacity?: number;
  /** An agent idle this long hibernates, ms. Default 60000. */
  idleTimeoutMs?: number;
  /** Agents in memory at most; the least recently used idle ones hibernate beyond it. Default 1000. */
  maxActiveAgents?: number;
  /** Cap of one agent database, bytes (SQLite max_page_count). Default 1 GiB. */
  maxDatabaseBytes?: number;
  /** Metrics hooks. Default: none. */
  observer?: RuntimeObserver;
  /** Most waiting events run in one group commit. Default 64. */
  maxBatchEvents?: number;
  /**
   * SQLite `synchronous` of agent databases. Default "NORMAL": with WAL, durable across a process crash (kill -9)
   * but not power loss; "FULL" also survives power loss at the cost of an fsync per commit.
   */
  synchronous?: "NORMAL" | "FULL";
  /** Page cache cap of each agent database, KiB (SQLite `cache_size`; pages are allocated as used). Default 256. */
  cacheSizeKiB?: number;
  /**
   * SQLite `locking_mode` of agent databases and of the runtime's own `runtime.db`. Default "EXCLUSIVE" (one process
   * owns each file; see docs/agents.md).
   */
  lockingMode?: "EXCLUSIVE" | "NORMAL";
  /**
   * SQLite `page_size` of agent databases created from now on, bytes (a power of two, 512 to 65536). Default 1024: a
   * telemetry commit appends a WAL frame per page it touches, and agent writes are small rows, so 1 KiB pages write
   * about a quarter of the WAL bytes of SQLite's 4096 (docs/agents.md, "Page size"). An existing database keeps the
   * page size it was created with.
   */
  pageSizeBytes?: number;
  /**
   * Longest a callback the runtime awaits inside an event may take to settle, ms (1 to 2147483647). Default 60000.
   * Schedule callbacks, queue items, operator calls and hooks (onMessage, onConnect, onClose, onStart,
   * onStateChanged, task hooks), each on its own. One that does not is failed with BRIDGE_ERR_CALLBACK_TIMEOUT, as if
   * it had thrown, and the agent instance that ran it is retired, so the mailbox moves on (docs/agents.md, "Callback
   * time limit").
   */
  callbackTimeoutMs?: number;
  /**
   * Whether `start()` drops the runtime.db rows (alarm, pending mark, directory entries) of the agents whose database
   * file is missing even when they are more than half of the agents runtime.db lists. Default false: start then
   * refuses with BRIDGE_ERR_STORAGE and changes nothing, since an agents folder that holds few of the fleet's
   * databases is more likely not the real one (a volume not mounted yet) than a fleet destroyed at once; dropping would
   * lose every agent's alarm and pending mark. Set it for one start once the agents are known to be gone
   * (docs/agents.md, "Destroy").
   */
  dropMissingAgentRows?: boolean;
}

/** The one defaults object. */
export const RUNTIME_DEFAULTS = {
  mailboxCapacity: 256,
  idleTimeoutMs: 60_000,
  maxActiveAgents: 1000,
  maxDatabaseBytes: 1024 ** 3,
  maxBatchEvents: 64,
  synchronous: "NORMAL",
  lockingMode: "EXCLUSIVE",
  cacheSizeKiB: 256,
  pageSizeBytes: 1024,
  callbackTimeoutMs: 60_000,
  dropMissingAgentRows: false,
} as const;

export type ResolvedRuntimeOptions = Required<
  Pick<
    RuntimeOptions,
    | "mailboxCapacity"
    | "idleTimeoutMs"
    | "maxActiveAgents"
    | "maxDatabaseBytes"
    | "maxBatchEvents"
    | "synchronous"
    | "lockingMode"
    | "cacheSizeKiB"
    | "pageSizeBytes"
    | "callbackTimeoutMs"
    | "dropMissingAgentRows"
  >
>;

function fail(field: string, message: string): never {
  throw new BridgeError(AGENT_ERRORS.INVALID_OPTION, `${field} ${message}`, { field });
}

function integer(value: unknown, field: string, min: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min) fail(field, `must be an integer >= ${min}`);
  return value;
}

/** A delay a timer can wait: longer ones would fire at once (Node clamps them to 1 ms). */
function timerDelay(value: unknown, field: string): number {
  const n = integer(value, field, 1);
  if (n > MAX_TIMER_MS) fail(field, `must be at most ${MAX_TIMER_MS} (about 24.8 days)`);
  return n;
}

/** SQLite accepts powers of two from 512 to 65536 and silently ignores anything else; we refuse it instead. */
function pageSize(value: unknown): number {
  const n = integer(value, "pageSizeBytes", 512);
  if (n > 65536 || (n & (n - 1)) !== 0) fail("pageSizeBytes", "must be a power of two from 512 to 65536");
  return n;
}

/** Validates options at construction; each error names its field (BRIDGE_ERR_INVALID_OPTION). */
export function resolveRuntimeOptions(o: RuntimeOptions): ResolvedRuntimeOptions {
  if (o === null || typeof o !== "object") fail("options", "must be an object");
  if (typeof o.dataDir !== "string" || o.dataDir.length === 0) fail("dataDir", "must be a non-empty path");
  if (typeof o.defaultAgentClass !== "function") fail("defaultAgentClass", "must be an Agent subclass");
  for (const [i, entry] of (o.agentClasses ?? []).entries()) {
    if (typeof entry?.pattern !== "string" || entry.pattern.length === 0)
      fail(`agentClasses[${i}].pattern`, "must be a glob");
    if (typeof entry.agentClass !== "function") fail(`agentClasses[${i}].agentClass`, "must be an Agent subclass");
  }
  if (
    o.clock !== undefined &&
    (typeof o.clock.now !== "function" ||
      typeof o.clock.monotonicNow !== "function" ||
      typeof o.clock.setTimeout !== "function")
  ) {
    fail("clock", "must have now(), monotonicNow(), setTimeout() and clearTimeout()");
  }
  if (o.random !== undefined && typeof o.random !== "function") fail("random", "must be a function");
  const synchronous = o.synchronous ?? RUNTIME_DEFAULTS.synchronous;
  if (synchronous !== "NORMAL" && synchronous !== "FULL") fail("synchronous", 'must be "NORMAL" or "FULL"');
  const dropMissingAgentRows = o.dropMissingAgentRows ?? RUNTIME_DEFAULTS.dropMissingAgentRows;
  if (typeof dropMissingAgentRows !== "boolean") fail("dropMissingAgentRows", "must be a boolean");
  const lockingMode = o.lockingMode ?? RUNTIME_DEFAULTS.lockingMode;
  if (lockingMode !== "EXCLUSIVE" && lockingMode !== "NORMAL") fail("lockingMode", 'must be "EXCLUSIVE" or "NORMAL"');
  return {
    mailboxCapacity: integer(o.mailboxCapacity ?? RUNTIME_DEFAULTS.mailboxCapacity, "mailboxCapacity", 1),
    idleTimeoutMs: integer(o.idleTimeoutMs ?? RUNTIME_DEFAULTS.idleTimeoutMs, "idleTimeoutMs", 1),
    maxActiveAgents: integer(o.maxActiveAgents ?? RUNTIME_DEFAULTS.maxActiveAgents, "maxActiveAgents", 1),
    maxDatabaseBytes: integer(o.maxDatabaseBytes ?? RUNTIME_DEFAULTS.maxDatabaseBytes, "maxDatabaseBytes", 65536),
    maxBatchEvents: integer(o.maxBatchEvents ?? RUNTIME_DEFAULTS.maxBatchEvents, "maxBatchEvents", 1),
    synchronous,
    lockingMode,
    cacheSizeKiB: integer(o.cacheSizeKiB ?? RUNTIME_DEFAULTS.cacheSizeKiB, "cacheSizeKiB", 16),
    pageSizeBytes: pageSize(o.pageSizeBytes ?? RUNTIME_DEFAULTS.pageSizeBytes),
    callbackTimeoutMs: timerDelay(o.callbackTimeoutMs ?? RUNTIME_DEFAULTS.callbackTimeoutMs, "callbackTimeoutMs"),
    dropMissingAgentRows,
  };
}
