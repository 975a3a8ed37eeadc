/**
 * Benchmark modes: each streams one chat completion for a prompt and reports what it saw. "direct" calls
 * the simulator with a bare undici pool, "client" goes through the engine client. A "bridge" mode (a device
 * reason frame through MQTT, agent and client) plugs in here later with the same shape.
 */
import { createEngineClient } from "../../engine-client/index.ts";
import { createDirectCaller } from "./direct.ts";

export interface StreamOutcome {
  latencyMs: number;
  ttftMs: number;
  tokens: number;
  promptTokens: number;
  cachedTokens: number;
}

export interface BenchMode {
  name: string;
  call(prompt: { system: string; user: string; agentId: string }): Promise<StreamOutcome>;
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
