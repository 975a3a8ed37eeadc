import assert from "node:assert/strict";
import path from "node:path";
import { after, describe, test } from "node:test";
import { Agent, type AgentRuntime } from "../../agents/index.ts";
import { RecordingTransport, tempDir, testRuntime } from "./helpers.ts";

/** A callable that writes a row and then the state: a readonly caller must leave neither behind. */
class Ledger extends Agent<{ n: number }> {
  static override callable = ["bump", "read", "bumpQuietly"];
  override initialState = { n: 0 };
  override onStart(): void {
    this.sql`CREATE TABLE IF NOT EXISTS log (n INTEGER)`;
  }
  bump(): number {
    this.sql`INSERT INTO log (n) VALUES (${this.state.n + 1})`;
    this.setState({ n: this.state.n + 1 });
    return this.state.n;
  }
  read(): { n: number; rows: number } {
    const rows = this.sql<{ c: number }>`SELECT count(*) AS c FROM log`[0]?.c ?? 0;
    return { n: this.state.n, rows };
  }
  /** Swallows the refusal: the state still must not change. */
  bumpQuietly(): string {
    try {
      this.setState({ n: 1000 });
      return "changed";
    } catch (err) {
      return (err as { code?: string }).code ?? "unknown";
    }
  }
}

/** A runtime with one Ledger and two connections to it, "view" (readonly) and "edit"; shut down after `fn`. */
async function withLedger(
  dataDir: string,
  fn: (ctx: { rt: AgentRuntime; viewer: RecordingTransport; editor: RecordingTransport }) => Promise<void>,
): Promise<void> {
  const rt = testRuntime(dataDir, Ledger, 1);
  try {
    const viewer = new RecordingTransport();
    const editor = new RecordingTransport();
    await rt.open("led", { id: "view", kind: "ws", codec: "json", readonly: true, transport: viewer });
    await rt.open("led", { id: "edit", kind: "ws", codec: "json", transport: editor });
    await fn({ rt, viewer, editor });
  } finally {
    await rt.shutdown();
  }
}

describe("an rpc from a readonly connection", () => {
  const t = tempDir("agents-readonly-rpc-");
  after(() => t.remove());

  test("cannot change state: setState throws BRIDGE_ERR_READONLY_CONNECTION, the reply is ok false and no write commits", async () => {
    await withLedger(path.join(t.dir, "rt"), async ({ rt, viewer }) => {
      const ro = rt.deliver("led", "view", { channel: "rpc", frame: { id: "1", m: "bump", a: [] } });
      assert.ok(ro.accepted);
      await ro.done;
      assert.deepEqual(viewer.sent.at(-1)?.message, {
        channel: "rpc",
        frame: { id: "1", ok: false, err: "BRIDGE_ERR_READONLY_CONNECTION" },
      });
      assert.deepEqual(await rt.call("led", "read", []), { ok: true, value: { n: 0, rows: 0 } });

      const quiet = rt.deliver("led", "view", { channel: "rpc", frame: { id: "2", m: "bumpQuietly", a: [] } });
      assert.ok(quiet.accepted);
      await quiet.done;
      assert.deepEqual(viewer.sent.at(-1)?.message, {
        channel: "rpc",
        frame: { id: "2", ok: true, res: "BRIDGE_ERR_READONLY_CONNECTION" },
      });

      const read = rt.deliver("led", "view", { channel: "rpc", frame: { id: "3", m: "read", a: [] } });
      assert.ok(read.accepted);
      await read.done;
      assert.deepEqual(viewer.sent.at(-1)?.message, {
        channel: "rpc",
        frame: { id: "3", ok: true, res: { n: 0, rows: 0 } },
      });
    });
  });

  test("leaves later events of read-write connections and direct calls free to change state", async () => {
    await withLedger(path.join(t.dir, "rw"), async ({ rt, editor }) => {
      const ro = rt.deliver("led", "view", { channel: "rpc", frame: { id: "1", m: "bump", a: [] } });
      const rw = rt.deliver("led", "edit", { channel: "rpc", frame: { id: "2", m: "bump", a: [] } });
      assert.ok(ro.accepted && rw.accepted);
      await Promise.all([ro.done, rw.done]);
      assert.deepEqual(editor.sent.at(-1)?.message, { channel: "rpc", frame: { id: "2", ok: true, res: 1 } });
      assert.deepEqual(await rt.call("led", "bump", []), { ok: true, value: 2 });
      assert.deepEqual(await rt.call("led", "read", []), { ok: true, value: { n: 2, rows: 2 } });
    });
  });
});
