/** Markdown tables of the fleet benchmark, each bridge figure beside its baselines as a ratio. */
import type { CrashPhaseResult, ScalePhaseResult, SweepPhaseResult } from "./phases.ts";

const fmt = (n: number | undefined, digits = 0) =>
  n === undefined || !Number.isFinite(n) ? "n/a" : n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
const mib = (bytes: number) => fmt(bytes / 2 ** 20, 1);
const ratio = (a: number, b: number | undefined) => (b === undefined || !(b > 0) || !Number.isFinite(a) ? "n/a" : `${fmt(a / b, 2)}x`);

export function sweepTables(results: SweepPhaseResult[]): string {
  const out: string[] = [];
  out.push("| target | offered msg/s | acked msg/s | p50 ms | p99 ms | max ms | server CPU s / 100k msgs | server cores | load-gen cores | RSS MiB | limit |");
  out.push("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
  for (const r of results) {
    for (const s of r.steps) {
      out.push(`| ${r.target} | ${fmt(s.offeredPerSec)} | ${fmt(s.ackedPerSec)} | ${fmt(s.p50Ms, 2)} | ${fmt(s.p99Ms, 2)} | ${fmt(s.maxMs, 1)} | ${fmt(s.cpuSecondsPer100k, 2)} | ${fmt(s.cpuCores, 2)} | ${fmt(s.loadGenCores, 2)} | ${mib(s.rssBytes)} | ${s.limit ?? (s.retried ? "p99 once, rerun" : "")} |`);
    }
    if (r.at80) {
      const s = r.at80;
      out.push(`| ${r.target} (80% of capacity) | ${fmt(s.offeredPerSec)} | ${fmt(s.ackedPerSec)} | ${fmt(s.p50Ms, 2)} | ${fmt(s.p99Ms, 2)} | ${fmt(s.maxMs, 1)} | ${fmt(s.cpuSecondsPer100k, 2)} | ${fmt(s.cpuCores, 2)} | ${fmt(s.loadGenCores, 2)} | ${mib(s.rssBytes)} | ${s.limit ?? ""} |`);
    }
  }
  const bridge = results.find((r) => r.target === "bridge");
  out.push("");
  out.push("| target | capacity msg/s (best acked) | sustained msg/s (kept up, p99 <= limit) | p99 ms at 80% of capacity | CPU s / 100k at 80% | peak RSS MiB | bridge capacity ratio | bridge sustained ratio | bridge CPU/msg ratio |");
  out.push("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
  for (const r of results) {
    const own = r.target === "bridge";
    out.push(
      `| ${r.target} | ${fmt(r.capacityPerSec)} | ${fmt(r.sustainedPerSec)} | ${fmt(r.at80?.p99Ms, 2)} | ${fmt(r.at80?.cpuSecondsPer100k, 2)} | ${mib(r.peakRssBytes)} | ${own ? "1.00x" : ratio(bridge?.capacityPerSec ?? Number.NaN, r.capacityPerSec)} | ${own ? "1.00x" : ratio(bridge?.sustainedPerSec ?? Number.NaN, r.sustainedPerSec)} | ${own ? "1.00x" : ratio(bridge?.at80?.cpuSecondsPer100k ?? Number.NaN, r.at80?.cpuSecondsPer100k)} |`,
    );
  }
  return out.join("\n");
}

export function scaleTable(results: ScalePhaseResult[]): string {
  const out: string[] = [];
  const bridge = results.find((r) => r.target === "bridge");
  out.push("| target | idle devices | online | RSS MiB (no device: base) | bytes per device | bridge per-device ratio | agents active / hibernated | after a full GC: RSS MiB (base) | bytes per device | bridge (after GC) per-device ratio |");
  out.push("|---|---:|---:|---:|---:|---:|---|---:|---:|---:|");
  for (const r of results) {
    for (const row of r.rows) {
      const b = bridge?.rows.find((x) => x.devices === row.devices);
      out.push(
        `| ${r.target} | ${fmt(row.devices)} | ${fmt(row.connected)} | ${mib(row.rssBytes)} (${mib(r.baseRssBytes)}) | ${fmt(row.bytesPerDevice)} | ${r.target === "bridge" ? "1.00x" : ratio(b?.bytesPerDevice ?? Number.NaN, row.bytesPerDevice)} | ${row.agentsActive === undefined ? "" : `${row.agentsActive} / ${row.agentsHibernated}`} | ${row.rssAfterGcBytes === undefined ? "" : `${mib(row.rssAfterGcBytes)} (${mib(r.baseRssAfterGcBytes ?? Number.NaN)})`} | ${row.bytesPerDeviceAfterGc === undefined ? "" : fmt(row.bytesPerDeviceAfterGc)} | ${r.target === "bridge" || b?.bytesPerDeviceAfterGc === undefined ? "" : ratio(b.bytesPerDeviceAfterGc, row.bytesPerDevice)} |`,
      );
    }
  }
  return out.join("\n");
}

export function crashTable(r: CrashPhaseResult): string {
  return [
    "| devices | offered msg/s | killed after ms | acknowledged before SIGKILL | lost acknowledged | unreadable devices | restart ms |",
    "|---:|---:|---:|---:|---:|---:|---:|",
    `| ${r.devices} | ${fmt(r.offeredPerSec)} | ${fmt(r.killedAfterMs)} | ${fmt(r.ackedBeforeKill)} | **${r.lostAcknowledged}** | ${r.unverifiableDevices} | ${fmt(r.restartMs)} |`,
  ].join("\n");
}
