import assert from "node:assert/strict";
import { describe, it } from "node:test";
import Database from "better-sqlite3";
import { verifierFromReader } from "../../firmware-sim/index.ts";

describe("telemetry read-back from any reader", () => {
  it("reads seq readings from SQLite rows shaped like an agent's telemetry table", async () => {
    const db = new Database(":memory:");
    try {
      db.exec("CREATE TABLE telemetry (id INTEGER PRIMARY KEY, ts INTEGER, metric TEXT, value REAL)");
      const insert = db.prepare("INSERT INTO telemetry (ts, metric, value) VALUES (?, ?, ?)");
      const base = 5 * 2 ** 32;
      for (const n of [0, 1, 3]) {
        insert.run(1000 + n, "seq", base + n);
        insert.run(1000 + n, "temp", 20 + n);
      }
      const verify = verifierFromReader(async () => db.prepare("SELECT metric, value FROM telemetry").all());
      assert.deepEqual(await verify("d", [base, base + 1, base + 2, base + 3]), {
        status: "read",
        missingSeqs: [base + 2],
      });
    } finally {
      db.close();
    }
  });

  it("reads seq from decoded frames, SenML records and nested API bodies alike", async () => {
    const stored = {
      readings: [{ r: { seq: 1, temp: 2 } }, { senml: [{ n: "seq", v: 2 }] }, { ts: 5, metric: "seq", value: 3 }],
    };
    const verify = verifierFromReader(async () => stored);
    assert.deepEqual(await verify("d", [1, 2, 3, 4]), { status: "read", missingSeqs: [4] });
  });

  it("reports a reader that throws as unavailable instead of failing the run", async () => {
    const verify = verifierFromReader(async () => {
      throw new Error("agent database is locked");
    });
    assert.deepEqual(await verify("d", [1]), { status: "unavailable", reason: "agent database is locked" });
  });
});
