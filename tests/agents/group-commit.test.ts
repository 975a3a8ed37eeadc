import assert from "node:assert/strict";
import path from "node:path";
import { after, describe, test } from "node:test";
import Database from "better-sqlite3";
import { Agent, type Connection, type InboundMessage, type TaskInfo, type Value } from "../../agents/index.ts";
import { RecordingTransport, settle, tempDir, testRuntime } from "./helpers.ts";

const waiting = new Map<string, () => void>();
function gate(key: string): Promise<void> {
  return new Promise((r) => waiting.set(key, r));
}
function open(key: string): void {
  const r = waiting.get(key);
  assert.ok(r, `nothing waits on ${key}`);
  r();
}
const log: string[] = [];
/** Lets a test drive a running task's progress and end from outside. */
let taskDriver: { progress(update: Value): void; finish(): void } | null = null;

class Batcher extends Agent {
  static override callable = ["stream"];
  override onStart(): void {
    this.sql`CREATE TABLE IF NOT EXISTS events (n TEXT)`;
  }
  override async onMessage(conn: Connection, message: InboundMessage): Promise<void> {
    if (message.channel !== "rpc") return super.onMessage(conn, message);
    const { id, m } = message.frame as { id: string; m: string };
    if (m === "slow") await gate(id);
    this.sql`INSERT INTO events (n) VALUES (${id})`;
    conn.send({ channel: "rpc", frame: { id, ok: true, res: id } });
    log.push(`end:${id}`);
  }
  stream(): string {
    return this.startTask("stream", null, (task) => {
      return new Promise<Value>((resolve) => {
        taskDriver = { progress: (u) => task.progress(u), finish: () => resolve("done") };
      });
    });
  }
  override onTaskProgress(_task: TaskInfo, update: Value): void {
    // Writes nothing: only frames.
    for (const c of this.getConnections())
      c.send({ channel: "reason", frame: { id: "r", seq: 0, text: String(update) } });
  }
}

function rpc(id: string, m = "write"): InboundMessage {
  return { channel: "rpc", frame: { id, m } };
}

describe("group commit and the output gate", () => {
  const t = tempDir();
  after(() => t.remove());

  test("no frame of a batch leaves before its last event finished and the batch committed", async () => {
    log.length = 0;
    const dataDir = path.join(t.dir, "batch-gate");
    const commitSizes: number[] = [];
    // NORMAL locking so the test can read the file from a second connection while each frame is sent.
    const rt = testRuntime(dataDir, Batcher, 1, {
      lockingMode: "NORMAL",
      observer: { onCommit: (c) => commitSizes.push(c.events) },
    });
    try {
      const tr = new RecordingTransport();
      await rt.open("a", { id: "c", kind: "mqtt", codec: "cbor", transport: tr });
      const seenAtSend: Array<{ id: string; rows: string[]; log: string[] }> = [];
      tr.onSend = (m) => {
        const reader = new Database(path.join(dataDir, "agents", "a.db"), { readonly: true });
        try {
          const rows = (reader.prepare("SELECT n FROM events ORDER BY rowid").all() as Array<{ n: string }>).map(
            (r) => r.n,
          );
          seenAtSend.push({ id: (m.frame as { id: string }).id, rows, log: [...log] });
        } finally {
          reader.close();
        }
      };
      const head = rt.deliver("a", "c", rpc("h", "slow"));
      await settle();
      // These three wait behind the head and run as one batch; the last one waits inside its handler.
      const e1 = rt.deliver("a", "c", rpc("1"));
      const e2 = rt.deliver("a", "c", rpc("2"));
      const e3 = rt.deliver("a", "c", rpc("3", "slow"));
      assert.ok(head.accepted && e1.accepted && e2.accepted && e3.accepted);
      open("h");
      await head.done;
      await settle();
      assert.deepEqual(log, ["end:h", "end:1", "end:2"], "events 1 and 2 ran; event 3 waits in its handler");
      assert.deepEqual(
        tr.sent.map((s) => (s.message.frame as { id: string }).id),
        ["h"],
        "frames of events 1 and 2 must wait for the batch's commit",
      );
      open("3");
      assert.deepEqual(await e1.done, { status: "committed" });
      assert.deepEqual(await e2.done, { status: "committed" });
      assert.deepEqual(await e3.done, { status: "committed" });
      assert.deepEqual(
        seenAtSend.map((s) => s.id),
        ["h", "1", "2", "3"],
      );
      for (const s of seenAtSend.slice(1)) {
        assert.deepEqual(s.rows, ["h", "1", "2", "3"], `frame ${s.id} left before the whole batch was stored`);
        assert.deepEqual(s.log, ["end:h", "end:1", "end:2", "end:3"]);
      }
      assert.deepEqual(commitSizes, [2, 1, 3]);
    } finally {
      await rt.shutdown();
    }
  });

  test("a task-progress event that writes nothing commits nothing, and its frames still leave in order", async () => {
    const commitSizes: number[] = [];
    const rt = testRuntime(path.join(t.dir, "no-write"), Batcher, 7, {
      observer: { onCommit: (c) => commitSizes.push(c.events) },
    });
    try {
      const tr = new RecordingTransport();
      await rt.open("a", { id: "c", kind: "mqtt", codec: "cbor", transport: tr });
      const started = await rt.call("a", "stream", []);
      assert.equal(started.ok, true);
      await settle();
      assert.ok(taskDriver !== null);
      const commitsBefore = rt.stats().commits;
      const observedBefore = commitSizes.length;
      for (const text of ["a", "b", "c"]) {
        taskDriver.progress(text);
        await settle();
      }
      taskDriver.progress("d");
      taskDriver.progress("e");
      await settle();
      assert.deepEqual(
        tr.sent.map((s) => (s.message.frame as { text: string }).text),
        ["a", "b", "c", "d", "e"],
      );
      assert.equal(rt.stats().commits, commitsBefore, "progress events that write nothing must not commit");
      assert.equal(commitSizes.length, observedBefore);
      taskDriver.finish();
      await settle();
      // The outcome event removes the task row: that one is a real commit.
      assert.equal(rt.stats().commits, commitsBefore + 1);
    } finally {
      taskDriver = null;
      await rt.shutdown();
    }
  });
});
