/**
 * An agent database that a newer version of the bridge wrote (its `user_version` above this build's, the operator then
 * rolled back) is refused untouched: the wake fails with BRIDGE_ERR_STORAGE naming both versions, before any pragma
 * that changes the file (journal mode, page size), so the newer build finds its file as it left it. Before, the file
 * opened silently and the runtime read tables of another shape. The message never names the file (it reaches devices
 * in error frames); the log line does. Other agents of the runtime are unaffected.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, describe, test } from "node:test";
import Database from "better-sqlite3";
import { Agent, type AgentRuntime, type EventResult } from "../../agents/index.ts";
import { capturingLogger } from "../support/capturing-logger.ts";
import { RecordingTransport, tempDir, testRuntime } from "./helpers.ts";

class Plain extends Agent {
  ping(): string {
    return "pong";
  }
}

const STORAGE = "BRIDGE_ERR_STORAGE";
const NEWER = 2;

/** Every file of the agents folder with its bytes, to compare before and after the refused wake. */
function snapshot(dir: string): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  for (const name of fs.readdirSync(dir).sort()) files.set(name, fs.readFileSync(path.join(dir, name)));
  return files;
}

function userVersion(file: string): number {
  const db = new Database(file);
  try {
    return Number(db.pragma("user_version", { simple: true }));
  } finally {
    db.close();
  }
}

describe("an agent database a newer version of the bridge wrote", () => {
  const t = tempDir();
  after(() => t.remove());

  let lines: Array<Record<string, unknown>> = [];
  function runtimeOn(dataDir: string): AgentRuntime {
    const captured = capturingLogger("info");
    lines = captured.lines;
    return testRuntime(dataDir, Plain, 1, { logger: captured.logger });
  }

  /**
   * A database as a newer build leaves it: 4 KiB pages (this build makes 1 KiB ones), in WAL mode or another journal
   * mode (which this build would switch to WAL), a runtime table of another shape and a newer user_version.
   */
  function writeNewer(agentsDir: string, id: string, journal: "wal" | "delete"): string {
    fs.mkdirSync(agentsDir, { recursive: true });
    const file = path.join(agentsDir, `${id}.db`);
    const db = new Database(file);
    db.pragma("page_size = 4096");
    db.pragma(`journal_mode = ${journal}`);
    db.exec("CREATE TABLE _bridge_state (chunk INTEGER PRIMARY KEY, data BLOB NOT NULL, codec TEXT NOT NULL)");
    db.pragma(`user_version = ${NEWER}`);
    db.close();
    return file;
  }

  for (const journal of ["wal", "delete"] as const) {
    test(`(${journal} journal) fails the wake with BRIDGE_ERR_STORAGE naming the versions and leaves it as found`, async () => {
      const dataDir = path.join(t.dir, `calls-${journal}`);
      const agentsDir = path.join(dataDir, "agents");
      const file = writeNewer(agentsDir, "newer-1", journal);
      const before = snapshot(agentsDir);
      const rt = runtimeOn(dataDir);
      await rt.start();
      try {
        const result = await rt.call("newer-1", "ping", []);
        assert.equal(result.ok, false);
        if (result.ok) return;
        assert.equal(result.code, STORAGE);
        assert.match(result.message, /schema version 2 is newer than this agent-bridge knows \(1\)/);
        assert.ok(!result.message.includes(dataDir), `no path in the message: ${result.message}`);
        assert.ok(!result.message.includes("newer-1.db"), `no file name in the message: ${result.message}`);

        // Tried again at the next event, and refused again: nothing was left half open.
        assert.equal((await rt.call("newer-1", "ping", [])).ok, false);
        // Another agent of the same runtime works.
        assert.deepEqual(await rt.call("other-1", "ping", []), { ok: true, value: "pong" });
      } finally {
        await rt.shutdown();
      }
      before.set("other-1.db", fs.readFileSync(path.join(agentsDir, "other-1.db")));
      assert.deepEqual(snapshot(agentsDir), before, "left byte for byte as it was found, no WAL or -shm made");
      assert.equal(userVersion(file), NEWER, "and closed: another connection reads it");

      const logged = lines.find((l) => l.agent === "newer-1" && l.event === "wake");
      assert.ok(logged !== undefined, "the refused wake is logged");
      const err = logged.err as { code: string; details: Record<string, unknown> };
      assert.equal(err.code, STORAGE);
      assert.deepEqual(err.details, { path: file, schemaVersion: NEWER, knownSchemaVersion: 1 });
    });
  }

  test("a device connecting to it is refused with the same error, and a device of another agent is served", async () => {
    const dataDir = path.join(t.dir, "devices");
    writeNewer(path.join(dataDir, "agents"), "newer-2", "wal");
    const rt = runtimeOn(dataDir);
    await rt.start();
    try {
      const refused: EventResult = await rt.open("newer-2", {
        id: "c1",
        kind: "mqtt",
        codec: "cbor",
        transport: new RecordingTransport(),
      });
      assert.equal(refused.status, "failed");
      if (refused.status !== "failed") return;
      assert.equal(refused.code, STORAGE);
      assert.match(refused.message, /schema version 2 is newer than this agent-bridge knows \(1\)/);
      assert.ok(!refused.message.includes(dataDir), `no path in the message: ${refused.message}`);
      const served = await rt.open("other-2", {
        id: "c2",
        kind: "mqtt",
        codec: "cbor",
        transport: new RecordingTransport(),
      });
      assert.equal(served.status, "committed");
    } finally {
      await rt.shutdown();
    }
  });
});
