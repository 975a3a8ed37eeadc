/**
 * The engine client: talks to OpenAI-compatible inference servers (vLLM, SGLang, llama.cpp server, TGI) for
 * the agents. The simulator lives in `./sim/index.ts`.
 */
export { hash32, rendezvousOrder } from "./affinity.ts";
export { fullJitterDelayMs, parseRetryAfterMs } from "./backoff.ts";
export type { EngineClient, EngineClientStats, EngineHealth, EngineReplicaHealth } from "./types.ts";
export type { HealthProblem, HealthProblemReason } from "./health-check.ts";
export { createEngineClient } from "./client.ts";
export type { Clock, RandomSource, TimerHandle, TimerOptions } from "./clock.ts";
export { systemClock } from "./clock.ts";
export type { EngineErrorCode } from "./errors.ts";
export {
  CONSUMER_IDLE_REASON,
  ENGINE_ERROR_CODES,
  isEngineBackPressure,
  isRetryableEngineError,
  redactSecret,
} from "./errors.ts";
export { CONTEXT_LENGTH_REASON, isContextLengthRefusalText } from "./context-length.ts";
export { FairQueue } from "./fair-queue.ts";
export type { EngineObserver, ReplicaState } from "./observer.ts";
export { noopEngineObserver } from "./observer.ts";
export type { EngineClientInit, EngineClientOptions, EngineCooldownOptions, EngineRetryOptions } from "./options.ts";
export { ENGINE_CLIENT_DEFAULTS, resolveEngineClientOptions } from "./options.ts";
export { urlCredentialsProblem } from "./url-credentials.ts";
export type { ReplicaStats } from "./replica.ts";
export type { SseEvent } from "./sse-parser.ts";
export { SseParser } from "./sse-parser.ts";
export { StreamAssembler } from "./stream-assembler.ts";
export type { ChatCompletion } from "./wire.ts";
export { buildChatBody } from "./wire.ts";
