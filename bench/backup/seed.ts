/**
 * The data dir the backup benchmark copies: N devices in the registry and N DeviceAgent databases written through the
 * real runtime (the tables, indexes and page layout a bridge's agents have), each with telemetry rows (frames of 8
 * readings) up to a minute apart
 * and a reported shadow, a few of them large. Written in this process before any bridge runs; the runtime is shut
 * down afterwards, so the files are closed and checkpointed, as a bridge leaves them.
 */
import fs from "node:fs";
import path from "node:path";
import pino from "pino";
import { DeviceAgent, createRuntime } from "../../agents/index.ts";
import type { AgentRuntime } from "../../agents/types.ts";
import { AGENTS_DIR, REGISTRY_FILE } from "../../app/bridge/layout.ts";
import { createDeviceRegistry } from "../../broker/index.ts";
import type { ValueMap } from "../../codecs/index.ts";
import { nullTransport } from "../agents/workload.ts";
import type { Cleanup } from "../fleet/cleanup.ts";
import type { BackupBenchOptions } from "./options.ts";

export interface SeededData {
  dataDir: string;
  /** Agent (= device) ids, in index order: the live devices first, the large agents last. */
  ids: string[];
  /** Secrets of the live devices, by id. */
  secrets: Map<string, string>;
  /** Wall time to write it all, ms. */
  seedMs: number;
}

/** Metrics of every telemetry frame (one telemetry row, telemetry-store.ts, holds a frame's readings). */
const METRICS = ["temp", "hum", "pressure", "co2", "battery", "rssi", "uptime", "seq"] as const;
/** Frames delivered to one agent before waiting for their commits (well under the default mailbox of 256). */
const FRAMES_IN_FLIGHT = 64;
const SIX_DAYS_MS = 6 * 86_400_000;
/** Agents filled at once. */
const SEED_CONCURRENCY = 8;
/**
 * The secrets' scrypt cost: a sixteenth of the default's (N=16384). Only the registry's size matters to a backup,
 * not how hard its hashes are, and the default would spend minutes of CPU here on 1000 devices.
 */
const SEED_SCRYPT = { N: 1024, r: 8, p: 1 };

export function deviceId(index: number): string {
  return `bb-${String(index).padStart(5, "0")}`;
}

export async function seedDataDir(
  options: BackupBenchOptions,
  cleanup: Cleanup,
  log: (line: string) => void,
): Promise<SeededData> {
  const started = performance.now();
  const dataDir = cleanup.tempDir("bench-backup-data-");
  const ids = Array.from({ length: options.agents }, (_, i) => deviceId(i));
  const secrets = await provision(dataDir, ids, options.devices);
  log(`seed: ${ids.length} devices provisioned in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  const runtime = createRuntime({
    dataDir: path.join(dataDir, AGENTS_DIR),
    defaultAgentClass: DeviceAgent,
    logger: pino({ level: "silent" }),
  });
  try {
    await runtime.start();
    const firstLarge = ids.length - options.large;
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < ids.length) {
        const index = next++;
        const rows = index >= firstLarge ? options.largeRows : options.rows;
        await fillAgent(runtime, ids[index], rows, options.shadowKeys);
      }
    };
    await Promise.all(Array.from({ length: SEED_CONCURRENCY }, worker));
  } finally {
    await runtime.shutdown();
  }
  return { dataDir, ids, secrets, seedMs: performance.now() - started };
}

/** Adds every device to the registry; returns the secrets of the first `live` ones (the others never connect). */
async function provision(dataDir: string, ids: readonly string[], live: number): Promise<Map<string, string>> {
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const registry = createDeviceRegistry({ path: path.join(dataDir, REGISTRY_FILE), scrypt: SEED_SCRYPT });
  const secrets = new Map<string, string>();
  try {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < ids.length) {
        const index = next++;
        const result = await registry.add(ids[index], { codec: "cbor" });
        if (result.status !== "created") throw new Error(`provisioning ${ids[index]}: ${result.status}`);
        if (index < live) secrets.set(ids[index], result.secret);
      }
    };
    // scrypt runs on libuv's thread pool, 4 threads by default.
    await Promise.all(Array.from({ length: 4 }, worker));
  } finally {
    registry.close();
  }
  return secrets;
}

/** One agent: `rows` telemetry rows (frames of 8 readings up to a minute apart, ending now) and a reported shadow. */
async function fillAgent(runtime: AgentRuntime, id: string, rows: number, shadowKeys: number): Promise<void> {
  const connectionId = `seed-${id}`;
  const opened = await runtime.open(id, { id: connectionId, kind: "mqtt", codec: "cbor", transport: nullTransport });
  if (opened.status !== "committed") throw new Error(`opening ${id}: ${opened.message}`);
  const endMs = Date.now();
  // At most a minute apart, and all within the default retention of 7 days, so none is deleted as it is written.
  const spacingMs = Math.min(60_000, Math.floor(SIX_DAYS_MS / Math.max(1, rows)));
  for (let first = 0; first < rows; first += FRAMES_IN_FLIGHT) {
    const pending: Promise<{ status: string; message?: string }>[] = [];
    for (let k = first; k < Math.min(rows, first + FRAMES_IN_FLIGHT); k++) {
      const readings: ValueMap = {};
      for (let m = 0; m < METRICS.length; m++) readings[METRICS[m]] = m === 7 ? k : 20 + ((k * 7 + m * 13) % 100) / 10;
      const outcome = runtime.deliver(id, connectionId, {
        channel: "telemetry",
        frame: { ts: endMs - (rows - k) * spacingMs, r: readings },
      });
      if (!outcome.accepted) throw new Error(`${id}: mailbox full while seeding`);
      pending.push(outcome.done);
    }
    for (const result of await Promise.all(pending)) {
      if (result.status !== "committed") throw new Error(`${id}: telemetry failed while seeding: ${result.message}`);
    }
  }
  if (shadowKeys > 0) {
    const reported: ValueMap = {};
    for (let k = 0; k < shadowKeys; k++) reported[`setting${k}`] = `value-${id}-${k}`;
    const outcome = runtime.deliver(id, connectionId, { channel: "state", frame: { v: 0, s: reported } });
    if (!outcome.accepted) throw new Error(`${id}: mailbox full while seeding`);
    const result = await outcome.done;
    if (result.status !== "committed") throw new Error(`${id}: shadow failed while seeding: ${result.message}`);
  }
  await runtime.close(id, connectionId, "disconnect");
}
