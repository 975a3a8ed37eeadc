/**
 * The engine client measures queue wait and time to first token on the bridge clock's monotonic reading. Read from
 * the wall clock, a clock set back while a request waits (an NTP step, an operator fixing the time) made both
 * negative: the histograms' `_sum` went down, which Prometheus reads as a counter reset, and the dashboard showed a
 * negative mean TTFT.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { createMetrics } from "../../app/metrics/index.ts";
import { type Clock, createEngineClient } from "../../engine-client/index.ts";
import { collect, startRawEngine } from "../engine/support.ts";

const chunk = (delta: Record<string, unknown>, finish: string | null = null) =>
  `data: ${JSON.stringify({ id: "x", object: "chat.completion.chunk", choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;

/** Wall time that goes back a second at every read: each later moment of a request reads earlier than the last. */
function steppingBackClock(): Clock {
  let t = Date.UTC(2030, 0, 1);
  return {
    now: () => {
      t -= 1000;
      return t;
    },
    monotonicNow: () => performance.now(),
    setTimeout: (fn, delayMs) => setTimeout(fn, delayMs),
    clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
  };
}

describe("engine durations across a clock set back", () => {
  test("queue wait and time to first token never count below 0", async () => {
    const server = await startRawEngine((res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write(chunk({ content: "hi" }, "stop"));
      // Held a moment, so the second request waits in the queue for the first one's slot.
      setTimeout(() => res.end("data: [DONE]\n\n"), 50);
    });
    const metrics = createMetrics({ defaultMetrics: false });
    const engine = createEngineClient({
      urls: [server.url],
      model: "m",
      retry: { maxAttempts: 1 },
      maxInFlightPerReplica: 1,
      clock: steppingBackClock(),
      observer: metrics.engineObserver,
    });
    try {
      const ask = (agentId: string) =>
        collect(engine.stream({ messages: [{ role: "user", content: "x" }] }, { agentId }));
      const results = await Promise.all([ask("d1"), ask("d2")]);
      assert.deepEqual(
        results.map((r) => r.error),
        [undefined, undefined],
      );
      const text = await metrics.scrape();
      for (const name of ["bridge_engine_queue_wait_seconds", "bridge_engine_time_to_first_token_seconds"]) {
        const sum = text.split("\n").find((l) => l.startsWith(`${name}_sum `));
        assert.ok(sum !== undefined, `${name}_sum missing`);
        assert.ok(Number(sum.split(" ")[1]) >= 0, `${name}_sum went down: ${sum}`);
        assert.ok(text.includes(`${name}_count 2\n`), `${name} has both requests`);
      }
      const activity = metrics.activity.engine();
      assert.ok((activity.ttftMsMean ?? 0) >= 0, `mean TTFT ${activity.ttftMsMean}`);
      assert.ok((activity.queueWaitMsMean ?? 0) >= 0, `mean queue wait ${activity.queueWaitMsMean}`);
    } finally {
      await engine.close();
      await server.close();
      metrics.close();
    }
  });
});
