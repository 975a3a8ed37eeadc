/**
 * prom-client's default metrics start an event-loop delay monitor (a timer every EVENT_LOOP_SAMPLE_MS) and a GC
 * observer, and give no handle to either: a process that built and closed many bridges (the test suites, an
 * embedding application) kept every bridge's pair running. Closing the metrics, and so stopping or failing to build a
 * bridge, stops them.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import perfHooks, { type IntervalHistogram } from "node:perf_hooks";
import { after, test } from "node:test";
import { pino } from "pino";
import { createBridge } from "../../app/bridge.ts";
import { loadConfig } from "../../app/config/index.ts";
import { createMetrics } from "../../app/metrics/index.ts";
import { createLoopbackBridge } from "../support/in-process-bridge.ts";

const OriginalObserver = perfHooks.PerformanceObserver;
type ObserveOptions = Parameters<InstanceType<typeof OriginalObserver>["observe"]>[0];

/** A PerformanceObserver that remembers whether it watches GC and whether it was disconnected. */
class RecordingObserver extends OriginalObserver {
  watchesGc = false;
  disconnected = false;
  override observe(options: ObserveOptions): void {
    const types = "entryTypes" in options ? options.entryTypes : [options.type];
    if (types.includes("gc")) this.watchesGc = true;
    super.observe(options);
  }
  override disconnect(): void {
    this.disconnected = true;
    super.disconnect();
  }
}

interface Started {
  monitors: IntervalHistogram[];
  gcObservers: RecordingObserver[];
}

/** Runs `build`, recording every event-loop delay monitor and GC observer started meanwhile. */
async function recordMonitors<T>(build: () => T | Promise<T>): Promise<{ built: T } & Started> {
  const original = perfHooks.monitorEventLoopDelay;
  const monitors: IntervalHistogram[] = [];
  const observers: RecordingObserver[] = [];
  perfHooks.monitorEventLoopDelay = (options) => {
    const monitor = original(options);
    monitors.push(monitor);
    return monitor;
  };
  perfHooks.PerformanceObserver = class extends RecordingObserver {
    constructor(callback: ConstructorParameters<typeof OriginalObserver>[0]) {
      super(callback);
      observers.push(this);
    }
  };
  try {
    const built = await build();
    return { built, monitors, gcObservers: observers.filter((o) => o.watchesGc) };
  } finally {
    perfHooks.monitorEventLoopDelay = original;
    perfHooks.PerformanceObserver = OriginalObserver;
  }
}

/** Asserts one monitor and one GC observer were started and are stopped now. */
function assertStopped({ monitors, gcObservers }: Started): void {
  assert.equal(monitors.length, 1);
  // disable() answers false when the monitor was not running any more.
  assert.equal(monitors[0]?.disable(), false, "the event-loop delay monitor was stopped");
  assert.equal(gcObservers.length, 1);
  assert.equal(gcObservers[0]?.disconnected, true, "the GC observer was disconnected");
}

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});

function tempDataDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "metrics-monitors-stop-"));
  dirs.push(dir);
  return dir;
}

test("closing the metrics stops the event-loop delay monitor and the GC observer of their default metrics", async () => {
  const started = await recordMonitors(() => createMetrics());
  assert.equal(started.monitors[0]?.enable(), false, "the monitor runs until the metrics are closed");
  assert.equal(started.gcObservers[0]?.disconnected, false);
  started.built.close();
  assertStopped(started);
  started.built.close();
  // The registry still answers a scrape; only the sampling stopped.
  assert.match(await started.built.scrape(), /nodejs_eventloop_lag_seconds/);
});

test("metrics without the default metrics start no monitor, and close all the same", async () => {
  const started = await recordMonitors(() => createMetrics({ defaultMetrics: false }));
  assert.deepEqual([started.monitors.length, started.gcObservers.length], [0, 0]);
  started.built.close();
});

test("a bridge's stop stops its metrics' monitors", async () => {
  const started = await recordMonitors(() =>
    createLoopbackBridge({ dataDir: tempDataDir(), apiToken: "metrics-monitors-stop-token-0123456789" }),
  );
  await started.built.start();
  assert.equal(started.monitors[0]?.enable(), false, "the monitor runs while the bridge does");
  await started.built.stop();
  assertStopped(started);
});

test("a bridge that fails to build stops the monitors its metrics had started", async () => {
  const loaded = loadConfig({
    overrides: {
      dataDir: tempDataDir(),
      mqtt: { host: "127.0.0.1", port: 0 },
      http: { host: "127.0.0.1", port: 0, apiToken: "metrics-monitors-stop-token-0123456789" },
      // Refused by createBridge (its per-class options check), after the metrics were created.
      agents: { config: { DeviceAgent: { maxHistoryChars: -1 } } },
    },
  });
  assert.ok(loaded.ok, "the config loads; the bridge refuses it");
  const config = loaded.config;
  const started = await recordMonitors(() =>
    createBridge(config, { logger: pino({ level: "silent" }) }).then(
      () => assert.fail("the bridge was built"),
      (err: unknown) => err,
    ),
  );
  assert.equal((started.built as { code?: string }).code, "BRIDGE_ERR_CONFIG");
  assertStopped(started);
});
