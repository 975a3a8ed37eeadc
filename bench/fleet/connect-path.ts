/**
 * Connect-path benchmark (`npm run bench:connect [-- options]`): how fast known devices come back, this build against
 * a baseline build (a git commit, `--baseline REF`, default DEFAULT_BASELINE: the build before session 21's
 * connect-path changes; `--baseline HEAD` compares the working tree with its last commit) measured in the same run,
 * interleaved round by round (the order of the two sides rotates every round).
 *
 * 1. **Cycles** (bench/fleet/connect-cycles.ts, one process per side and round): N reconnects of known DeviceAgents
 *    through the agent runtime alone, each a wake (open the database, onStart), onConnect, onClose and the
 *    hibernation (close) of the agent before it. Reported per cycle: wall time, the main thread's busy time (event
 *    loop utilization: better-sqlite3 is synchronous, so its waits for the disk count), the process's CPU time (the
 *    thread pool's included) and the wake's share (`onWake`); then the open alone (`openAgentDatabase` and the
 *    first read of a known database), in microseconds.
 * 2. **Storm**: a bridge (`agent-bridge start --allow-anonymous`, each side its own build and data dir) whose devices
 *    all connected once before, is restarted, and all of them reconnect at once (at most `--pending` CONNECTs waiting
 *    for their CONNACK). `--max-active` agents stay in memory, so most wakes also hibernate another agent, as a storm
 *    of 10,000 devices does with the default of 1,000. Reported: devices per second from the first CONNECT to the
 *    last CONNACK (a CONNACK is sent once the device's agent has woken and committed its connection), and the
 *    bridge's CPU per device (/proc, utime + stime).
 *
 * Options: --baseline REF, --rounds 3, --only cycles,storm, --cycles 2000 (per round and side), --cycle-agents 100,
 * --opens 2000 (opens of a known database alone, after the cycles),
 * --devices 1000, --max-active 250, --pending 200, --cpu-prof (a V8 profile of each build's bridge in each storm, in
 * bench/results/), --node-flags "FLAGS" (node flags for this build's bridge). Prints markdown tables and writes
 * bench/results/connect-<time>.json (gitignored).
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { describeMachine, machineLine } from "../machine.ts";
import { flag, option } from "../cli-args.ts";
import { median } from "../percentile.ts";
import { rotated } from "../round-order.ts";
import { extractBaseline, resolveCommit } from "./baseline-tree.ts";
import { prepareBridgeData } from "./bridge-data.ts";
import { Cleanup } from "./cleanup.ts";
import { startDriver } from "./driver-process.ts";
import { sampleProcess } from "./proc.ts";
import { nodeFlagsOption, startBridge } from "./targets.ts";

const ROOT = path.resolve(import.meta.dirname, "../..");
const rounds = Number(option("rounds", "3"));
const only = new Set(option("only", "cycles,storm").split(","));
const cycles = Number(option("cycles", "2000"));
const cycleAgents = Number(option("cycle-agents", "100"));
const opens = Number(option("opens", "2000"));
const devices = Number(option("devices", "1000"));
const maxActive = Number(option("max-active", "250"));
const pending = Number(option("pending", "200"));
const cpuProf = flag("cpu-prof");
/** `--node-flags "FLAGS"`: node flags for this build's bridge in the storm (space-separated). */
const nodeFlags = nodeFlagsOption(option("node-flags", ""));
const API_TOKEN = "bench-connect-operator-token-0123456789";
/** The build before session 21's connect-path changes (docs/benchmarks.md, "Session 21: connect path"). */
const DEFAULT_BASELINE = "d828fc5";
const resultsDir = path.join(ROOT, "bench/results");
const log = (line: string) => process.stderr.write(`${line}\n`);

const cleanup = new Cleanup();
const disarmDeadline = cleanup.guardProcess("connect benchmark", 30 * 60_000, log);
const baselineCommit = resolveCommit(ROOT, option("baseline", DEFAULT_BASELINE));
const sides = [
  { name: "this build", root: ROOT },
  { name: `baseline ${baselineCommit.slice(0, 7)}`, root: extractBaseline(ROOT, baselineCommit, cleanup) },
];
const startedAt = new Date();
const machine = describeMachine();
log(`connect benchmark: ${machineLine(machine)}; baseline ${baselineCommit}`);

interface CycleRow {
  round: number;
  side: string;
  cycles: number;
  wallMs: number;
  busyMs: number;
  cpuMs: number;
  wakeMs: number;
  opens: number;
  openMs: number;
}

interface StormRow {
  round: number;
  side: string;
  devices: number;
  connected: number;
  elapsedMs: number;
  cpuMs: number;
}

const cycleRows: CycleRow[] = [];
const stormRows: StormRow[] = [];

function runCycles(): void {
  const dirs = sides.map(() => cleanup.tempDir("bench-connect-cycles-"));
  for (let round = 0; round < rounds; round++) {
    for (const i of rotated([0, 1], round)) {
      const side = sides[i]!;
      const params = { dataDir: dirs[i], agents: cycleAgents, cycles, opens };
      const out = execFileSync(
        process.execPath,
        ["--import", "tsx", path.join(import.meta.dirname, "connect-cycles.ts"), side.root, JSON.stringify(params)],
        { cwd: ROOT, encoding: "utf8", timeout: 10 * 60_000 },
      );
      const r = JSON.parse(out.trim().split("\n").at(-1)!) as Omit<CycleRow, "round" | "side">;
      cycleRows.push({ round, side: side.name, ...r });
      log(`  cycles round ${round + 1} ${side.name}: ${(r.wallMs / r.cycles).toFixed(3)} ms wall per cycle`);
    }
  }
}

/** A data dir whose `devices` devices have all connected once (their agent databases exist), bridge stopped. */
async function knownFleet(bin: string): Promise<{ dataDir: string; configFile: string }> {
  const data = await prepareBridgeData(
    {
      provision: 0,
      idPrefix: "known-",
      idleTimeoutMs: 60_000,
      maxConnections: devices + 1000,
      maxActiveAgents: maxActive,
    },
    cleanup,
  );
  const bridge = await startBridge({ ...data, apiToken: API_TOKEN, anonymous: true, bin }, cleanup);
  const driver = startDriver(cleanup);
  try {
    const r = await driver.connect(connectCommand(bridge.port, 2000, 100));
    if (r.failed > 0) throw new Error(`first connect: ${r.failed} devices failed (${r.firstError})`);
  } finally {
    await driver.close();
    await bridge.stop();
  }
  return data;
}

function connectCommand(port: number, ratePerSec: number, maxPending: number) {
  return {
    host: "127.0.0.1",
    port,
    idPrefix: "known-",
    startIndex: 0,
    count: devices,
    connectRatePerSec: ratePerSec,
    maxPendingConnects: maxPending,
    keepaliveSec: 0,
    timeoutMs: 300_000,
  };
}

async function runStorms(): Promise<void> {
  const data = [];
  for (const side of sides) data.push(await knownFleet(path.join(side.root, "bin/agent-bridge.js")));
  for (let round = 0; round < rounds; round++) {
    for (const i of rotated([0, 1], round)) {
      const side = sides[i]!;
      const stamp = startedAt.toISOString().replace(/[:.]/g, "-");
      const profileDir = path.join(resultsDir, `connect-cpu-prof-${stamp}`, i === 0 ? "this-build" : "baseline");
      const profile = cpuProf ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : [];
      const flags = i === 0 ? [...nodeFlags, ...profile] : profile;
      const bin = path.join(side.root, "bin/agent-bridge.js");
      const bridge = await startBridge(
        { ...data[i]!, apiToken: API_TOKEN, anonymous: true, bin, nodeFlags: flags },
        cleanup,
      );
      const driver = startDriver(cleanup);
      try {
        // Let the start's own work (runtime.db, timers) finish, so the storm is all the bridge does.
        await new Promise((r) => setTimeout(r, 1000));
        const before = sampleProcess(bridge.pid);
        const r = await driver.connect(connectCommand(bridge.port, 1_000_000, pending));
        const after = sampleProcess(bridge.pid);
        const cpuMs = ((after?.cpuSeconds ?? Number.NaN) - (before?.cpuSeconds ?? Number.NaN)) * 1000;
        stormRows.push({ round, side: side.name, devices, connected: r.connected, elapsedMs: r.elapsedMs, cpuMs });
        log(
          `  storm round ${round + 1} ${side.name}: ${r.connected}/${devices} in ${(r.elapsedMs / 1000).toFixed(2)} s` +
            `${r.failed > 0 ? ` (${r.failed} failed: ${r.firstError})` : ""}`,
        );
      } finally {
        await driver.close();
        await bridge.stop();
      }
    }
  }
}

const f = (n: number, digits = 2) => n.toFixed(digits);

function report(): void {
  console.log(`\nconnect benchmark, ${machineLine(machine)}`);
  console.log(`this build: ${ROOT}; baseline: ${baselineCommit}; ${rounds} rounds, sides alternating\n`);
  if (cycleRows.length > 0) {
    console.log(`Wake -> onConnect -> onClose -> hibernate cycles, ${cycles} per round over ${cycleAgents} agents:\n`);
    console.log(
      "| round | build | wall ms / cycle | main thread busy ms / cycle | CPU ms / cycle | wake ms / cycle | open us |",
    );
    console.log("|---:|---|---:|---:|---:|---:|---:|");
    for (const r of cycleRows) {
      const per = (ms: number) => f(ms / r.cycles, 3);
      console.log(
        `| ${r.round + 1} | ${r.side} | ${per(r.wallMs)} | ${per(r.busyMs)} | ${per(r.cpuMs)} | ${per(r.wakeMs)} | ` +
          `${f((r.openMs / r.opens) * 1000, 0)} |`,
      );
    }
    const per = (side: string, key: "wallMs" | "busyMs" | "cpuMs") =>
      median(cycleRows.filter((r) => r.side === side).map((r) => r[key] / r.cycles));
    const [a, b] = sides.map((s) => s.name) as [string, string];
    const line = (key: "wallMs" | "busyMs" | "cpuMs") =>
      `${f(per(a, key), 3)} vs ${f(per(b, key), 3)} (**${f(per(a, key) / per(b, key))}x**)`;
    const open = (side: string) =>
      median(cycleRows.filter((r) => r.side === side).map((r) => (r.openMs / r.opens) * 1000));
    console.log(`\nmedian ms per cycle: wall ${line("wallMs")}; busy ${line("busyMs")}; CPU ${line("cpuMs")}`);
    console.log(`median us per open: ${f(open(a), 0)} vs ${f(open(b), 0)} (**${f(open(a) / open(b))}x**)\n`);
  }
  if (stormRows.length > 0) {
    console.log(
      `Reconnect storm of ${devices} known devices after a restart, maxActiveAgents ${maxActive}, ` +
        `${pending} CONNECTs pending at most:\n`,
    );
    console.log("| round | build | connected | seconds | devices / s | bridge CPU ms / device |");
    console.log("|---:|---|---:|---:|---:|---:|");
    for (const r of stormRows) {
      console.log(
        `| ${r.round + 1} | ${r.side} | ${r.connected} | ${f(r.elapsedMs / 1000)} | ` +
          `${f(r.connected / (r.elapsedMs / 1000), 0)} | ${f(r.cpuMs / r.devices)} |`,
      );
    }
    const rate = (side: string) =>
      median(stormRows.filter((r) => r.side === side).map((r) => r.connected / (r.elapsedMs / 1000)));
    const cpu = (side: string) => median(stormRows.filter((r) => r.side === side).map((r) => r.cpuMs / r.devices));
    const [a, b] = sides.map((s) => s.name) as [string, string];
    console.log(
      `\nmedian devices/s: ${f(rate(a), 0)} vs ${f(rate(b), 0)} (**${f(rate(a) / rate(b))}x**); ` +
        `bridge CPU ms per device: ${f(cpu(a))} vs ${f(cpu(b))} (**${f(cpu(a) / cpu(b))}x**)`,
    );
  }
}

try {
  if (only.has("cycles")) runCycles();
  if (only.has("storm")) await runStorms();
  report();
  fs.mkdirSync(resultsDir, { recursive: true });
  const file = path.join(resultsDir, `connect-${startedAt.toISOString().replace(/[:.]/g, "-")}.json`);
  fs.writeFileSync(file, JSON.stringify({ machine, baselineCommit, cycleRows, stormRows }, null, 2));
  log(`results: ${file}`);
} finally {
  disarmDeadline();
  cleanup.all();
}
