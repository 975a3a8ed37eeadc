import assert from "node:assert/strict";
import perfHooks from "node:perf_hooks";
import { test } from "node:test";
import { delayBeyondInterval } from "../../app/metrics/event-loop-delay.ts";
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

// Node 20's histogram records each whole interval between its timer's runs: an idle process read the sampling interval
// itself (0.1 s) as its event-loop lag, and an alert on nodejs_eventloop_lag_* would fire for nothing.
test("the event-loop lag series report the delay beyond the sampling interval: about 0 on an idle bridge", async () => {
  const metrics = createMetrics();
  try {
    // A few samples of an idle loop (prom-client reads and resets the histogram at each scrape).
    await new Promise((resolve) => setTimeout(resolve, 4 * EVENT_LOOP_SAMPLE_MS));
    const text = await metrics.scrape();
    const min = Number(/^nodejs_eventloop_lag_min_seconds (\S+)$/m.exec(text)?.[1]);
    // Read as the raw histogram, it is the interval (0.099 and more); a stall of 50 ms in every sample is no idle loop.
    assert.ok(min >= 0 && min < 0.05, `nodejs_eventloop_lag_min_seconds ${min}`);
  } finally {
    metrics.close();
  }
});

test("delayBeyondInterval reads the histogram less its interval, never below 0, and passes its methods through", async () => {
  const intervalMs = 20;
  const raw = perfHooks.monitorEventLoopDelay({ resolution: intervalMs });
  const view = delayBeyondInterval(raw, intervalMs);
  view.enable();
  try {
    await new Promise((resolve) => setTimeout(resolve, 6 * intervalMs));
    const less = (ns: number) => Math.max(0, ns - intervalMs * 1e6);
    assert.ok(raw.count > 0, "the histogram sampled");
    assert.equal(view.min, less(raw.min));
    assert.equal(view.max, less(raw.max));
    assert.equal(view.mean, less(raw.mean));
    for (const p of [50, 90, 99]) assert.equal(view.percentile(p), less(raw.percentile(p)));
    assert.equal(view.stddev, raw.stddev);
    view.reset();
    assert.equal(raw.count, 0, "reset acts on the histogram");
  } finally {
    view.disable();
  }
});
