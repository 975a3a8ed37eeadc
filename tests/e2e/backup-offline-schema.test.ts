/**
 * The CLI's backup with no bridge running copies the databases as it finds them: one an older build wrote is neither
 * migrated in the data directory nor in the snapshot (a bridge started on the snapshot migrates it), and one a newer
 * build wrote is refused as `start` refuses it (exit 2, one `error:` line), leaving no snapshot (docs/operations.md,
 * "Backup and restore").
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";
import Database from "better-sqlite3";
import { Agent } from "../../agents/index.ts";
import { testRuntime } from "../agents/helpers.ts";
import { runCli, startBridgeProcess, suiteCleanup } from "./support/bridge-process.ts";

const cleanup = suiteCleanup();

class Counter extends Agent<{ n: number }> {
  static override callable = ["bump"];
  override initialState = { n: 0 };
  bump(): number {
    this.setState({ n: this.state.n + 1 });
    return this.state.n;
  }
}

/** What a migration would change: the schema version and every table, index and trigger with its SQL. */
function schemaOf(file: string): { userVersion: number; objects: unknown[] } {
  const db = new Database(file, { readonly: true });
  try {
    return {
      userVersion: db.pragma("user_version", { simple: true }) as number,
      objects: db.prepare("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name").all(),
    };
  } finally {
    db.close();
  }
}

function onDatabase(file: string, statements: string): void {
  const db = new Database(file);
  try {
    db.exec(statements);
  } finally {
    db.close();
  }
}

/** A data directory as this build leaves it: two devices, two agents with data, all databases closed. */
async function dataDirWithAgents(): Promise<string> {
  const dataDir = path.join(cleanup.tempDir("backup-offline-schema-"), "data");
  const added = runCli(["devices", "add", "--count", "2", "--prefix", "dev-", "--data-dir", dataDir]);
  assert.equal(added.status, 0, added.stderr);
  const rt = testRuntime(path.join(dataDir, "agents"), Counter, 1);
  try {
    for (const id of ["dev-1", "dev-2"]) await rt.call(id, "bump", []);
  } finally {
    await rt.shutdown();
  }
  return dataDir;
}

test("an offline backup of an older build's databases copies them as they are, migrating nothing", async () => {
  const dataDir = await dataDirWithAgents();
  const registry = path.join(dataDir, "registry.db");
  const runtime = path.join(dataDir, "agents", "runtime.db");
  // The files an older build left: the registry before schema 3 (which added these two triggers), runtime.db before
  // its version was kept (0, with the tables of version 1).
  onDatabase(
    registry,
    "DROP TRIGGER devices_ids_for_older_writers; DROP TRIGGER devices_secret_id_for_older_writers; " +
      "PRAGMA user_version = 2;",
  );
  onDatabase(runtime, "PRAGMA user_version = 0;");
  const sources = [registry, runtime, path.join(dataDir, "agents", "agents", "dev-1.db")];
  const before = sources.map(schemaOf);
  const rows = (file: string) => {
    const db = new Database(file, { readonly: true });
    try {
      return db.prepare("SELECT * FROM devices ORDER BY id").all();
    } finally {
      db.close();
    }
  };
  const devicesBefore = rows(registry);

  const out = path.join(cleanup.tempDir("backup-offline-out-"), "snap");
  const backup = runCli(["backup", "--data-dir", dataDir, "--out", out, "--json"]);
  assert.equal(backup.status, 0, backup.stderr);
  assert.equal((JSON.parse(backup.stdout) as { agents: number }).agents, 2);

  assert.deepEqual(sources.map(schemaOf), before, "the data directory's schemas and versions are as they were");
  assert.deepEqual(rows(registry), devicesBefore, "and the registry's rows");
  // The snapshot is the older build's files too, whole.
  const copies = [
    path.join(out, "registry.db"),
    path.join(out, "agents", "runtime.db"),
    path.join(out, "agents", "agents", "dev-1.db"),
  ];
  assert.deepEqual(copies.map(schemaOf), before);
  assert.deepEqual(rows(copies[0]), devicesBefore);
  assert.ok(fs.existsSync(path.join(out, "backup.json")));

  // A bridge started on the snapshot migrates it, as the restore's first start does.
  const bridge = await startBridgeProcess({ dataDir: out });
  assert.equal(await bridge.stop(), 0);
  assert.equal(schemaOf(copies[0]).userVersion, 3);
  assert.equal(schemaOf(copies[1]).userVersion, 1);
  assert.deepEqual(sources.map(schemaOf), before, "the data directory is still untouched");
});

test("an offline backup refuses a registry.db or runtime.db a newer build wrote, as start does: exit 2", async () => {
  const dataDir = await dataDirWithAgents();
  for (const [file, known] of [
    [path.join(dataDir, "registry.db"), 3],
    [path.join(dataDir, "agents", "runtime.db"), 1],
  ] as const) {
    onDatabase(file, `PRAGMA user_version = ${known + 1};`);
    const before = schemaOf(file);
    const out = path.join(cleanup.tempDir("backup-offline-newer-"), "snap");
    const backup = runCli(["backup", "--data-dir", dataDir, "--out", out]);
    assert.equal(backup.status, 2, backup.stderr);
    const errors = backup.stderr.split("\n").filter((line) => line.startsWith("error: "));
    assert.equal(errors.length, 1, backup.stderr);
    assert.ok(errors[0].includes(file), backup.stderr);
    assert.ok(errors[0].includes(`its schema version ${known + 1} is newer than this agent-bridge knows (${known})`));
    assert.deepEqual(schemaOf(file), before, "the newer file is left as it was");
    assert.deepEqual(fs.readdirSync(path.dirname(out)), [], "no snapshot, nor a partial one");
    onDatabase(file, `PRAGMA user_version = ${known};`);
  }
});
