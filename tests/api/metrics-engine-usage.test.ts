/**
 * Token counts come from the engine's `usage` as sent. A negative count (an engine or a proxy that writes -1 for
 * "unknown") must not reach the token counters: prom-client refuses to decrease a counter by throwing, which skipped
 * the rest of that request's metrics (its completion tokens, the dashboard's request count), and the engine client's
 * own totals went down.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { createMetrics } from "../../app/metrics/index.ts";
import { createEngineClient } from "../../engine-client/index.ts";
import { collect, startRawEngine } from "../engine/support.ts";

const chunk = (delta: Record<string, unknown>, finish: string | null = null) =>
  `data: ${JSON.stringify({ id: "x", object: "chat.completion.chunk", choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;

describe("engine usage in the metrics", () => {
  test("a negative token count from the engine counts as 0 and the rest of the request is still counted", async () => {
    const usage = { prompt_tokens: -1, completion_tokens: 3, prompt_tokens_details: { cached_tokens: -1 } };
    const server = await startRawEngine((res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write(chunk({ content: "hi" }, "stop"));
      res.write(`data: ${JSON.stringify({ id: "x", choices: [], usage })}\n\n`);
      res.end("data: [DONE]\n\n");
    });
    const metrics = createMetrics({ defaultMetrics: false });
    const engine = createEngineClient({
      urls: [server.url],
      model: "m",
      retry: { maxAttempts: 1 },
      observer: metrics.engineObserver,
    });
    try {
      const { events, error } = await collect(
        engine.stream({ messages: [{ role: "user", content: "x" }] }, { agentId: "d" }),
      );
      assert.equal(error, undefined);
      assert.deepEqual(events.at(-1), {
        type: "done",
        finishReason: "stop",
        usage: { promptTokens: 0, completionTokens: 3, cachedTokens: 0 },
      });
      const lines = (await metrics.scrape()).split("\n").filter((l) => l.startsWith("bridge_engine_tokens_total{"));
      assert.deepEqual(lines.sort(), [
        'bridge_engine_tokens_total{type="cached"} 0',
        'bridge_engine_tokens_total{type="completion"} 3',
        'bridge_engine_tokens_total{type="prompt"} 0',
      ]);
      assert.equal(metrics.activity.engine().requests, 1);
      assert.equal(engine.stats().promptTokens, 0);
    } finally {
      await engine.close();
      await server.close();
    }
  });
});
