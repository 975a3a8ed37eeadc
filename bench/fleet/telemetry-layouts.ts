/**
 * Telemetry table layouts measured side by side on raw better-sqlite3 (issue #6): N agent databases opened as the
 * runtime opens them (`openAgentDatabase`: WAL, synchronous NORMAL, locking EXCLUSIVE, staggered checkpoints), one
 * transaction per message, messages round-robin over the databases as N devices at the same rate send them. Each
 * layout writes what its store would write for one frame of `readings` readings; "row per frame" runs the store's own
 * shape key and value encoding (agents/device/telemetry-shapes.ts, values.ts), so its JavaScript cost is counted too.
 */
import path from "node:path";
import DatabaseClass from "better-sqlite3";
import type Database from "better-sqlite3";
import { openAgentDatabase } from "../../agents/storage.ts";
import { walAutocheckpointPages } from "../../agents/wal-tuning.ts";
import { shapeSpec } from "../../agents/device/telemetry-shapes.ts";
import { encodeValue } from "../../agents/device/values.ts";

/** One layout: its tables and a writer of one message. */
export interface TelemetryLayout {
  name: string;
  schema: string;
  /** SQLite page size of the databases, bytes; default 4096 (SQLite's own, set explicitly by `runLayout`). */
  pageSizeBytes?: number;
  /** Returns a function that writes one message's readings (inside the caller's transaction). */
  writer(db: Database.Database): (ts: number, metrics: readonly string[], values: readonly number[]) => void;
}

/** The layout DeviceAgent stores since schema 4; measured on 4 KiB and on 1 KiB pages. */
const SCHEMA_4: TelemetryLayout = {
  name: "schema 4: row per frame (shape id + CBOR values), (ts, shape) index",
  schema: `CREATE TABLE telemetry_rows (id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, shape INTEGER NOT NULL,
      n INTEGER NOT NULL, vals BLOB NOT NULL);
      CREATE INDEX telemetry_rows_ts ON telemetry_rows (ts, shape);`,
  writer(db) {
    const insert = db.prepare("INSERT INTO telemetry_rows (id, ts, shape, n, vals) VALUES (?, ?, ?, ?, ?)");
    const shapes = new Map<string, number>();
    let id = 1;
    return (ts, metrics, values) => {
      const spec = shapeSpec(metrics.map((metric) => ({ metric })));
      let shape = shapes.get(spec);
      if (shape === undefined) {
        shape = shapes.size + 1;
        shapes.set(spec, shape);
      }
      insert.run(id, ts, shape, metrics.length, encodeValue([...values]));
      id += metrics.length;
    };
  },
};

export const LAYOUTS: readonly TelemetryLayout[] = [
  {
    name: "schema 1: row per reading, AUTOINCREMENT, (metric, ts) and (ts) indexes",
    schema: `CREATE TABLE telemetry (id INTEGER PRIMARY KEY AUTOINCREMENT, ts INTEGER NOT NULL, metric TEXT NOT NULL,
      kind TEXT NOT NULL, value REAL, value_text TEXT, value_blob BLOB, unit TEXT);
      CREATE INDEX telemetry_metric_ts ON telemetry (metric, ts); CREATE INDEX telemetry_ts ON telemetry (ts);`,
    writer(db) {
      const insert = db.prepare(
        "INSERT INTO telemetry (ts, metric, kind, value, value_text, value_blob, unit) VALUES (?, ?, 'n', ?, NULL, NULL, NULL) RETURNING id",
      );
      return (ts, metrics, values) => {
        for (let i = 0; i < metrics.length; i++) insert.all(ts, metrics[i], values[i]);
      };
    },
  },
  {
    name: "row per reading, ids from memory, (metric, ts) index only",
    schema: `CREATE TABLE telemetry (id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, metric TEXT NOT NULL,
      kind TEXT NOT NULL, value REAL, value_text TEXT, value_blob BLOB, unit TEXT);
      CREATE INDEX telemetry_metric_ts ON telemetry (metric, ts);`,
    writer(db) {
      const insert = db.prepare("INSERT INTO telemetry (id, ts, metric, kind, value) VALUES (?, ?, ?, 'n', ?)");
      let id = 1;
      return (ts, metrics, values) => {
        for (let i = 0; i < metrics.length; i++) insert.run(id++, ts, metrics[i], values[i]);
      };
    },
  },
  {
    name: "row per reading, WITHOUT ROWID keyed (metric, ts, id)",
    schema: `CREATE TABLE telemetry (metric TEXT NOT NULL, ts INTEGER NOT NULL, id INTEGER NOT NULL, kind TEXT NOT NULL,
      value REAL, value_text TEXT, value_blob BLOB, unit TEXT, PRIMARY KEY (metric, ts, id)) WITHOUT ROWID;`,
    writer(db) {
      const insert = db.prepare("INSERT INTO telemetry (metric, ts, id, kind, value) VALUES (?, ?, ?, 'n', ?)");
      let id = 1;
      return (ts, metrics, values) => {
        for (let i = 0; i < metrics.length; i++) insert.run(metrics[i], ts, id++, values[i]);
      };
    },
  },
  SCHEMA_4,
  {
    ...SCHEMA_4,
    name: "schema 4 on 1 KiB pages (the runtime's default page size for new agent databases since session 2)",
    pageSizeBytes: 1024,
  },
];

/** Messages written to the frame-count probe before counting (about the default retention cap of 100,000 readings). */
const PROBE_PREFILL = 30_000;

/** CPU per message and WAL frames per commit of one layout over `databases` databases. */
export interface LayoutResult {
  name: string;
  cpuUsPerMessage: number;
  walFramesPerCommit: number;
  /** WAL bytes per commit (frames of page size + 24 header bytes), KiB. */
  walKiBPerCommit: number;
}

/**
 * Writes `messages` messages of `metrics` round-robin over `databases` fresh databases under `dir` and returns the
 * CPU per message. WAL frames per commit are counted on one more database with automatic checkpoints off (the frame
 * count is what `wal_checkpoint` reports, after PROBE_PREFILL messages), so the CPU figure runs with the runtime's own checkpoint settings.
 */
export function runLayout(
  layout: TelemetryLayout,
  dir: string,
  databases: number,
  messages: number,
  metrics: readonly string[],
): LayoutResult {
  const settings = {
    maxDatabaseBytes: 1024 ** 3,
    synchronous: "NORMAL",
    lockingMode: "EXCLUSIVE",
    cacheSizeKiB: 2048,
    pageSizeBytes: 4096,
  } as const;
  const open = (file: string) =>
    layout.pageSizeBytes === undefined
      ? openAgentDatabase(file, settings)
      : openWithPageSize(file, layout.pageSizeBytes);
  const dbs = Array.from({ length: databases }, (_, i) => {
    const db = open(path.join(dir, `layout-${i}.db`));
    db.exec(layout.schema);
    return { db, write: layout.writer(db), begin: db.prepare("BEGIN"), commit: db.prepare("COMMIT") };
  });
  const values = metrics.map((_, i) => 20 + i);
  let ts = 1_700_000_000_000;
  const c0 = process.cpuUsage();
  for (let m = 0; m < messages; m++) {
    const d = dbs[m % databases];
    d.begin.run();
    values[0] = m;
    d.write(ts++, metrics, values);
    d.commit.run();
  }
  const c = process.cpuUsage(c0);
  for (const d of dbs) d.db.close();

  const probe = open(path.join(dir, "layout-probe.db"));
  let frames = 0;
  let pageSize = 0;
  const commits = 300;
  try {
    probe.exec(layout.schema);
    const write = layout.writer(probe);
    // A table of PROBE_PREFILL messages first: in a small table every index fits one leaf, which hides the cost.
    probe.exec("BEGIN");
    for (let m = 0; m < PROBE_PREFILL; m++) write(ts++, metrics, values);
    probe.exec("COMMIT");
    probe.pragma("wal_autocheckpoint = 0");
    probe.pragma("wal_checkpoint(TRUNCATE)");
    for (let m = 0; m < commits; m++) {
      probe.exec("BEGIN");
      write(ts++, metrics, values);
      probe.exec("COMMIT");
    }
    const status = probe.pragma("wal_checkpoint(PASSIVE)") as Array<{ log: number }>;
    frames = Number(status[0]?.log ?? 0);
    pageSize = Number(probe.pragma("page_size", { simple: true }));
  } finally {
    probe.close();
  }
  return {
    name: layout.name,
    cpuUsPerMessage: (c.user + c.system) / messages,
    walFramesPerCommit: frames / commits,
    walKiBPerCommit: (frames * (pageSize + 24)) / commits / 1024,
  };
}

/**
 * A database with `openAgentDatabase`'s pragmas but another page size (it must be set before the file is written):
 * the checkpoint threshold is scaled so that the WAL holds as many bytes as with 4 KiB pages.
 */
function openWithPageSize(file: string, pageSizeBytes: number): Database.Database {
  const db = new DatabaseClass(file);
  db.pragma(`page_size = ${pageSizeBytes}`);
  db.pragma("locking_mode = EXCLUSIVE");
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  db.pragma(`wal_autocheckpoint = ${Math.round((walAutocheckpointPages(file) * 4096) / pageSizeBytes)}`);
  db.pragma("cache_size = -2048");
  return db;
}
