/**
 * The backup benchmark's figures from its raw measurements (copies, windows, PUBACK samples, stall reports) and
 * their markdown tables. Percentiles follow the suites' one rule (bench/percentile.ts).
 */
import { median, percentileOfSorted } from "../percentile.ts";
import type { ColdCopy } from "./baseline.ts";
import type { PubackSample } from "./devices.ts";
import { longestStall, STALL_REPORT_MS, type StallReport } from "./stalls.ts";

/** One timed window of the run: a backup taken through the API, or the same time with none. */
export interface Window {
  kind: "backup" | "quiet";
  round: number;
  fromMs: number;
  toMs: number;
}

/** An online backup: the API call's wall time and what the bridge answered. */
export interface OnlineBackup {
  round: number;
  wallMs: number;
  durationMs: number;
  agents: number;
  bytes: number;
}

export interface SideFigures {
  windows: number;
  messages: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** The bridge's longest event-loop stall in any of the windows, and the median of the windows' longest. */
  bridgeStallMaxMs: number;
  bridgeStallMedianMs: number;
  /** The same in the benchmark's own process (where the PUBACKs are timed). */
  driverStallMaxMs: number;
}

/** The figures of one kind of window, every round's samples pooled. */
export function sideFigures(
  windows: readonly Window[],
  kind: Window["kind"],
  samples: readonly PubackSample[],
  bridgeStalls: readonly StallReport[],
  driverStalls: readonly StallReport[],
): SideFigures {
  const mine = windows.filter((w) => w.kind === kind);
  const latencies = Float64Array.from(
    samples.filter((s) => mine.some((w) => s.sentAtMs >= w.fromMs && s.sentAtMs < w.toMs)).map((s) => s.latencyMs),
  ).sort();
  const bridge = mine.map((w) => longestStall(bridgeStalls, w.fromMs, w.toMs));
  const driver = mine.map((w) => longestStall(driverStalls, w.fromMs, w.toMs));
  return {
    windows: mine.length,
    messages: latencies.length,
    p50Ms: percentileOfSorted(latencies, 50),
    p99Ms: percentileOfSorted(latencies, 99),
    maxMs: latencies.length > 0 ? latencies[latencies.length - 1] : Number.NaN,
    bridgeStallMaxMs: Math.max(...bridge),
    bridgeStallMedianMs: median(bridge),
    driverStallMaxMs: Math.max(...driver),
  };
}

const ms = (v: number): string => (Number.isFinite(v) ? v.toFixed(v < 10 ? 2 : 0) : "-");
const ratio = (a: number, b: number): string => (b > 0 && Number.isFinite(a / b) ? `${(a / b).toFixed(2)}x` : "-");
const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(1);
const range = (values: readonly number[]): string =>
  values.length > 0 ? `${ms(Math.min(...values))}-${ms(Math.max(...values))}` : "-";

/** Stalls of `min` ms or more reported in each window, as [ms after the window's start, stall ms]: where they fall. */
export function stallsByWindow(
  windows: readonly Window[],
  reports: readonly StallReport[],
  min: number,
): { kind: Window["kind"]; round: number; stalls: [number, number][] }[] {
  return windows.map((w) => ({
    kind: w.kind,
    round: w.round,
    stalls: reports
      .filter((r) => r.stallMs >= min && r.atMs > w.fromMs && r.atMs <= w.toMs + STALL_REPORT_MS)
      .map((r): [number, number] => [r.atMs - w.fromMs, r.stallMs]),
  }));
}

/** PUBACKs of `min` ms or more in each window, as [ms after the window's start they were sent, latency ms]. */
export function slowPubacksByWindow(
  windows: readonly Window[],
  samples: readonly PubackSample[],
  min: number,
): { kind: Window["kind"]; round: number; pubacks: [number, number][] }[] {
  return windows.map((w) => ({
    kind: w.kind,
    round: w.round,
    pubacks: samples
      .filter((s) => s.latencyMs >= min && s.sentAtMs >= w.fromMs && s.sentAtMs < w.toMs)
      .map((s): [number, number] => [s.sentAtMs - w.fromMs, Math.round(s.latencyMs * 10) / 10]),
  }));
}

/** One markdown table row. */
const row = (...cells: (string | number)[]): string => `| ${cells.join(" | ")} |`;

/** The copy table: the online backup beside `cp -a` of the stopped data dir (medians of the rounds). */
export function copyTable(copies: readonly ColdCopy[], backups: readonly OnlineBackup[]): string {
  const cp = copies.map((c) => c.copyMs);
  const cpSync = copies.map((c) => c.copyMs + c.syncMs);
  const base = median(cp);
  const baseSynced = median(cpSync);
  const cpMiB = mib(copies[0]?.bytes ?? Number.NaN);
  const backupMiB = mib(backups[0]?.bytes ?? Number.NaN);
  const line = (label: string, values: number[], size: string): string =>
    row(
      label,
      values.length,
      ms(median(values)),
      range(values),
      size,
      ratio(median(values), base),
      ratio(median(values), baseSynced),
    );
  return [
    row("copy", "runs", "median ms", "range ms", "MiB", "x cp -a", "x cp -a + fsync"),
    "|---|---:|---:|---:|---:|---:|---:|",
    line("cp -a, bridge stopped (baseline)", cp, cpMiB),
    line("cp -a, then fsync every file", cpSync, cpMiB),
    line(
      "online backup, POST /api/backup (wall)",
      backups.map((b) => b.wallMs),
      backupMiB,
    ),
    line(
      "online backup, the bridge's durationMs",
      backups.map((b) => b.durationMs),
      backupMiB,
    ),
  ].join("\n");
}

/** The devices table: PUBACK latency and event-loop stalls with and without a backup running. */
export function devicesTable(quiet: SideFigures, backup: SideFigures): string {
  const line = (label: string, s: SideFigures): string =>
    row(
      label,
      s.windows,
      s.messages,
      ms(s.p50Ms),
      ms(s.p99Ms),
      ms(s.maxMs),
      ms(s.bridgeStallMaxMs),
      ms(s.bridgeStallMedianMs),
      ms(s.driverStallMaxMs),
    );
  const times = (key: keyof SideFigures): string => ratio(backup[key], quiet[key]);
  return [
    row(
      "window",
      "windows",
      "PUBACKs",
      "p50 ms",
      "p99 ms",
      "max ms",
      "bridge stall max ms",
      "bridge stall median ms",
      "driver stall max ms",
    ),
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    line("no backup", quiet),
    line("backup running", backup),
    row(
      "backup / none",
      "",
      "",
      times("p50Ms"),
      times("p99Ms"),
      times("maxMs"),
      times("bridgeStallMaxMs"),
      times("bridgeStallMedianMs"),
      "",
    ),
  ].join("\n");
}
