/**
 * Event-loop stalls by time window, for the bridge under test (through loop-probe.ts, preloaded into it) and for the
 * benchmark's own process (whose devices time the PUBACKs: a stall of its own would show as device latency). A probe
 * reports, every REPORT_MS, the longest stall since its last report; a window's longest stall is the largest report
 * that falls in it or at most REPORT_MS after it (a report comes after the stall it measured).
 */
import fs from "node:fs";
import { monitorEventLoopDelay } from "node:perf_hooks";

/** The histogram's timer period: a stall longer than this always delays one of its runs. */
const RESOLUTION_MS = 10;
/** How often a probe reports. */
export const STALL_REPORT_MS = 100;

export interface StallReport {
  /** Wall clock (Date.now) of the report: the same clock in every process of the run. */
  atMs: number;
  /** The longest stall since the previous report, ms. */
  stallMs: number;
}

/** Starts a probe on this process's event loop; returns what stops it. Its timer never keeps the process alive. */
export function startStallProbe(report: (r: StallReport) => void): () => void {
  const histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  histogram.enable();
  const timer = setInterval(() => {
    // The histogram records whole intervals between its timer's runs, the period included (event-loop-delay.ts in
    // app/metrics): the stall is what exceeds it.
    const stallMs = Math.max(0, histogram.max / 1e6 - RESOLUTION_MS);
    histogram.reset();
    report({ atMs: Date.now(), stallMs });
  }, STALL_REPORT_MS);
  timer.unref();
  return () => {
    clearInterval(timer);
    histogram.disable();
  };
}

/** One report as a line of a probe file. */
export function stallLine(r: StallReport): string {
  return `${r.atMs} ${r.stallMs.toFixed(2)}\n`;
}

/** The reports in a probe file (none when it does not exist yet). */
export function readStallFile(file: string): StallReport[] {
  if (!fs.existsSync(file)) return [];
  const reports: StallReport[] = [];
  for (const line of fs.readFileSync(file, "utf8").split("\n")) {
    const [at, stall] = line.split(" ").map(Number);
    if (Number.isFinite(at) && Number.isFinite(stall)) reports.push({ atMs: at, stallMs: stall });
  }
  return reports;
}

/** The longest stall of the window [fromMs, toMs], ms; NaN when no report covers it. */
export function longestStall(reports: readonly StallReport[], fromMs: number, toMs: number): number {
  let longest = Number.NaN;
  for (const r of reports) {
    if (r.atMs <= fromMs || r.atMs > toMs + STALL_REPORT_MS) continue;
    longest = Number.isNaN(longest) ? r.stallMs : Math.max(longest, r.stallMs);
  }
  return longest;
}
