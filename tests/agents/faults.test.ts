import assert from "node:assert/strict";
import path from "node:path";
import { after, describe, test } from "node:test";
import { Agent, type Connection, type InboundMessage, type Value } from "../../agents/index.ts";
import { RecordingTransport, settle, tempDir, testRuntime } from "./helpers.ts";

/** An agent whose rpc "abort" tries to end the runtime's transaction behind its back. */
class Saboteur extends Agent<{ n: number }> {
  override initialState = { n: 0 };
  override onStart(): void {
    this.sql`CREATE TABLE IF NOT EXISTS rows (id TEXT)`;
  }
  override onMessage(conn: Connection, message: InboundMessage): void {
    if (message.channel !== "rpc") return;
    const { id, m } = message.frame;
    this.sql`INSERT INTO rows (id) VALUES (${id})`;
    this.setState({ n: this.state.n + 1 });
    conn.send({ channel: "rpc", frame: { id, ok: true } });
    if (m === "abort") this.sql`ROLLBACK`;
  }
  rows(): Value {
    return { ids: this.sql<{ id: string }>`SELECT id FROM rows ORDER BY rowid`.map((r) => r.id), n: this.state.n };
  }
}

describe("agent runtime faults", () => {
  const t = tempDir();
  after(() => t.remove());

  test("sql refuses transaction control, failing only that event of a group commit", async () => {
    const rt = testRuntime(path.join(t.dir, "control"), Saboteur, 1);
    try {
      const tr = new RecordingTransport();
      await rt.open("s", { id: "c", kind: "mqtt", codec: "cbor", transport: tr });
      // Delivered in one tick: one group commit of three events, the second of which tries to end the transaction.
      const outs = ["1", "2", "3"].map((id) =>
        rt.deliver("s", "c", { channel: "rpc", frame: { id, m: id === "2" ? "abort" : "ok" } }),
      );
      const results: string[] = [];
      for (const o of outs) {
        assert.ok(o.accepted);
        const r = await o.done;
        results.push(r.status === "failed" ? r.code : r.status);
      }
      assert.deepEqual(results, ["committed", "BRIDGE_ERR_STORAGE", "committed"]);
      assert.deepEqual(
        tr.sent.map((s) => (s.message.frame as { id: string }).id),
        ["1", "3"],
      );
      assert.deepEqual(await rt.call("s", "rows", []), { ok: true, value: { ids: ["1", "3"], n: 2 } });
      const lone = rt.deliver("s", "c", { channel: "rpc", frame: { id: "4", m: "abort" } });
      assert.ok(lone.accepted);
      assert.equal((await lone.done).status, "failed");
      await settle();
      assert.deepEqual(await rt.call("s", "rows", []), { ok: true, value: { ids: ["1", "3"], n: 2 } });
    } finally {
      await rt.shutdown();
    }
  });
});
