/**
 * Throughput sweep: the same devices publish QoS 1 CBOR telemetry at rising offered rates until the server stops
 * keeping up (acked rate below 95 % of offered, or due messages left unsent) or p99 publish->PUBACK latency passes
 * the limit twice in a row at the same rate. Server CPU and RSS come from /proc around each step, so the load generator's own work is never counted.
 */
import type { DriverProcess } from "./driver-process.ts";
import { type ProcSample, sampleProcess } from "./proc.ts";
import type { Target } from "./targets.ts";

export interface SweepOptions {
  /** Offered total rates, msg/s, ascending. */
  ratesPerSec: number[];
  stepMs: number;
  warmupMs: number;
  windowPerDevice: number;
  /** A step whose p99 exceeds this is the last one, ms. */
  p99LimitMs: number;
  /** A step whose acked rate is below this share of the offered rate did not keep up. */
  keepUpRatio: number;
}

export interface StepResult {
  offeredPerSec: number;
  ackedPerSec: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Server CPU seconds (user + system) per 100,000 acknowledged messages. */
  cpuSecondsPer100k: number;
  /** Server CPU use during the step, in cores. */
  cpuCores: number;
  /** The load generator's CPU use during the step, in cores (near 1 means the generator, not the server, is the limit). */
  loadGenCores: number;
  rssBytes: number;
  unsent: number;
  unacked: number;
  disconnects: number;
  /** Why this step ended the sweep, when it did. */
  limit?: "p99" | "throughput" | "disconnects";
  /** This step missed the p99 limit once and was run again (the next step holds the rerun). */
  retried?: boolean;
}

function logStep(target: Target, step: StepResult, log: (line: string) => void): void {
  log(
    `  ${target.name} offered ${Math.round(step.offeredPerSec)}/s -> acked ${Math.round(step.ackedPerSec)}/s, p50 ${step.p50Ms.toFixed(2)} ms, p99 ${step.p99Ms.toFixed(2)} ms, cpu ${step.cpuCores.toFixed(2)} cores (load gen ${step.loadGenCores.toFixed(2)})${step.limit ? ` [limit: ${step.limit}]` : ""}`,
  );
}

export interface SweepResult {
  steps: StepResult[];
  /** Highest acked rate of any step, msg/s (the server's capacity, overloaded steps included). */
  capacityPerSec: number;
  /** Highest acked rate of a step that kept up with p99 within the limit, msg/s. */
  sustainedPerSec: number;
  /** A confirmation step at 80 % of the capacity. */
  at80: StepResult | undefined;
  peakRssBytes: number;
}

export async function measureStep(target: Target, driver: DriverProcess, ratePerSec: number, options: SweepOptions): Promise<StepResult> {
  const before = sampleProcess(target.pid);
  const driverBefore = sampleProcess(driver.pid);
  const started = performance.now();
  const run = await driver.run({ ratePerSec, durationMs: options.stepMs, windowPerDevice: options.windowPerDevice, drainMs: 5000, recordSeqs: false });
  const seconds = (performance.now() - started) / 1000;
  const after = sampleProcess(target.pid);
  const driverAfter = sampleProcess(driver.pid);
  const cpu = before && after ? after.cpuSeconds - before.cpuSeconds : Number.NaN;
  const step: StepResult = {
    offeredPerSec: run.offeredPerSec,
    ackedPerSec: run.ackedPerSec,
    p50Ms: run.latencyMs.p50,
    p99Ms: run.latencyMs.p99,
    maxMs: run.latencyMs.max,
    cpuSecondsPer100k: run.acked > 0 ? (cpu / run.acked) * 100_000 : Number.NaN,
    cpuCores: cpu / seconds,
    loadGenCores: driverBefore && driverAfter ? (driverAfter.cpuSeconds - driverBefore.cpuSeconds) / seconds : Number.NaN,
    rssBytes: after?.rssBytes ?? Number.NaN,
    unsent: run.unsent,
    unacked: run.unacked,
    disconnects: run.disconnects,
  };
  if (run.disconnects > 0) step.limit = "disconnects";
  else if (run.ackedPerSec < options.keepUpRatio * run.offeredPerSec || run.unsent > 0.01 * run.generated) step.limit = "throughput";
  else if (!(run.latencyMs.p99 <= options.p99LimitMs)) step.limit = "p99";
  return step;
}

/** Runs the sweep against a target whose devices the driver already connected. */
export async function sweep(target: Target, driver: DriverProcess, options: SweepOptions, log: (line: string) => void): Promise<SweepResult> {
  const first = options.ratesPerSec[0] ?? 1000;
  // JIT warm-up of both sides, not recorded.
  await driver.run({ ratePerSec: first, durationMs: options.warmupMs, windowPerDevice: options.windowPerDevice, drainMs: 5000, recordSeqs: false });
  const steps: StepResult[] = [];
  for (const rate of options.ratesPerSec) {
    let step = await measureStep(target, driver, rate, options);
    logStep(target, step, log);
    if (step.limit === "p99") {
      // On a shared machine one scheduling stall can cost a 5 s step its p99; a latency limit counts only when the
      // same rate misses it twice in a row. Not keeping up (throughput) or losing devices ends the sweep at once.
      steps.push({ ...step, limit: undefined, retried: true });
      step = await measureStep(target, driver, rate, options);
      logStep(target, step, log);
    }
    steps.push(step);
    if (step.limit) break;
  }
  const capacityPerSec = Math.max(0, ...steps.map((s) => s.ackedPerSec));
  const sustainedPerSec = Math.max(0, ...steps.filter((s) => !s.limit && !s.retried).map((s) => s.ackedPerSec));
  let at80: StepResult | undefined;
  if (capacityPerSec > 0) {
    at80 = await measureStep(target, driver, 0.8 * capacityPerSec, options);
    log(`  ${target.name} at 80% of capacity: offered ${Math.round(at80.offeredPerSec)}/s -> acked ${Math.round(at80.ackedPerSec)}/s, p99 ${at80.p99Ms.toFixed(2)} ms`);
  }
  const peak: ProcSample | undefined = sampleProcess(target.pid);
  return { steps, capacityPerSec, sustainedPerSec, at80, peakRssBytes: peak?.peakRssBytes ?? Number.NaN };
}
