/**
 * The three phases of the fleet benchmark, each against a fresh server process: the throughput sweep, idle
 * connection scale, and SIGKILL under load. Each phase stops what it started, also when it fails.
 */
import { httpTelemetryVerifier } from "../../firmware-sim/index.ts";
import { prepareBridgeData } from "./bridge-data.ts";
import type { Cleanup } from "./cleanup.ts";
import { startDriver } from "./driver-process.ts";
import { collectGarbage } from "./inspector-gc.ts";
import { sampleProcess } from "./proc.ts";
import { type SweepOptions, type SweepResult, sweep } from "./sweep.ts";
import { startAedes, startBridge, startMosquitto, type Target, type TargetName } from "./targets.ts";

/** The operator token the benchmark gives its bridges (BRIDGE_API_TOKEN). */
const API_TOKEN = "bench-fleet-operator-token-0123456789";

export type Log = (line: string) => void;

interface Started {
  target: Target;
  /** Secrets by device index (authenticated bridge), else undefined. */
  secrets?: string[];
  provisionMs?: number;
  dataDir?: string;
  configFile?: string;
}

async function startTarget(
  name: TargetName,
  cleanup: Cleanup,
  bridge: { provision: number; idPrefix: string; idleTimeoutMs: number; maxConnections: number; nodeFlags?: string[] },
): Promise<Started | undefined> {
  if (name === "aedes") return { target: await startAedes(cleanup) };
  if (name === "mosquitto") {
    const target = await startMosquitto(cleanup);
    return target ? { target } : undefined;
  }
  const data = await prepareBridgeData(bridge, cleanup);
  const target = await startBridge(
    { dataDir: data.dataDir, configFile: data.configFile, apiToken: API_TOKEN, anonymous: bridge.provision === 0, nodeFlags: bridge.nodeFlags },
    cleanup,
  );
  return { target, secrets: data.secrets, provisionMs: data.provisionMs, dataDir: data.dataDir, configFile: data.configFile };
}

export interface SweepPhaseResult extends SweepResult {
  target: TargetName;
  devices: number;
  /** Bridge only: time to provision the devices' scrypt secrets, ms. */
  provisionMs?: number;
}

/** Sweep of one target with `devices` devices (authenticated on the bridge). */
export async function sweepPhase(
  name: TargetName,
  devices: number,
  options: SweepOptions,
  cleanup: Cleanup,
  log: Log,
  nodeFlags?: string[],
): Promise<SweepPhaseResult | undefined> {
  const started = await startTarget(name, cleanup, { provision: devices, idPrefix: "load-", idleTimeoutMs: 60_000, maxConnections: 20_000, nodeFlags });
  if (!started) return undefined;
  const { target } = started;
  const driver = startDriver(cleanup);
  try {
    const connected = await driver.connect({
      host: target.host,
      port: target.port,
      idPrefix: "load-",
      startIndex: 0,
      count: devices,
      secrets: name === "bridge" ? started.secrets : undefined,
      connectRatePerSec: 1000,
      maxPendingConnects: 50,
      keepaliveSec: 0,
      timeoutMs: 30_000,
    });
    if (connected.failed > 0) throw new Error(`${name}: ${connected.failed} devices could not connect (${connected.firstError})`);
    const result = await sweep(target, driver, options, log);
    return { target: name, devices, provisionMs: started.provisionMs, ...result };
  } finally {
    await driver.close();
    await target.stop();
    if (started.dataDir) cleanup.removeDir(started.dataDir);
  }
}

export interface ScaleRow {
  devices: number;
  connected: number;
  rssBytes: number;
  /** (RSS - RSS with no device) / devices. */
  bytesPerDevice: number;
  rssAnonBytes: number;
  rssFileBytes: number;
  /** Bridge only: agents in memory / hibernated, from /metrics. */
  agentsActive?: number;
  agentsHibernated?: number;
  /** Bridge only: V8 heap in use and external (Buffer) memory, bytes, from /metrics: what RSS holds beyond them is native (SQLite, malloc). */
  heapUsedBytes?: number;
  heapTotalBytes?: number;
  externalBytes?: number;
  /** Bridge only: RSS and V8 heap in use right after a full GC (inspector), and (RSS - base after GC) / devices. */
  rssAfterGcBytes?: number;
  heapUsedAfterGcBytes?: number;
  bytesPerDeviceAfterGc?: number;
}

export interface ScalePhaseResult {
  target: TargetName;
  baseRssBytes: number;
  /** Bridge only: RSS with no device, right after a full GC. */
  baseRssAfterGcBytes?: number;
  rows: ScaleRow[];
  connectMs: number[];
}

async function bridgeGauges(apiUrl: string): Promise<{ active?: number; hibernated?: number; heapUsed?: number; heapTotal?: number; external?: number }> {
  try {
    const response = await fetch(`${apiUrl}/metrics`, { headers: { authorization: `Bearer ${API_TOKEN}` } });
    const text = await response.text();
    const gauge = (name: string) => {
      const match = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "m").exec(text);
      return match ? Number(match[1]) : undefined;
    };
    return {
      active: gauge("bridge_agents_active"),
      hibernated: gauge("bridge_agents_hibernated"),
      heapUsed: gauge("nodejs_heap_size_used_bytes"),
      heapTotal: gauge("nodejs_heap_size_total_bytes"),
      external: gauge("nodejs_external_memory_bytes"),
    };
  } catch {
    return {};
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Idle connection scale: connect devices in steps up to each count (on the bridge, a CONNECT creates the device's agent
 * and commits its connection), wait past the idle timeout so agents hibernate, then read the server's RSS.
 * The bridge runs anonymous here: see the report for the scrypt provisioning cost that rules out 10,000 secrets.
 */
export async function scalePhase(
  name: TargetName,
  counts: number[],
  cleanup: Cleanup,
  log: Log,
  nodeFlags?: string[],
): Promise<ScalePhaseResult | undefined> {
  const idleTimeoutMs = 1000;
  const max = Math.max(...counts);
  // The bridge also opens its inspector on loopback, so RSS can be read again after a full GC (inspector-gc.ts).
  const flags = name === "bridge" ? [...(nodeFlags ?? []), "--inspect=127.0.0.1:0"] : nodeFlags;
  const started = await startTarget(name, cleanup, { provision: 0, idPrefix: "idle-", idleTimeoutMs, maxConnections: max + 1000, nodeFlags: flags });
  if (!started) return undefined;
  const { target } = started;
  const driver = startDriver(cleanup);
  try {
    await sleep(1500);
    const baseRssBytes = sampleProcess(target.pid)?.rssBytes ?? Number.NaN;
    const gcUrl = target.inspectorUrl?.();
    const afterGc = async (): Promise<number> => {
      if (gcUrl === undefined) return Number.NaN;
      await collectGarbage(gcUrl);
      await collectGarbage(gcUrl);
      await sleep(1000);
      return sampleProcess(target.pid)?.rssBytes ?? Number.NaN;
    };
    const baseRssAfterGcBytes = gcUrl === undefined ? undefined : await afterGc();
    const rows: ScaleRow[] = [];
    const connectMs: number[] = [];
    let connected = 0;
    for (const count of counts) {
      const reply = await driver.connect({
        host: target.host,
        port: target.port,
        idPrefix: "idle-",
        startIndex: connected,
        count: count - connected,
        connectRatePerSec: 2000,
        maxPendingConnects: 100,
        // Four source addresses: 10,000 connections fit one, but earlier phases leave ports in TIME_WAIT.
        localAddresses: ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"],
        keepaliveSec: 0,
        timeoutMs: 60_000,
      });
      connected = count;
      connectMs.push(reply.elapsedMs);
      // Past the idle timeout plus the hibernation sweep, so the bridge's agents have left memory.
      await sleep(idleTimeoutMs + 4000);
      const sample = sampleProcess(target.pid);
      const rss = sample?.rssBytes ?? Number.NaN;
      const row: ScaleRow = {
        devices: count,
        connected: reply.online,
        rssBytes: rss,
        bytesPerDevice: (rss - baseRssBytes) / count,
        rssAnonBytes: sample?.rssAnonBytes ?? Number.NaN,
        rssFileBytes: sample?.rssFileBytes ?? Number.NaN,
      };
      if (target.apiUrl) {
        const g = await bridgeGauges(target.apiUrl);
        row.agentsActive = g.active;
        row.agentsHibernated = g.hibernated;
        row.heapUsedBytes = g.heapUsed;
        row.heapTotalBytes = g.heapTotal;
        row.externalBytes = g.external;
      }
      if (gcUrl !== undefined && baseRssAfterGcBytes !== undefined) {
        row.rssAfterGcBytes = await afterGc();
        row.bytesPerDeviceAfterGc = (row.rssAfterGcBytes - baseRssAfterGcBytes) / count;
        if (target.apiUrl) row.heapUsedAfterGcBytes = (await bridgeGauges(target.apiUrl)).heapUsed;
      }
      rows.push(row);
      log(`  ${name} ${count} idle devices (${reply.online} online, ${reply.failed} failed${reply.firstError ? `, first error: ${reply.firstError}` : ""}, connected in ${Math.round(reply.elapsedMs)} ms): RSS ${(rss / 2 ** 20).toFixed(1)} MiB (anon ${(row.rssAnonBytes / 2 ** 20).toFixed(1)}, file/shm ${(row.rssFileBytes / 2 ** 20).toFixed(1)}), ${(row.bytesPerDevice / 1024).toFixed(1)} KiB/device${row.agentsActive === undefined ? "" : `, agents active ${row.agentsActive} hibernated ${row.agentsHibernated}, heap used/total ${((row.heapUsedBytes ?? 0) / 2 ** 20).toFixed(1)}/${((row.heapTotalBytes ?? 0) / 2 ** 20).toFixed(1)} MiB, external ${((row.externalBytes ?? 0) / 2 ** 20).toFixed(1)} MiB`}${row.rssAfterGcBytes === undefined ? "" : `; after a full GC: RSS ${(row.rssAfterGcBytes / 2 ** 20).toFixed(1)} MiB, heap used ${((row.heapUsedAfterGcBytes ?? 0) / 2 ** 20).toFixed(1)} MiB, ${((row.bytesPerDeviceAfterGc ?? 0) / 1024).toFixed(1)} KiB/device`}`);
    }
    return { target: name, baseRssBytes, baseRssAfterGcBytes, rows, connectMs };
  } finally {
    await driver.close();
    await target.stop();
    if (started.dataDir) cleanup.removeDir(started.dataDir);
  }
}

export interface CrashPhaseResult {
  devices: number;
  offeredPerSec: number;
  killedAfterMs: number;
  ackedBeforeKill: number;
  /** Acknowledged messages not readable through the REST API after the restart: must be 0. */
  lostAcknowledged: number;
  unverifiableDevices: number;
  restartMs: number;
  provisionMs: number;
}

/** SIGKILL the authenticated bridge mid-run, restart it on the same data dir, read every acknowledged seq back. */
export async function crashPhase(devices: number, ratePerSec: number, runMs: number, cleanup: Cleanup, log: Log, nodeFlags?: string[]): Promise<CrashPhaseResult> {
  const started = await startTarget("bridge", cleanup, { provision: devices, idPrefix: "crash-", idleTimeoutMs: 60_000, maxConnections: 20_000, nodeFlags });
  if (!started?.dataDir || !started.configFile) throw new Error("bridge did not start");
  const { dataDir, configFile } = started;
  const driver = startDriver(cleanup);
  let second: Target | undefined;
  try {
    await driver.connect({ host: started.target.host, port: started.target.port, idPrefix: "crash-", startIndex: 0, count: devices, secrets: started.secrets, connectRatePerSec: 1000, maxPendingConnects: 50, keepaliveSec: 0, timeoutMs: 30_000 });
    const killedAfterMs = runMs / 2;
    const killer = setTimeout(() => void started.target.stop("SIGKILL"), killedAfterMs);
    const run = await driver.run({ ratePerSec, durationMs: runMs, windowPerDevice: 16, drainMs: 1000, recordSeqs: true });
    clearTimeout(killer);
    await started.target.stop("SIGKILL");
    const acked = run.ackedSeqs ?? {};
    const ackedBeforeKill = Object.values(acked).reduce((n, seqs) => n + seqs.length, 0);
    log(`  killed the bridge after ${killedAfterMs} ms: ${ackedBeforeKill} messages acknowledged, ${run.disconnects} devices cut off`);
    const restartAt = performance.now();
    second = await startBridge({ dataDir, configFile, apiToken: API_TOKEN, anonymous: false, nodeFlags }, cleanup);
    const restartMs = performance.now() - restartAt;
    const verify = httpTelemetryVerifier({ baseUrl: second.apiUrl ?? "", token: API_TOKEN });
    let lost = 0;
    let unverifiable = 0;
    for (const [id, seqs] of Object.entries(acked)) {
      const read = await verify(id, [...seqs].sort((a, b) => a - b));
      if (read.status === "read") lost += read.missingSeqs.length;
      else unverifiable++;
    }
    log(`  after restart (${Math.round(restartMs)} ms): ${lost} acknowledged messages missing, ${unverifiable} devices unreadable`);
    return { devices, offeredPerSec: run.offeredPerSec, killedAfterMs, ackedBeforeKill, lostAcknowledged: lost, unverifiableDevices: unverifiable, restartMs, provisionMs: started.provisionMs ?? 0 };
  } finally {
    await driver.close();
    await started.target.stop("SIGKILL");
    if (second) await second.stop();
    cleanup.removeDir(dataDir);
  }
}
