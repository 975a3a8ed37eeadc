/**
 * Faults of the data dir and runtime.db when a runtime is made: each is a BRIDGE_ERR_STORAGE whose message names the
 * path and the problem, with `details.path`, and nothing is left open. Before, a data dir that is a file threw Node's
 * "ENOTDIR ... mkdir '<dataDir>/agents'", a folder in runtime.db's place a bare SqliteError, a damaged file a message
 * naming no file, and a runtime.db of a newer version (or of other tables) opened or failed at its first read with
 * "no such column".
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, describe, test } from "node:test";
import Database from "better-sqlite3";
import { Agent, createRuntime } from "../../agents/index.ts";
import { RUNTIME_DB_SCHEMA_VERSION } from "../../agents/runtime-db-open.ts";
import { RuntimeDb } from "../../agents/runtime-db.ts";
import { BridgeError } from "../../errors/index.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { silentLogger, tempDir, testRuntime } from "./helpers.ts";

class Plain extends Agent {}

const STORAGE = "BRIDGE_ERR_STORAGE";

function make(dataDir: string) {
  return createRuntime({ dataDir, defaultAgentClass: Plain, logger: silentLogger });
}

/** What making a runtime on `dataDir` threw; fails the test when it threw anything but a BridgeError. */
function refusal(dataDir: string): BridgeError {
  try {
    make(dataDir);
  } catch (err) {
    assert.ok(err instanceof BridgeError, `a BridgeError, not ${String(err)}`);
    return err;
  }
  assert.fail("the runtime was made");
}

/** The file's user_version, read by a connection of its own: it fails while another connection holds the file. */
function userVersion(file: string): number {
  const db = new Database(file);
  try {
    return Number(db.pragma("user_version", { simple: true }));
  } finally {
    db.close();
  }
}

describe("a runtime made on a data dir or runtime.db it cannot use says which and why", () => {
  const t = tempDir();
  after(() => t.remove());

  test("a data dir that is a file", () => {
    const file = path.join(t.dir, "a-file");
    fs.writeFileSync(file, "not a folder");
    const err = refusal(file);
    assert.equal(err.code, STORAGE);
    assert.match(err.message, new RegExp(`${file} is a file, not a folder`));
    assert.equal(err.details.path, file);
  });

  test("an agents folder that is a file", () => {
    const dataDir = path.join(t.dir, "agents-file");
    fs.mkdirSync(dataDir);
    fs.writeFileSync(path.join(dataDir, "agents"), "not a folder");
    const err = refusal(dataDir);
    assert.equal(err.code, STORAGE);
    assert.match(err.message, /agents is a file, not a folder/);
    assert.equal(err.details.path, path.join(dataDir, "agents"));
  });

  test("a runtime.db that is not a database", () => {
    const dataDir = path.join(t.dir, "garbage");
    fs.mkdirSync(dataDir);
    const file = path.join(dataDir, "runtime.db");
    fs.writeFileSync(file, Buffer.alloc(8192, 7));
    const err = refusal(dataDir);
    assert.equal(err.code, STORAGE);
    assert.ok(err.message.includes(file), err.message);
    assert.match(err.message, /not a SQLite database or it is damaged/);
    assert.deepEqual(err.details, { path: file, sqlite: "SQLITE_NOTADB" });
  });

  test("a folder in runtime.db's place", () => {
    const dataDir = path.join(t.dir, "folder");
    const file = path.join(dataDir, "runtime.db");
    fs.mkdirSync(file, { recursive: true });
    const err = refusal(dataDir);
    assert.equal(err.code, STORAGE);
    assert.ok(err.message.includes(file), err.message);
    assert.match(err.message, /cannot be opened/);
    assert.equal(err.details.path, file);
  });

  test("a runtime.db a newer version wrote is refused and left as it was", () => {
    const dataDir = path.join(t.dir, "newer");
    fs.mkdirSync(dataDir);
    const file = path.join(dataDir, "runtime.db");
    const newer = RUNTIME_DB_SCHEMA_VERSION + 1;
    const db = new Database(file);
    db.exec("CREATE TABLE alarms (agent_id TEXT PRIMARY KEY, at INTEGER NOT NULL, zone TEXT)");
    db.pragma(`user_version = ${newer}`);
    db.close();
    const bytes = fs.readFileSync(file);
    const err = refusal(dataDir);
    assert.equal(err.code, STORAGE);
    assert.match(err.message, /newer than this agent-bridge knows/);
    assert.deepEqual(err.details, { path: file, schemaVersion: newer, knownSchemaVersion: RUNTIME_DB_SCHEMA_VERSION });
    assert.deepEqual(fs.readFileSync(file), bytes, "left byte for byte as it was found");
    assert.deepEqual(fs.readdirSync(dataDir).sort(), ["agents", "runtime.db"], "no WAL file was made for it");
    assert.equal(userVersion(file), newer, "and closed: another connection reads it");
  });

  test("a runtime.db with tables of another shape and no version is refused when it opens", () => {
    const dataDir = path.join(t.dir, "other-shape");
    fs.mkdirSync(dataDir);
    const file = path.join(dataDir, "runtime.db");
    const db = new Database(file);
    db.exec("CREATE TABLE alarms (agent TEXT PRIMARY KEY, at_ms INTEGER NOT NULL)");
    db.close();
    const bytes = fs.readFileSync(file);
    const err = refusal(dataDir);
    assert.equal(err.code, STORAGE);
    assert.match(err.message, /tables are not the ones this agent-bridge uses/);
    assert.equal(err.details.path, file);
    assert.deepEqual(fs.readFileSync(file), bytes, "left byte for byte as it was found: not marked as this version's");
    assert.equal(userVersion(file), 0, "and closed: another connection reads it");
  });

  test("a runtime.db of this version written before versions were kept opens with its rows", async () => {
    const dataDir = path.join(t.dir, "unversioned");
    fs.mkdirSync(dataDir);
    const file = path.join(dataDir, "runtime.db");
    const db = new Database(file);
    db.exec(`CREATE TABLE alarms (agent_id TEXT PRIMARY KEY, at INTEGER NOT NULL);
      CREATE TABLE pending (agent_id TEXT PRIMARY KEY);
      INSERT INTO pending (agent_id) VALUES ('p');`);
    db.close();
    fs.mkdirSync(path.join(dataDir, "agents"));
    fs.writeFileSync(path.join(dataDir, "agents", "p.db"), "");
    const rt = make(dataDir);
    await rt.shutdown();
    assert.equal(userVersion(file), RUNTIME_DB_SCHEMA_VERSION);
    const check = new Database(file);
    assert.deepEqual(check.prepare("SELECT agent_id FROM pending").all(), [{ agent_id: "p" }]);
    check.close();
  });

  test("runtime.db rows that cannot be read: a BridgeError naming the file, and the file is not left open", async () => {
    const dataDir = path.join(t.dir, "unreadable");
    await make(dataDir).shutdown();
    const file = path.join(dataDir, "runtime.db");
    const all = RuntimeDb.prototype.alarms;
    RuntimeDb.prototype.alarms = () => {
      const sqlite = Object.assign(new Error("database disk image is malformed"), { code: "SQLITE_CORRUPT" });
      throw new BridgeError(STORAGE, `runtime database ${file}: ${sqlite.message}`, {}, { cause: sqlite });
    };
    try {
      const err = refusal(dataDir);
      assert.equal(err.code, STORAGE);
    } finally {
      RuntimeDb.prototype.alarms = all;
    }
    assert.equal(userVersion(file), RUNTIME_DB_SCHEMA_VERSION, "another connection can read it: it was closed");
  });

  test("start() after shutdown rejects with BRIDGE_ERR_RUNTIME_CLOSED and arms nothing", async () => {
    const clock = new ManualClock();
    const rt = testRuntime(path.join(t.dir, "restarted"), Plain, 1, { clock });
    await rt.start();
    await rt.shutdown();
    await assert.rejects(
      rt.start(),
      (err: unknown) => err instanceof BridgeError && err.code === "BRIDGE_ERR_RUNTIME_CLOSED",
    );
    assert.equal(clock.pending, 0, "no timer was left running for a closed runtime");
  });
});
