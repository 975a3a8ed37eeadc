import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { formatProgress } from "../../firmware-sim/index.ts";
import { startProgress } from "../../firmware-sim/report/progress.ts";
import { createCounters, type FleetStats } from "../../firmware-sim/stats.ts";

const latency = { count: 10, p50Ms: 1.2, p90Ms: 3, p99Ms: 8.3, maxMs: 9, meanMs: 2 };
const stats = (): FleetStats => ({
  elapsedMs: 12_000,
  devices: 100,
  started: 100,
  online: 98,
  counters: { ...createCounters(), connects: 102, reconnects: 2, published: 1180, acked: 1178 },
  pubackLatency: latency,
  reasonFirstChunk: latency,
  reasonTotal: latency,
  errorCodes: {},
  refusalCodes: {},
  violations: 0,
});

describe("progress line", () => {
  it("shows time, online devices, traffic, latency and violations on one line", () => {
    assert.equal(
      formatProgress(stats()),
      "[12.0s]  online 98/100  pub 1180  ack 1178  p50 1.2ms  p99 8.3ms  reconn 2  dropped 0  viol 0",
    );
  });

  it("rewrites the line in place on a terminal and clears it when stopped", async () => {
    const written: string[] = [];
    const stop = startProgress({ write: (s: string) => written.push(s), isTTY: true }, stats, 5000, 20);
    await new Promise((resolve) => setTimeout(resolve, 70));
    stop();
    assert.ok(written.length >= 2);
    assert.ok(written[0].startsWith("\r\x1b[2K[12.0s]") && !written[0].endsWith("\n"));
    assert.equal(written.at(-1), "\r\x1b[2K");
  });

  it("prints whole lines when stderr is not a terminal", async () => {
    const written: string[] = [];
    const stop = startProgress({ write: (s: string) => written.push(s), isTTY: false }, stats, 20);
    await new Promise((resolve) => setTimeout(resolve, 70));
    stop();
    assert.ok(written.length >= 1);
    assert.ok(written.every((line) => line.endsWith("\n") && !line.includes("\r")));
  });
});
