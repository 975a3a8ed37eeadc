import assert from "node:assert/strict";
import perfHooks from "node:perf_hooks";
import { test } from "node:test";
import { createMetrics, EVENT_LOOP_SAMPLE_MS } from "../../app/metrics/index.ts";

// The default metrics' event-loop delay monitor runs a timer at its resolution, whether or not anything happens: at
// prom-client's default (10 ms) an idle bridge woke 100 times a second for it.
test("the event-loop delay monitor samples every EVENT_LOOP_SAMPLE_MS, not prom-client's 10 ms", () => {
  const original = perfHooks.monitorEventLoopDelay;
  const resolutions: Array<number | undefined> = [];
  perfHooks.monitorEventLoopDelay = (options) => {
    resolutions.push(options?.resolution);
    return original(options);
  };
  try {
    createMetrics();
  } finally {
    perfHooks.monitorEventLoopDelay = original;
  }
  assert.equal(EVENT_LOOP_SAMPLE_MS, 100);
  assert.deepEqual(resolutions, [EVENT_LOOP_SAMPLE_MS]);
});
