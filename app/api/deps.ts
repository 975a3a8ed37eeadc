/**
 * What the operator surface (REST API, fleet view) needs from the rest of the bridge, as narrow structural
 * interfaces. The composition root passes the real runtime, registry, broker and engine client; tests pass
 * small fakes. Keeping these narrow means the API never reaches into agent or broker internals.
 */
import type { CodecName, Value } from "../../codecs/frames.ts";

/**
 * The outcome of `runtime.call`: expected failures (unknown method, conflict) are values; `retryInMs`, when the
 * failure says when the same call may succeed (the API answers it as `Retry-After`).
 */
export type AgentCallResult =
  | { ok: true; value: Value }
  | { ok: false; code: string; message: string; retryInMs?: number };

/** What `POST /api/backup` answers. */
export interface OperatorBackupResult {
  dir: string;
  agents: number;
  bytes: number;
  durationMs: number;
}

/** The part of the agent runtime the API uses. */
export interface OperatorRuntime {
  /** Runs one agent method as a mailbox event; resolves after the event committed. */
  call(agentId: string, method: string, args: Value[]): Promise<AgentCallResult>;
  /** Fleet-wide index written by agents (kind "approval" for pending tool approvals). */
  readonly directory: { list(kind: string): Array<{ agentId: string; key: string; value: Value }> };
  stats(): { active: number; hibernated: number; mailboxDepth: number; commits: number };
  /** Removes the agent and its database (device deletion); true when there was anything of it to remove. */
  destroyAgent(agentId: string): Promise<boolean>;
  /** True once the runtime has shut down, when `destroyAgent` refuses (BRIDGE_ERR_RUNTIME_CLOSED). */
  readonly closed: boolean;
}

/** A registered device as the registry returns it (broker/registry `DeviceRecord` fits). */
export interface OperatorDeviceRecord {
  id: string;
  /** null: the bridge default codec. */
  codec?: CodecName | null;
  /** null: the default agent class. */
  agentClass?: string | null;
  /** ms since the Unix epoch. */
  createdAt?: number | null;
  /** ms since the Unix epoch of the last message or connection. */
  lastSeen?: number | null;
  /** Firmware version from the device's last hello. */
  firmware?: string | null;
}

/** What provisioning returns: `exists` and `invalid` are expected outcomes, not faults. */
export type OperatorAddResult =
  | { status: "created"; device: OperatorDeviceRecord; secret: string }
  | { status: "exists"; device: OperatorDeviceRecord }
  | { status: "invalid"; field: string; message: string };

/** The device registry (broker/registry `DeviceRegistry` fits). */
export interface OperatorRegistry {
  /** Provisions a device and returns its secret, which is shown once and stored only as a hash. */
  add(id: string, options?: { codec?: CodecName; agentClass?: string }): Promise<OperatorAddResult>;
  get(id: string): OperatorDeviceRecord | undefined;
  /** Devices ordered by id. */
  list(options?: { limit?: number; offset?: number }): OperatorDeviceRecord[];
  /** How many devices are provisioned. */
  count(): number;
  remove(id: string): boolean;
  /** Issues a new secret, invalidating the old one; undefined when the device does not exist. */
  rotateSecret?(id: string): Promise<string | undefined>;
}

/** Live MQTT facts. */
export interface OperatorBroker {
  isOnline(id: string): boolean;
  connectedDevices(): string[];
  /**
   * Ends the device's live sessions, closed as `reason` (what the agent's `onClose`, the counters and the logs show):
   * `revoked` after a secret rotation, `removed` when the device is removed. Absent in fakes that have none.
   */
  endSessions?(id: string, reason: "removed" | "revoked"): number;
}

/** The engine client's operator view. Absent when no engine is configured. */
export interface OperatorEngine {
  health(): Promise<unknown>;
  stats(): unknown;
}

/** Recent activity and rates, kept by the metrics module (no agent is woken to draw the fleet table). */
export interface OperatorActivity {
  /** Last time any message arrived from the device, ms since the Unix epoch. */
  lastSeen(id: string): number | undefined;
  /** Last telemetry frame from the device: when, and its readings. */
  lastTelemetry(id: string): { at: number; readings: Value } | undefined;
  /** Messages per second, in and out, over the recent window, plus per-second history for charts. */
  rates(): FleetRates;
  /** Engine figures over the recent window. */
  engine(): EngineActivity;
  /** Drops what is kept about a deleted device, so an id provisioned again starts unseen. */
  forget?(id: string): void;
}

export interface FleetRates {
  windowSeconds: number;
  inPerSecond: number;
  outPerSecond: number;
  /** One point per second, oldest first: `t` is the start of that second, ms since the Unix epoch. */
  /** `tokens`: completion tokens finished that second; `ttftMs`: mean time to first token, null without requests. */
  history: Array<{ t: number; in: number; out: number; tokens: number; ttftMs: number | null }>;
}

export interface EngineActivity {
  windowSeconds: number;
  tokensPerSecond: number;
  requests: number;
  errors: number;
  /** Mean time to first token over the window, ms; null without requests. */
  ttftMsMean: number | null;
  /** Mean queue wait over the window, ms; null without requests. */
  queueWaitMsMean: number | null;
}

/** Everything `registerOperatorApi` needs. */
export interface OperatorDeps {
  runtime: OperatorRuntime;
  registry: OperatorRegistry;
  broker: OperatorBroker;
  engine?: OperatorEngine;
  /**
   * The engine client's own bound on each replica's health check (`engine.healthCheckTimeoutMs`), ms: the fleet
   * view waits a little past it before it reports the engine's health as unknown. Default 2000.
   */
  engineHealthCheckTimeoutMs?: number;
  activity?: OperatorActivity;
  /**
   * The names `POST /api/devices` takes as `agentClass`: the bridge's agent classes (DeviceAgent, each configured class
   * by export and class name: the keys of `loadServedAgentClasses(...).byName`, the list `devices add --agent-class`
   * checks too). Any other is a 400. Default: not checked (any name is stored).
   */
  agentClassNames?: readonly string[];
  /**
   * The class serving a device in place of the one it asks for, when the bridge does not serve that one (a class
   * removed from the config or the code); null when the device is served as provisioned. Shown as the device's
   * `agentClassFallback` and filtered on by `GET /api/devices?agentClassFallback=`. The bridge passes
   * `loadServedAgentClasses(...).fallback`. Default: no device falls back.
   */
  agentClassFallback?: (device: OperatorDeviceRecord) => string | null;
  /**
   * The bridge's backups (app/backup/service.ts): `POST /api/backup` runs one. Absent: the route is not there. Throws
   * BridgeErrors of app/backup/errors.ts.
   */
  backup?: { run(request: { dir?: string }): Promise<OperatorBackupResult> };
  /** The operator API token (see `loadOrCreateApiToken`). */
  apiToken: string;
  /**
   * The bridge's clock: `now()`, the wall clock of responses (`serverTime`, default `Date.now`), and `monotonicNow()`,
   * a clock that never steps, for how long an answer is cached (default `performance.now()`).
   */
  clock?: { now(): number; monotonicNow(): number };
}
