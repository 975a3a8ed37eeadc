/**
 * `bridge_engine_requests_total{finish_reason}` takes its label from what the engine sends: a misbehaving engine (or
 * a proxy in front of one) must not grow the series without bound.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { createMetrics } from "../../app/metrics/index.ts";

function complete(metrics: ReturnType<typeof createMetrics>, finishReason: string): void {
  metrics.engineObserver.onComplete?.({
    agentId: "a",
    replica: "r1",
    usage: { promptTokens: 1, completionTokens: 1, cachedTokens: 0 },
    durationMs: 10,
    tokensPerSecond: 100,
    finishReason,
  });
}

describe("engine finish reason label", () => {
  test("the finish reasons engines send are kept; any other value counts under other", async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    for (const reason of ["stop", "length", "tool_calls", "content_filter", "eos_token", "stop_sequence"]) {
      complete(metrics, reason);
    }
    for (let i = 0; i < 500; i++) complete(metrics, `weird-${i}-${"x".repeat(100)}`);
    const lines = (await metrics.scrape()).split("\n").filter((l) => l.startsWith("bridge_engine_requests_total{"));
    assert.deepEqual(lines.sort(), [
      'bridge_engine_requests_total{finish_reason="content_filter"} 1',
      'bridge_engine_requests_total{finish_reason="eos_token"} 1',
      'bridge_engine_requests_total{finish_reason="length"} 1',
      'bridge_engine_requests_total{finish_reason="other"} 500',
      'bridge_engine_requests_total{finish_reason="stop"} 1',
      'bridge_engine_requests_total{finish_reason="stop_sequence"} 1',
      'bridge_engine_requests_total{finish_reason="tool_calls"} 1',
    ]);
  });
});
