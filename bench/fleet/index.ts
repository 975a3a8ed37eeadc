/**
 * Fleet benchmark (`npm run bench:fleet [-- --quick]`): N devices over loopback from a separate load-generator
 * process, QoS 1 CBOR telemetry, publish->PUBACK latency, against the bridge (durable agents: commit before PUBACK)
 * and, in the same run with the same load, plain aedes and mosquitto (when installed).
 *
 * Phases: (1) a sweep of offered load until p99 > 50 ms or the server cannot keep up; (2) RSS per idle connected
 * device at 1,000 and 10,000 devices; (3) SIGKILL of the bridge under load, restart, and a count of acknowledged
 * messages that cannot be read back (must be 0). Prints markdown tables and writes bench/results/fleet-*.json.
 *
 * Options: --quick (about 2 minutes), --cpu-prof (write a V8 CPU profile of the bridge during its sweep and its scale
 * phase to bench/results/), --only sweep,scale,crash, --targets aedes,mosquitto,bridge (default all three),
 * --node-flags "FLAGS" (node flags for the bridge, e.g. a V8 option whose cost is measured against a run without it).
 */
import fs from "node:fs";
import path from "node:path";
import { flag, listOption, option } from "../cli-args.ts";
import { Cleanup } from "./cleanup.ts";
import { describeMachine, machineLine } from "../machine.ts";
import {
  type CrashPhaseResult,
  crashPhase,
  type ScalePhaseResult,
  type SweepPhaseResult,
  scalePhase,
  sweepPhase,
} from "./phases.ts";
import { crashTable, scaleTable, sweepTables } from "./report.ts";
import type { SweepOptions } from "./sweep.ts";
import { nodeFlagsOption, type TargetName } from "./targets.ts";

const quick = flag("quick");
const cpuProf = flag("cpu-prof");
/** `--node-flags "FLAGS"`: node flags for the bridge (space-separated), to measure what a V8 option changes. */
const bridgeNodeFlags = nodeFlagsOption(option("node-flags", ""));
const nodeFlagsLabel = bridgeNodeFlags.length > 0 ? ` (bridge node flags: ${bridgeNodeFlags.join(" ")})` : "";
const only = new Set(listOption("only") ?? ["sweep", "scale", "crash"]);

const DEVICES = 100;
const sweepOptions: SweepOptions = {
  ratesPerSec: [
    250, 500, 1000, 2000, 3000, 4000, 5000, 6500, 8000, 10_000, 12_500, 15_000, 18_000, 22_000, 27_000, 33_000,
  ],
  stepMs: quick ? 2000 : 5000,
  warmupMs: quick ? 1000 : 3000,
  windowPerDevice: 16,
  p99LimitMs: 50,
  keepUpRatio: 0.95,
};
const scaleCounts = quick ? [250, 500] : [1000, 10_000];
const targetList = listOption("targets");
/** `--targets bridge` (or a comma list) runs only those servers; the baselines are what make a figure a ratio. */
const targets: TargetName[] = (["aedes", "mosquitto", "bridge"] as const).filter(
  (t) => targetList === null || targetList.includes(t),
);
/**
 * The whole run stops by itself after this, whatever happens. The bridge accepts idle devices at tens per second on a
 * loaded 2-core machine (an agent database is created per device), which dominates the full run.
 */
const deadlineMs = quick ? 10 * 60_000 : 25 * 60_000;

const resultsDir = path.resolve(import.meta.dirname, "../results");
const cleanup = new Cleanup();
const log = (line: string) => process.stderr.write(`${line}\n`);

const disarmDeadline = cleanup.guardProcess("fleet benchmark", deadlineMs, log);

const startedAt = new Date();
const m = describeMachine();
log(`fleet benchmark${quick ? " (quick)" : ""}${nodeFlagsLabel}: ${machineLine(m)}`);
const sweeps: SweepPhaseResult[] = [];
const scales: ScalePhaseResult[] = [];
let crash: CrashPhaseResult | undefined;
const skipped: string[] = [];
let profileDir: string | undefined;
/** The node flags of `name` in a phase: `--node-flags`, and for the bridge under --cpu-prof a profile dir of its own. */
function phaseNodeFlags(name: TargetName, profileName: string): string[] {
  if (!cpuProf || name !== "bridge") return bridgeNodeFlags;
  profileDir = path.join(resultsDir, `${profileName}-${startedAt.toISOString().replace(/[:.]/g, "-")}`);
  fs.mkdirSync(profileDir, { recursive: true });
  return [...bridgeNodeFlags, "--cpu-prof", "--cpu-prof-dir", profileDir];
}
try {
  if (only.has("sweep")) {
    log(
      `\n[1/3] throughput sweep: ${DEVICES} devices, QoS 1 CBOR telemetry, window ${sweepOptions.windowPerDevice} per device, ${sweepOptions.stepMs} ms per step`,
    );
    for (const name of targets) {
      const r = await sweepPhase(name, DEVICES, sweepOptions, cleanup, log, phaseNodeFlags(name, "fleet-cpu-prof"));
      if (r) sweeps.push(r);
      else skipped.push(`${name}: not installed (/usr/sbin/mosquitto absent; Debian package mosquitto)`);
    }
  }
  if (only.has("scale")) {
    log(
      `\n[2/3] idle connection scale: ${scaleCounts.join(", ")} devices, agents hibernated (idle timeout 1 s), bridge in anonymous mode`,
    );
    for (const name of targets) {
      const r = await scalePhase(name, scaleCounts, cleanup, log, phaseNodeFlags(name, "fleet-cpu-prof-scale"));
      if (r) scales.push(r);
    }
  }
  if (only.has("crash")) {
    const bridgeSweep = sweeps.find((s) => s.target === "bridge");
    const rate = Math.round(bridgeSweep ? Math.min(0.8 * bridgeSweep.capacityPerSec, 5000) : 2000);
    log(
      `\n[3/3] SIGKILL under load: 20 authenticated devices at ${rate} msg/s, restart on the same data dir, read back through the REST API`,
    );
    crash = await crashPhase(20, rate, quick ? 4000 : 8000, cleanup, log, bridgeNodeFlags);
  }
} finally {
  cleanup.all();
}

const bridgeSweep = sweeps.find((s) => s.target === "bridge");
const provisionPerSecretMs =
  bridgeSweep?.provisionMs !== undefined ? bridgeSweep.provisionMs / bridgeSweep.devices : undefined;
console.log(`\n## Fleet benchmark ${startedAt.toISOString()}${quick ? " (--quick)" : ""}${nodeFlagsLabel}\n`);
if (sweeps.length > 0) console.log(`### Throughput sweep (${DEVICES} devices)\n\n${sweepTables(sweeps)}\n`);
if (provisionPerSecretMs !== undefined) {
  console.log(
    `Provisioning ${bridgeSweep?.devices} scrypt secrets took ${Math.round(bridgeSweep?.provisionMs ?? 0)} ms (${provisionPerSecretMs.toFixed(1)} ms each, 4 at a time): 10,000 would take about ${Math.round((provisionPerSecretMs * 10_000) / 1000)} s.\n`,
  );
}
if (scales.length > 0)
  console.log(`### Idle connections (bridge anonymous, agents hibernated)\n\n${scaleTable(scales)}\n`);
if (crash) console.log(`### SIGKILL under load\n\n${crashTable(crash)}\n`);
for (const s of skipped) console.log(`skipped: ${s}`);

fs.mkdirSync(resultsDir, { recursive: true });
const file = path.join(resultsDir, `fleet-${startedAt.toISOString().replace(/[:.]/g, "-")}.json`);
fs.writeFileSync(
  file,
  JSON.stringify(
    {
      startedAt,
      quick,
      bridgeNodeFlags,
      machine: m,
      sweepOptions,
      devices: DEVICES,
      sweeps,
      provisionPerSecretMs,
      scales,
      crash,
      skipped,
      profileDir,
    },
    null,
    2,
  ),
);
log(
  `\nresults: ${path.relative(process.cwd(), file)}${profileDir ? `; CPU profile: ${path.relative(process.cwd(), profileDir)}` : ""} (${Math.round((Date.now() - startedAt.getTime()) / 1000)} s)`,
);
disarmDeadline();
if (crash && crash.lostAcknowledged > 0) process.exitCode = 1;
