import assert from "node:assert/strict";
import path from "node:path";
import { after, describe, test } from "node:test";
import { ROLLED_BACK } from "../../agents/agent.ts";
import { Agent, type Value } from "../../agents/index.ts";
import { tempDir, testRuntime } from "./helpers.ts";

class Store extends Agent {
  /** How often the runtime said rows this agent wrote were rolled back (what DeviceAgent drops its caches on). */
  rolledBack = 0;
  override [ROLLED_BACK](): void {
    this.rolledBack++;
  }
  rollbacksSeen(): number {
    return this.rolledBack;
  }
  override onStart(): void {
    this.sql`CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v BLOB, flag INTEGER)`;
  }
  put(k: string, bytes: number): number {
    this.sql`INSERT OR REPLACE INTO kv (k, v, flag) VALUES (${k}, ${new Uint8Array(bytes)}, ${true})`;
    return bytes;
  }
  keys(): Value {
    return this.sql<{ k: string; flag: number }>`SELECT k, flag FROM kv ORDER BY k`.map((r) => `${r.k}:${r.flag}`);
  }
  /** The inner transaction throws and rolls back alone; the outer write stays. */
  partial(): Value {
    this.sql`INSERT INTO kv (k, v, flag) VALUES (${"outer"}, ${null}, ${false})`;
    try {
      this.transaction(() => {
        this.sql`INSERT INTO kv (k, v, flag) VALUES (${"inner"}, ${null}, ${false})`;
        this.setState({ touched: true });
        throw new Error("inner fails");
      });
    } catch {}
    return this.state;
  }
  lookup(k: string): Value {
    return this.sql<{ k: string }>`SELECT k FROM kv WHERE k = ${k}`.map((r) => r.k);
  }
}

describe("agent storage", () => {
  const t = tempDir();
  after(() => t.remove());

  test("the per-agent cap is enforced by SQLite and reported as BRIDGE_ERR_STORAGE_FULL without losing earlier data", async () => {
    const rt = testRuntime(path.join(t.dir, "cap"), Store, 1, { maxDatabaseBytes: 128 * 1024 });
    try {
      assert.deepEqual(await rt.call("s", "put", ["a", 20_000]), { ok: true, value: 20_000 });
      const full = await rt.call("s", "put", ["b", 400_000]);
      assert.equal(full.ok, false);
      assert.equal(!full.ok && full.code, "BRIDGE_ERR_STORAGE_FULL");
      assert.deepEqual(await rt.call("s", "keys", []), { ok: true, value: ["a:1"] });
      // Another agent is untouched by this one's full database.
      assert.deepEqual(await rt.call("other", "put", ["x", 20_000]), { ok: true, value: 20_000 });
    } finally {
      await rt.shutdown();
    }
  });

  test("transaction() rolls back its own writes and state alone, and values are always bound", async () => {
    const rt = testRuntime(path.join(t.dir, "tx"), Store, 2);
    try {
      assert.deepEqual(await rt.call("s", "partial", []), { ok: true, value: {} });
      assert.deepEqual(await rt.call("s", "keys", []), { ok: true, value: ["outer:0"] });
      // The caught inner failure reported no error, yet the agent is told its inner rows were rolled back.
      assert.deepEqual(await rt.call("s", "rollbacksSeen", []), { ok: true, value: 1 });
      const hostile = "x' OR '1'='1";
      assert.deepEqual(await rt.call("s", "lookup", [hostile]), { ok: true, value: [] });
    } finally {
      await rt.shutdown();
    }
  });
});
