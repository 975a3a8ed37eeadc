/**
 * Benchmark modes: each streams one chat completion for a prompt and reports what it saw. "direct" calls
 * the simulator with a bare undici pool, "client" goes through the engine client, "bridge" is a device that sends
 * `up/reason` over MQTT to a bridge process and reads the streamed `down/reason` chunks (bridge-mode.ts).
 */
import type { ChatTool } from "../../agents/engine.ts";
import { createEngineClient } from "../../engine-client/index.ts";
import { createDirectCaller } from "./direct.ts";

/** One request of a workload. A bridge builds its own prompt: it takes only `user` (the question) and `agentId`. */
export interface BenchPrompt {
  system: string;
  user: string;
  agentId: string;
  tools?: readonly ChatTool[];
  /**
   * Completion tokens to ask for (`max_tokens`). Absent: direct and client send none (the engine's natural length),
   * a bridge asks for its mode's default.
   */
  maxTokens?: number;
}

export interface StreamOutcome {
  latencyMs: number;
  ttftMs: number;
  tokens: number;
  promptTokens: number;
  cachedTokens: number;
  /** Streamed text chunks that carried the answer (bridge mode; absent where the answer is not chunked). */
  chunks?: number;
}

export interface BenchMode {
  name: string;
  call(prompt: BenchPrompt): Promise<StreamOutcome>;
  close(): Promise<void>;
}

export function directMode(url: string, connections: number, model: string): BenchMode {
  const caller = createDirectCaller(url, connections, model);
  return { name: "direct", call: (p) => caller.call(p), close: () => caller.close() };
}

export function clientMode(url: string, connections: number, model: string): BenchMode {
  const engine = createEngineClient({ urls: [url], model, maxInFlightPerReplica: connections });
  return {
    name: "client",
    async call(prompt) {
      const start = performance.now();
      let ttftMs = Number.NaN;
      for await (const event of engine.stream(
        {
          messages: [
            { role: "system", content: prompt.system },
            { role: "user", content: prompt.user },
          ],
          ...(prompt.tools === undefined ? {} : { tools: [...prompt.tools] }),
          ...(prompt.maxTokens === undefined ? {} : { maxTokens: prompt.maxTokens }),
        },
        { agentId: prompt.agentId },
      )) {
        if (event.type === "text" && Number.isNaN(ttftMs)) ttftMs = performance.now() - start;
        if (event.type === "done") {
          return {
            latencyMs: performance.now() - start,
            ttftMs,
            tokens: event.usage.completionTokens,
            promptTokens: event.usage.promptTokens,
            cachedTokens: event.usage.cachedTokens,
          };
        }
      }
      throw new Error("stream ended without done");
    },
    close: () => engine.close(),
  };
}
