/**
 * Backup benchmark (`npm run bench:backup [-- options]`): what an online backup (`POST /api/backup`) of a data dir of
 * N DeviceAgents costs, beside baselines measured in the same run.
 *
 * 1. Copy: the backup's wall time and bytes, taken from a running bridge, against `cp -a` of the same data dir while
 *    nothing runs (what an operator does with the bridge stopped), and that copy fsynced (a backup syncs its files).
 * 2. Devices: a few real MQTT devices (mqtt.js over loopback) send QoS 1 telemetry at a steady rate throughout; their
 *    PUBACK latency and the bridge's longest event-loop stall (bench/backup/loop-probe.ts, preloaded into the bridge)
 *    are taken during each backup and during a window of the same length without one, in rounds whose order rotates.
 *    The devices' agents and `--active` others are in memory, the rest hibernated, so both kinds of copy are timed.
 *
 * Options (defaults in bench/backup/options.ts): --agents 1000 --rows 200 (telemetry rows of 8 readings per agent)
 * --large 5 --large-rows 20000 --shadow-keys 20 --active 100 --devices 4 --rate 50 (messages/s per device)
 * --rounds 5 --json FILE, --cpu-prof (the bridge's CPU profile into bench/results/). Bounded: stops by itself after
 * 15 minutes; every process and temp dir it made is removed.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fsyncDir, syncTree } from "../app/backup/sync-tree.ts";
import { coldCopy, type ColdCopy, treeSize } from "./backup/baseline.ts";
import { BridgeApi } from "./backup/bridge-api.ts";
import { LiveDevices } from "./backup/devices.ts";
import { type BackupBenchOptions, readBackupBenchOptions } from "./backup/options.ts";
import {
  copyTable,
  devicesTable,
  type OnlineBackup,
  sideFigures,
  slowPubacksByWindow,
  stallsByWindow,
  type Window,
} from "./backup/report.ts";
import { seedDataDir } from "./backup/seed.ts";
import { readStallFile, type StallReport, startStallProbe } from "./backup/stalls.ts";
import { flag } from "./cli-args.ts";
import { Cleanup } from "./fleet/cleanup.ts";
import { startBridge } from "./fleet/targets.ts";
import { describeMachine, machineLine } from "./machine.ts";
import { rotated } from "./round-order.ts";

/** The whole run stops by itself after this, whatever happens. */
const DEADLINE_MS = 15 * 60_000;
/** Between two windows: the previous one's after-effects (a removed backup's writeback) settle outside both. */
const GAP_MS = 1000;
/** Device traffic before the first window, and the unrecorded warm-up backup that sizes the first quiet window. */
const WARMUP_MS = 2000;

/**
 * Removes a copy and syncs its parent: the removal's journal commit happens here, outside every window, instead of in
 * the next window's first fsync (on ext4 an fsync commits the whole journal, a large removal's metadata included).
 */
async function removeDurably(dir: string): Promise<void> {
  await fs.promises.rm(dir, { recursive: true, force: true });
  await fsyncDir(path.dirname(dir));
}

const log = (line: string): void => void process.stderr.write(`${line}\n`);
const options = ((): BackupBenchOptions => {
  try {
    return readBackupBenchOptions();
  } catch (err) {
    log(`backup benchmark: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(2);
  }
})();
const cleanup = new Cleanup();
const disarmDeadline = cleanup.guardProcess("backup benchmark", DEADLINE_MS, log);
const startedAt = new Date();
const machine = describeMachine();
log(`backup benchmark: ${machineLine(machine)}`);

const work = cleanup.tempDir("bench-backup-work-");
const seeded = await seedDataDir(options, cleanup, log);
// The seed's writes reach the disk before anything is timed, so no copy pays for their writeback.
await syncTree(seeded.dataDir);
const dataDir = treeSize(seeded.dataDir);
log(
  `seed: ${dataDir.files} files, ${(dataDir.bytes / 2 ** 20).toFixed(1)} MiB in ${(seeded.seedMs / 1000).toFixed(1)} s`,
);

const copies: ColdCopy[] = [];
for (let round = 0; round < options.rounds; round++) {
  const target = path.join(work, `cp-${round}`);
  copies.push(await coldCopy(seeded.dataDir, target));
  await removeDurably(target);
}
log(`baseline: cp -a ${copies.map((c) => c.copyMs.toFixed(0)).join(", ")} ms`);

const token = randomBytes(24).toString("hex");
const configFile = path.join(work, "bench-config.json");
fs.writeFileSync(
  configFile,
  JSON.stringify({
    // The benchmark measures the backup, not the per-device rate limiter; agents stay in memory for the whole run.
    mqtt: { limits: { messagesPerSecond: 1_000_000, burstMessages: 1_000_000 } },
    agents: { idleTimeoutMs: 3_600_000 },
  }),
);
const probeFile = path.join(work, "bridge-stalls.txt");
// `--cpu-prof`: the bridge's V8 CPU profile of the whole run, kept in bench/results/ (gitignored): what a stall is.
const profileDir = flag("cpu-prof")
  ? path.resolve(import.meta.dirname, "results", `backup-cpu-prof-${startedAt.toISOString().replace(/[:.]/g, "-")}`)
  : undefined;
if (profileDir !== undefined) fs.mkdirSync(profileDir, { recursive: true });
const profileFlags = profileDir === undefined ? [] : ["--cpu-prof", "--cpu-prof-dir", profileDir];
process.env.BENCH_LOOP_PROBE_FILE = probeFile;
const bridge = await startBridge(
  {
    dataDir: seeded.dataDir,
    configFile,
    apiToken: token,
    anonymous: false,
    nodeFlags: [...profileFlags, "--import", "tsx", "--import", path.join(import.meta.dirname, "backup/loop-probe.ts")],
  },
  cleanup,
);
const api = new BridgeApi(bridge, token);
for (const id of seeded.ids.slice(options.devices, options.devices + options.active)) await api.wake(id);
const devices = await LiveDevices.connect(`mqtt://${bridge.host}:${bridge.port}`, seeded.secrets);
const active = await api.gauge("bridge_agents_active");
const hibernated = await api.gauge("bridge_agents_hibernated");
log(`bridge: ${active} agents in memory, ${hibernated} hibernated; ${options.devices} devices x ${options.rate}/s`);

const driverStalls: StallReport[] = [];
const stopDriverProbe = startStallProbe((r) => driverStalls.push(r));
devices.start(options.rate);
await sleep(WARMUP_MS);
const backupDir = path.join(seeded.dataDir, "backups");
const warmup = await api.backup("warmup");
await removeDurably(warmup.dir);
let lastBackupMs = warmup.durationMs;
await sleep(GAP_MS);

const windows: Window[] = [];
const backups: OnlineBackup[] = [];
for (let round = 0; round < options.rounds; round++) {
  for (const kind of rotated(["backup", "quiet"] as const, round)) {
    const fromMs = Date.now();
    if (kind === "backup") {
      const started = performance.now();
      const answer = await api.backup(`round-${round}`);
      const wallMs = performance.now() - started;
      windows.push({ kind, round, fromMs, toMs: Date.now() });
      backups.push({ round, wallMs, durationMs: answer.durationMs, agents: answer.agents, bytes: answer.bytes });
      lastBackupMs = wallMs;
      await removeDurably(path.join(backupDir, `round-${round}`));
    } else {
      await sleep(lastBackupMs);
      windows.push({ kind, round, fromMs, toMs: Date.now() });
    }
    await sleep(GAP_MS);
  }
}
await devices.stop();
stopDriverProbe();
await devices.close();
await bridge.stop();
const bridgeStalls = readStallFile(probeFile);

const quiet = sideFigures(windows, "quiet", devices.samples, bridgeStalls, driverStalls);
const during = sideFigures(windows, "backup", devices.samples, bridgeStalls, driverStalls);
const dataLine =
  `data dir: ${options.agents} DeviceAgents (${options.rows} telemetry rows of 8 readings and ${options.shadowKeys} ` +
  `shadow keys each; ${options.large} of them ${options.largeRows} rows), ${dataDir.files} files, ` +
  `${(dataDir.bytes / 2 ** 20).toFixed(1)} MiB; during the backups ${active} agents in memory and ${hibernated} ` +
  `hibernated; ${options.devices} devices x ${options.rate} msg/s QoS 1; ${options.rounds} rounds; ` +
  `${devices.failed} publishes failed or unacknowledged`;
console.log(
  `\n${machineLine(machine)}\n\n${dataLine}\n\n${copyTable(copies, backups)}\n\n${devicesTable(quiet, during)}`,
);

if (options.json !== "") {
  const results = {
    startedAt: startedAt.toISOString(),
    machine,
    loadAtEnd: describeMachine().loadAverage,
    options,
    data: { ...dataDir, seedMs: seeded.seedMs, active, hibernated },
    copies,
    warmupBackup: warmup,
    backups,
    windows,
    bridgeStallsOver10Ms: stallsByWindow(windows, bridgeStalls, 10),
    pubacksOver20Ms: slowPubacksByWindow(windows, devices.samples, 20),
    quiet,
    backup: during,
    failedPublishes: devices.failed,
  };
  fs.mkdirSync(path.dirname(path.resolve(options.json)), { recursive: true });
  fs.writeFileSync(options.json, `${JSON.stringify(results, null, 2)}\n`);
  log(`results: ${options.json}`);
}
if (profileDir !== undefined) log(`CPU profile of the bridge: ${path.relative(process.cwd(), profileDir)}`);
disarmDeadline();
cleanup.all();
