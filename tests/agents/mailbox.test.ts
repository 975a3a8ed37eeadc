import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import Database from "better-sqlite3";
import path from "node:path";
import { Agent, type Connection, type InboundMessage } from "../../agents/index.ts";
import { RecordingTransport, settle, tempDir, testRuntime } from "./helpers.ts";

/** Gates a test controls: a handler awaits `wait(key)` until the test calls `open(key)`. */
class Gates {
  #waiting = new Map<string, () => void>();
  #opened = new Set<string>();
  wait(key: string): Promise<void> {
    if (this.#opened.has(key)) return Promise.resolve();
    return new Promise((r) => this.#waiting.set(key, r));
  }
  open(key: string): void {
    this.#opened.add(key);
    this.#waiting.get(key)?.();
  }
}

const gates = new Gates();
const log: string[] = [];

class Recorder extends Agent {
  static override callable = ["write", "fail", "slow"];
  override onStart(): void {
    this.sql`CREATE TABLE IF NOT EXISTS events (n TEXT)`;
  }
  override async onMessage(conn: Connection, message: InboundMessage): Promise<void> {
    if (message.channel !== "rpc") return super.onMessage(conn, message);
    const { id, m } = message.frame;
    log.push(`${this.id}:start:${id}`);
    if (m === "slow") await gates.wait(`${this.id}:${id}`);
    await Promise.resolve();
    this.sql`INSERT INTO events (n) VALUES (${id})`;
    conn.send({ channel: "rpc", frame: { id, ok: true, res: id } });
    log.push(`${this.id}:end:${id}`);
    if (m === "fail") throw new Error("handler failed on purpose");
  }
  rows(): string[] {
    return this.sql<{ n: string }>`SELECT n FROM events ORDER BY rowid`.map((r) => r.n);
  }
}

function rpc(id: string, m = "write"): InboundMessage {
  return { channel: "rpc", frame: { id, m } };
}

describe("agent mailbox", () => {
  const t = tempDir();
  after(() => t.remove());

  test("events of one agent run one at a time in arrival order even when a handler awaits", async () => {
    log.length = 0;
    const rt = testRuntime(path.join(t.dir, "order"), Recorder, 1);
    try {
      const tr = new RecordingTransport();
      await rt.open("a", { id: "c", kind: "mqtt", codec: "cbor", transport: tr });
      const outs = [
        rt.deliver("a", "c", rpc("1", "slow")),
        rt.deliver("a", "c", rpc("2")),
        rt.deliver("a", "c", rpc("3")),
      ];
      await settle();
      assert.deepEqual(log, ["a:start:1"], "the second event must not start while the first awaits");
      gates.open("a:1");
      for (const o of outs) {
        assert.ok(o.accepted);
        assert.deepEqual(await o.done, { status: "committed" });
      }
      assert.deepEqual(log, ["a:start:1", "a:end:1", "a:start:2", "a:end:2", "a:start:3", "a:end:3"]);
      assert.deepEqual((await rt.call("a", "rows", [])) as unknown, { ok: true, value: ["1", "2", "3"] });
    } finally {
      await rt.shutdown();
    }
  });

  test("different agents run concurrently: one agent waiting does not hold another", async () => {
    log.length = 0;
    const rt = testRuntime(path.join(t.dir, "conc"), Recorder, 2);
    try {
      const ta = new RecordingTransport();
      const tb = new RecordingTransport();
      await rt.open("a", { id: "c", kind: "mqtt", codec: "cbor", transport: ta });
      await rt.open("b", { id: "c", kind: "mqtt", codec: "cbor", transport: tb });
      const slow = rt.deliver("a", "c", rpc("x", "slow"));
      const fast = rt.deliver("b", "c", rpc("y"));
      assert.ok(fast.accepted && slow.accepted);
      assert.deepEqual(await fast.done, { status: "committed" });
      assert.equal(tb.sent.length, 1);
      assert.equal(ta.sent.length, 0);
      gates.open("a:x");
      assert.deepEqual(await slow.done, { status: "committed" });
      assert.equal(ta.sent.length, 1);
    } finally {
      await rt.shutdown();
    }
  });

  test("a full mailbox refuses with mailbox-full and ready resolves once it drains", async () => {
    const rt = testRuntime(path.join(t.dir, "full"), Recorder, 3, { mailboxCapacity: 2 });
    try {
      const tr = new RecordingTransport();
      await rt.open("a", { id: "c", kind: "mqtt", codec: "cbor", transport: tr });
      const first = rt.deliver("a", "c", rpc("f1", "slow"));
      await settle();
      const second = rt.deliver("a", "c", rpc("2"));
      const third = rt.deliver("a", "c", rpc("3"));
      const fourth = rt.deliver("a", "c", rpc("4"));
      assert.ok(first.accepted && second.accepted && third.accepted);
      assert.equal(fourth.accepted, false);
      if (fourth.accepted) return;
      assert.equal(fourth.reason, "mailbox-full");
      let ready = false;
      void fourth.ready.then(() => {
        ready = true;
      });
      await settle();
      assert.equal(ready, false);
      gates.open("a:f1");
      await first.done;
      await fourth.ready;
      const retried = rt.deliver("a", "c", rpc("4"));
      assert.ok(retried.accepted);
      await retried.done;
      assert.deepEqual(await rt.call("a", "rows", []), { ok: true, value: ["f1", "2", "3", "4"] });
    } finally {
      await rt.shutdown();
    }
  });

  test("a handler that throws rolls back its writes, drops its frames and leaves the rest of the batch committed", async () => {
    const commitSizes: number[] = [];
    const rt = testRuntime(path.join(t.dir, "rollback"), Recorder, 4, {
      observer: { onCommit: (c) => commitSizes.push(c.events) },
    });
    try {
      const tr = new RecordingTransport();
      await rt.open("a", { id: "c", kind: "mqtt", codec: "cbor", transport: tr });
      const gate = rt.deliver("a", "c", rpc("0", "slow"));
      await settle();
      // These three wait together and run as one group commit, one savepoint each.
      const ok1 = rt.deliver("a", "c", rpc("1"));
      const bad = rt.deliver("a", "c", rpc("2", "fail"));
      const ok3 = rt.deliver("a", "c", rpc("3"));
      gates.open("a:0");
      assert.ok(gate.accepted && ok1.accepted && bad.accepted && ok3.accepted);
      await gate.done;
      assert.deepEqual(await ok1.done, { status: "committed" });
      const failed = await bad.done;
      assert.equal(failed.status, "failed");
      assert.equal(failed.status === "failed" && failed.code, "BRIDGE_ERR_HANDLER_FAILED");
      assert.deepEqual(await ok3.done, { status: "committed" });
      // start + open (2 events), the gated event (1), then the three waiting ones in one COMMIT, not one each.
      assert.deepEqual(commitSizes, [2, 1, 3]);
      assert.deepEqual(await rt.call("a", "rows", []), { ok: true, value: ["0", "1", "3"] });
      assert.deepEqual(
        tr.sent.map((s) => (s.message.frame as { id: string }).id),
        ["0", "1", "3"],
      );
    } finally {
      await rt.shutdown();
    }
  });

  test("frames leave only after the event's writes committed, and done resolves after they left", async () => {
    const dataDir = path.join(t.dir, "gate");
    // NORMAL locking so the test can look at the file from a second connection while the frame is sent.
    const rt = testRuntime(dataDir, Recorder, 5, { lockingMode: "NORMAL" });
    try {
      const tr = new RecordingTransport();
      const seenAtSend: string[][] = [];
      tr.onSend = () => {
        const reader = new Database(path.join(dataDir, "agents", "a.db"), { readonly: true });
        try {
          seenAtSend.push(
            (reader.prepare("SELECT n FROM events ORDER BY rowid").all() as Array<{ n: string }>).map((r) => r.n),
          );
        } finally {
          reader.close();
        }
      };
      await rt.open("a", { id: "c", kind: "mqtt", codec: "cbor", transport: tr });
      const slow = rt.deliver("a", "c", rpc("g1", "slow"));
      await settle();
      assert.equal(tr.sent.length, 0);
      gates.open("a:g1");
      assert.ok(slow.accepted);
      const result = slow.done.then((r) => ({ r, sentWhenDone: tr.sent.length }));
      const { r, sentWhenDone } = await result;
      assert.deepEqual(r, { status: "committed" });
      assert.equal(sentWhenDone, 1);
      assert.deepEqual(seenAtSend, [["g1"]]);
    } finally {
      await rt.shutdown();
    }
  });

  test("deliver on an unknown connection fails as a value and never reaches the agent", async () => {
    const rt = testRuntime(path.join(t.dir, "unknown"), Recorder, 6);
    try {
      const out = rt.deliver("a", "nope", rpc("1"));
      assert.ok(out.accepted);
      const r = await out.done;
      assert.equal(r.status === "failed" && r.code, "BRIDGE_ERR_CONNECTION_UNKNOWN");
      const bad = await rt.open("bad id!", {
        id: "c",
        kind: "mqtt",
        codec: "cbor",
        transport: new RecordingTransport(),
      });
      assert.equal(bad.status === "failed" && bad.code, "BRIDGE_ERR_INVALID_AGENT_ID");
    } finally {
      await rt.shutdown();
    }
  });
});
