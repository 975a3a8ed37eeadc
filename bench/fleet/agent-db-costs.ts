/**
 * The two SQLite costs the fleet benchmark traced to agent databases, measured alone and interleaved so that both
 * variants see the same machine load (`node --import tsx bench/fleet/agent-db-costs.ts [agents] [rounds]`):
 *
 * 1. Commit latency of N agent databases committing 3-row telemetry round-robin (as N devices at the same rate do):
 *    "uniform" gives every database SQLite's default `wal_autocheckpoint` (1000 pages), as before; "staggered" is
 *    what `openAgentDatabase` sets now (a per-file threshold, agents/wal-tuning.ts). Reported: p50/p99/max commit ms
 *    and the busy time of the worst round (every agent committing once: how long the last device of the round
 *    waited behind the others, i.e. an event-loop stall).
 * 2. Creating and closing a new agent database: the previous open sequence (separate schema statements, creation
 *    synced) vs `openAgentDatabase` now.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { openAgentDatabase, type StorageSettings } from "../../agents/storage.ts";
import { percentileOfSorted } from "../percentile.ts";

const agents = Number(process.argv[2] ?? 100);
const rounds = Number(process.argv[3] ?? 600);
const settings: StorageSettings = {
  maxDatabaseBytes: 1024 ** 3,
  synchronous: "NORMAL",
  lockingMode: "EXCLUSIVE",
  cacheSizeKiB: 2048,
  pageSizeBytes: 4096,
};
const TELEMETRY = `CREATE TABLE IF NOT EXISTS telemetry (id INTEGER PRIMARY KEY AUTOINCREMENT, ts INTEGER NOT NULL,
  metric TEXT NOT NULL, kind TEXT NOT NULL, value REAL, value_text TEXT, value_blob BLOB, unit TEXT);
  CREATE INDEX IF NOT EXISTS telemetry_metric_ts ON telemetry (metric, ts);
  CREATE INDEX IF NOT EXISTS telemetry_ts ON telemetry (ts);`;

function commitRun(dir: string, variant: "uniform" | "staggered") {
  const dbs = Array.from({ length: agents }, (_, i) => {
    const db = openAgentDatabase(path.join(dir, `${variant}-${i}.db`), settings);
    if (variant === "uniform") db.pragma("wal_autocheckpoint = 1000");
    db.exec(TELEMETRY);
    return { db, insert: db.prepare("INSERT INTO telemetry (ts, metric, kind, value) VALUES (?, ?, 'n', ?)") };
  });
  const times: number[] = [];
  // One round = every agent commits once, as 100 devices at the same rate do in one interval of the fleet bench: the
  // busy time of a round is how long the last device of that round waited behind the others.
  const roundMs: number[] = [];
  const t0 = performance.now();
  let ts = 1_700_000_000_000;
  for (let r = 0; r < rounds; r++) {
    let busy = 0;
    for (const { db, insert } of dbs) {
      const c0 = performance.now();
      db.exec("BEGIN");
      for (const metric of ["seq", "temp", "hum"]) insert.run(ts++, metric, r);
      db.exec("COMMIT");
      const c1 = performance.now();
      times.push(c1 - c0);
      busy += c1 - c0;
    }
    roundMs.push(busy);
  }
  const wallMs = performance.now() - t0;
  for (const { db } of dbs) db.close();
  times.sort((a, b) => a - b);
  return {
    variant,
    commits: times.length,
    wallMs,
    p50: percentileOfSorted(times, 50),
    p99: percentileOfSorted(times, 99),
    p999: percentileOfSorted(times, 99.9),
    max: times[times.length - 1] ?? 0,
    over20ms: times.filter((t) => t > 20).length,
    worstRound: Math.max(...roundMs),
    roundsOver50: roundMs.filter((t) => t > 50).length,
    roundsOver200: roundMs.filter((t) => t > 200).length,
  };
}

const SCHEMA = fs
  .readFileSync(new URL("../../agents/storage.ts", import.meta.url), "utf8")
  .split("const SCHEMA = `")[1]
  ?.split("`;")[0];

/** The open sequence before this change, for the baseline. */
function openBefore(file: string): Database.Database {
  const db = new Database(file);
  db.pragma("locking_mode = EXCLUSIVE");
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  db.pragma(`cache_size = -${settings.cacheSizeKiB}`);
  db.pragma(`max_page_count = ${settings.maxDatabaseBytes / 4096}`);
  if (Number(db.pragma("user_version", { simple: true })) < 1) {
    db.exec(SCHEMA ?? "");
    db.pragma("user_version = 1");
  }
  return db;
}

function createRun(dir: string, variant: "before" | "now", n: number) {
  const open: number[] = [];
  const close: number[] = [];
  for (let i = 0; i < n; i++) {
    const file = path.join(dir, `create-${variant}-${i}.db`);
    const o0 = performance.now();
    const db = variant === "before" ? openBefore(file) : openAgentDatabase(file, settings);
    const o1 = performance.now();
    db.close();
    close.push(performance.now() - o1);
    open.push(o1 - o0);
  }
  open.sort((a, b) => a - b);
  close.sort((a, b) => a - b);
  const sum = (a: number[]) => a.reduce((x, y) => x + y, 0);
  return { variant, n, openP50: percentileOfSorted(open, 50), closeP50: percentileOfSorted(close, 50), totalMs: sum(open) + sum(close) };
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "agent-db-costs-"));
try {
  const f = (x: number) => x.toFixed(2);
  console.log(
    `machine: ${os.availableParallelism()} x ${os.cpus()[0]?.model}, node ${process.version}, load ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(" ")}`,
  );
  console.log(`commits: ${agents} agent databases x ${rounds} rounds of 3-row commits, round-robin`);
  console.log(
    "| variant | commits | wall s | p50 ms | p99 ms | p99.9 ms | max ms | commits > 20 ms | worst round ms | rounds > 50 ms | rounds > 200 ms |",
  );
  console.log("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
  for (const variant of ["uniform", "staggered", "uniform", "staggered"] as const) {
    const r = commitRun(fs.mkdtempSync(path.join(dir, "c-")), variant);
    console.log(
      `| ${r.variant} | ${r.commits} | ${f(r.wallMs / 1000)} | ${f(r.p50)} | ${f(r.p99)} | ${f(r.p999)} | ${f(r.max)} | ${r.over20ms} | ${f(r.worstRound)} | ${r.roundsOver50} | ${r.roundsOver200} |`,
    );
  }
  console.log("\ncreate + close a new agent database:");
  console.log("| variant | databases | open p50 ms | close p50 ms | open+close total s |");
  console.log("|---|---:|---:|---:|---:|");
  for (const variant of ["before", "now", "before", "now"] as const) {
    const r = createRun(fs.mkdtempSync(path.join(dir, "o-")), variant, 100);
    console.log(`| ${r.variant} | ${r.n} | ${f(r.openP50)} | ${f(r.closeP50)} | ${f(r.totalMs / 1000)} |`);
  }
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
