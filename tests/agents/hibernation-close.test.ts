import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { after, describe, test } from "node:test";
import { Agent, createRuntime } from "../../agents/index.ts";
import { seededRandom, silentLogger, tempDir } from "./helpers.ts";

class Counter extends Agent {
  override onStart(): void {
    this.sql`CREATE TABLE IF NOT EXISTS hits (n INTEGER)`;
  }
  hit(n: number): number {
    this.sql`INSERT INTO hits (n) VALUES (${n})`;
    return this.sql<{ c: number }>`SELECT count(*) AS c FROM hits`[0].c;
  }
}

const ROOT = path.resolve(import.meta.dirname, "../..");

/** What another process gets reading `file`: its row count, or SQLite's error ("database is locked"). */
function readFromAnotherProcess(file: string): Promise<string> {
  const script = `const D = require("better-sqlite3"); const db = new D(process.argv[1], { timeout: 0 });
    try { console.log(db.prepare("SELECT count(*) AS c FROM hits").get().c); } catch (e) { console.log(e.message); }`;
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ["-e", script, file], { cwd: ROOT }, (err, stdout) =>
      err ? reject(err) : resolve(stdout.trim()),
    );
  });
}

describe("hibernation closes agent databases off the event loop", () => {
  const t = tempDir("hibernation-close-");
  after(() => t.remove());

  test("agents woken while their close waits keep their writes, and their files stay locked to others", async () => {
    const dataDir = path.join(t.dir, "data");
    // One agent in memory: every call wakes its agent and hibernates the one before, whose close then waits for its
    // fsyncs while the next calls run (or is finished by the next wake of the same agent).
    const rt = createRuntime({
      dataDir,
      defaultAgentClass: Counter,
      logger: silentLogger,
      random: seededRandom(3),
      maxActiveAgents: 1,
    });
    const ids = ["a", "b", "c"];
    const expected = new Map(ids.map((id) => [id, 0]));
    try {
      await rt.start();
      // "a" comes back every other call, often while its close still waits; the last call is "a"'s.
      for (let i = 0; i < 61; i++) {
        const id = ["a", "b", "a", "c"][i % 4];
        const r = await rt.call(id, "hit", [i]);
        expected.set(id, expected.get(id)! + 1);
        assert.deepEqual(r, { ok: true, value: expected.get(id) });
      }
      // "a", in memory, holds its file: its lock was not dropped by the descriptors its earlier closes opened.
      assert.match(await readFromAnotherProcess(path.join(dataDir, "agents", "a.db")), /locked/);
    } finally {
      await rt.shutdown();
    }
    // Shutdown finished every waiting close: no WAL is left and every row is in its file.
    for (const id of ids) {
      const file = path.join(dataDir, "agents", `${id}.db`);
      assert.equal(fs.existsSync(`${file}-wal`), false, `${id}: WAL left`);
      assert.equal(await readFromAnotherProcess(file), String(expected.get(id)));
    }
  });
});
