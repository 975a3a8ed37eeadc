/** The engine client's public shape: what the bridge calls besides `ReasoningEngine.stream`. */
import type { ChatOptions, ChatRequest, ChatStreamEvent, ReasoningEngine } from "../agents/engine.ts";
import type { HealthProblem } from "./health-check.ts";
import type { ReplicaStats } from "./replica.ts";
import type { ChatCompletion } from "./wire.ts";

/**
 * Health of the engine as a whole and of each replica, from a live `GET /health` on each, bounded by
 * `healthCheckTimeoutMs`. `ok`: every replica answered 200 and is in rotation; `down`: none is both; `degraded`:
 * some are.
 */
export interface EngineHealth {
  status: "ok" | "degraded" | "down" | "not-configured";
  replicas: EngineReplicaHealth[];
}

export interface EngineReplicaHealth {
  /** The replica's URL without credentials. */
  url: string;
  /** In rotation (`healthy`) or taken out after failures (`cooling`). */
  state: ReplicaStats["state"];
  /** `GET /health` answered 200 within `healthCheckTimeoutMs`. */
  healthy: boolean;
  /** Why it did not, when it did not. */
  problem?: HealthProblem;
}

/** Counters since the client was created. */
export interface EngineClientStats {
  queued: number;
  inFlight: number;
  requests: number;
  completed: number;
  retries: number;
  /** Failed requests by error code. */
  errors: Record<string, number>;
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number;
  replicas: ReplicaStats[];
}

/** A ReasoningEngine with the extras the bridge needs around it. */
export interface EngineClient extends ReasoningEngine {
  /** Always offered by the engine client (see `ReasoningEngine.streamBatches`): one batch per read of the socket. */
  streamBatches(
    request: ChatRequest,
    options: ChatOptions,
    onEvents: (events: readonly ChatStreamEvent[]) => void,
  ): Promise<void>;
  /** One non-streamed completion (`stream: false`), with the same admission, retries and deadlines. */
  complete(request: ChatRequest, options: ChatOptions): Promise<ChatCompletion>;
  health(): Promise<EngineHealth>;
  /** Model ids served by the engine (`GET /v1/models` on a replica in rotation). */
  models(options?: { signal?: AbortSignal }): Promise<string[]>;
  stats(): EngineClientStats;
  /** Fails waiting requests with CANCELLED, aborts running ones, closes every connection. */
  close(): Promise<void>;
}
