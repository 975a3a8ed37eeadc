/**
 * The engine simulator: a real OpenAI-compatible HTTP server (vLLM-shaped) with continuous batching, a
 * step-time model, a prefix cache, deterministic output, tool calls, vLLM metrics and fault injection,
 * for tests, benchmarks and demos.
 *
 * It keeps its own time on the wall clock (`performance.now`, timers scaled by `timeScale`), not on an injected
 * clock: it stands in for an engine process on the other side of a socket, whose timing no client controls. Tests set
 * its pace with `timeScale` and its faults, and drive the client's time through the client's own clock. Its
 * `setImmediate`s are loop-phase hand-offs, not time: requests that arrive in one turn are admitted to one step.
 */
export type { SimRequestRecord } from "./context.ts";
export type { EngineSimFaults, EngineSimInit, EngineSimOptions, StepModel } from "./options.ts";
export { ENGINE_SIM_DEFAULTS, NO_FAULTS, resolveEngineSimOptions } from "./options.ts";
export type { EngineSimStats } from "./stats.ts";
export { BLOCK_SIZE_TOKENS } from "./prefix-cache.ts";
export { decodeStepMs, prefillMs } from "./step-model.ts";
export { runEngineSimCli } from "./cli.ts";
export type { EngineSimulator } from "./simulator.ts";
export { startEngineSimulator } from "./simulator.ts";
