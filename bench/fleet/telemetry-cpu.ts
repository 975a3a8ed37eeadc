/**
 * CPU per telemetry message in the runtime alone (no broker, no sockets): N DeviceAgents, each with an open MQTT
 * connection, take QoS 1 style CBOR telemetry events and every event's commit is awaited, as the broker awaits it
 * before PUBACK. Baselines in the same run: raw better-sqlite3 with the schema-1 telemetry table, one BEGIN / an
 * INSERT per reading / COMMIT per message on one database (the figure earlier runs reported); then the telemetry layouts of
 * issue #6 (telemetry-layouts.ts) over N databases, twice each, interleaved so they see the same machine load, with
 * the WAL frames each commit appends. Run: node --import tsx bench/fleet/telemetry-cpu.ts [messages] [devices] [readings]
 * [pageSizeBytes of the runtime's agent databases, default the runtime's own]
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import pino from "pino";
import { createRuntime, DeviceAgent } from "../../agents/index.ts";
import { LAYOUTS, runLayout } from "./telemetry-layouts.ts";

const messages = Number(process.argv[2] ?? 40_000);
const devices = Number(process.argv[3] ?? 250);
/** Readings per message (default 2, as in the runs before issue #6; the fleet benchmark sends 3). */
const readings = Number(process.argv[4] ?? 2);
const metricNames = [..."thsabcdefgijklmnopqruvwxyz"].slice(0, readings);
const pageSizeBytes = process.argv[5] === undefined ? undefined : Number(process.argv[5]);
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "telemetry-cpu-"));
const rt = createRuntime({
  dataDir,
  defaultAgentClass: DeviceAgent,
  logger: pino({ level: "silent" }),
  ...(pageSizeBytes === undefined ? {} : { pageSizeBytes }),
});
const transport = { send() {}, sendProtocol() {}, close() {} };
try {
  await rt.start();
  const ids = Array.from({ length: devices }, (_, i) => `dev-${i}`);
  for (const id of ids) await rt.open(id, { id: `${id}-c`, kind: "mqtt", codec: "cbor", transport });
  let sent = 0;
  const run = async (count: number): Promise<void> => {
    // Each device keeps one message in flight, like a QoS 1 device with a receive maximum of 1.
    let next = 0;
    await Promise.all(
      ids.map(async (id) => {
        while (next < count) {
          next++;
          const out = rt.deliver(id, `${id}-c`, {
            channel: "telemetry",
            frame: { r: frameReadings(sent++) },
          });
          if (!out.accepted) {
            await out.ready;
            continue;
          }
          const r = await out.done;
          if (r.status !== "committed") throw new Error(`event failed: ${r.code}`);
        }
      }),
    );
  };
  await run(Math.min(5000, messages / 4));
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await run(messages);
  const c = process.cpuUsage(c0);
  const wall = performance.now() - t0;
  const cpuUs = c.user + c.system;
  console.log(
    `${messages} msgs, ${devices} devices: ${(cpuUs / messages).toFixed(1)} us CPU/msg (user ${(c.user / messages).toFixed(1)}, sys ${(c.system / messages).toFixed(1)}), ${Math.round((messages / wall) * 1000)} msg/s`,
  );
  const raw = rawSqliteUs(dataDir, messages);
  console.log(
    `baseline raw better-sqlite3: ${raw.toFixed(1)} us CPU/msg; runtime ${(cpuUs / messages / raw).toFixed(2)}x`,
  );
  console.log(
    `\nraw layouts, ${devices} databases, ${messages} messages of ${readings} readings each, twice interleaved:`,
  );
  console.log(
    "| layout | CPU us/msg (run 1) | CPU us/msg (run 2) | ratio to schema 1 (mean) | WAL frames/commit | WAL KiB/commit |",
  );
  console.log("|---|---:|---:|---:|---:|---:|");
  const runs = LAYOUTS.map(() => [] as number[]);
  const frames: number[] = [];
  const kib: number[] = [];
  for (let round = 0; round < 2; round++) {
    LAYOUTS.forEach((layout, i) => {
      const dir = fs.mkdtempSync(path.join(dataDir, "layout-"));
      const r = runLayout(layout, dir, devices, messages, metricNames);
      fs.rmSync(dir, { recursive: true, force: true });
      runs[i].push(r.cpuUsPerMessage);
      frames[i] = r.walFramesPerCommit;
      kib[i] = r.walKiBPerCommit;
    });
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  LAYOUTS.forEach((layout, i) => {
    console.log(
      `| ${layout.name} | ${runs[i][0].toFixed(1)} | ${runs[i][1].toFixed(1)} | ${(mean(runs[i]) / mean(runs[0])).toFixed(2)} | ${frames[i].toFixed(2)} | ${kib[i].toFixed(1)} |`,
    );
  });
} finally {
  await rt.shutdown();
  fs.rmSync(dataDir, { recursive: true, force: true });
}

/** The `r` map of message `i`: the first reading varies, the others are constant. */
function frameReadings(i: number): Record<string, number> {
  const r: Record<string, number> = {};
  metricNames.forEach((name, k) => {
    r[name] = k === 0 ? 21.5 + (i % 7) : 40 + k;
  });
  return r;
}

/** CPU per message of the same writes without the runtime, microseconds. */
function rawSqliteUs(dir: string, count: number): number {
  const db = new Database(path.join(dir, "raw.db"));
  try {
    db.pragma("locking_mode = EXCLUSIVE");
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = NORMAL");
    db.pragma("cache_size = -256");
    db.exec(`CREATE TABLE telemetry (id INTEGER PRIMARY KEY AUTOINCREMENT, ts INTEGER NOT NULL, metric TEXT NOT NULL,
      kind TEXT NOT NULL, value REAL, value_text TEXT, value_blob BLOB, unit TEXT)`);
    db.exec("CREATE INDEX telemetry_metric_ts ON telemetry (metric, ts)");
    db.exec("CREATE INDEX telemetry_ts ON telemetry (ts)");
    const insert = db.prepare(
      "INSERT INTO telemetry (ts, metric, kind, value, value_text, value_blob, unit) VALUES (?, ?, 'n', ?, NULL, NULL, NULL) RETURNING id",
    );
    const begin = db.prepare("BEGIN");
    const commit = db.prepare("COMMIT");
    const c0 = process.cpuUsage();
    for (let i = 0; i < count; i++) {
      begin.run();
      for (const [name, value] of Object.entries(frameReadings(i))) insert.all(Date.now(), name, value);
      commit.run();
    }
    const c = process.cpuUsage(c0);
    return (c.user + c.system) / count;
  } finally {
    db.close();
  }
}
