import assert from "node:assert/strict";
import path from "node:path";
import { after, describe, test } from "node:test";
import { Agent, type QueueItem, type Value } from "../../agents/index.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { tempDir, testRuntime } from "./helpers.ts";

const ran: string[] = [];
const errors: string[] = [];
const failing = new Map<string, number>();

class Worker extends Agent {
  work(payload: Value, item: QueueItem): void {
    const key = String(payload);
    const left = failing.get(key) ?? 0;
    if (left > 0) {
      failing.set(key, left - 1);
      throw new Error(`item ${key} failed`);
    }
    ran.push(`${key}#${item.seq}`);
  }
  add(keys: string[], maxAttempts = 3): string[] {
    return keys.map((k) => this.queue("work", k, { retry: { maxAttempts, baseDelayMs: 100, maxDelayMs: 400 } }));
  }
  addThenThrow(key: string): void {
    this.queue("work", key);
    throw new Error("the event fails after queueing");
  }
  items(): Value {
    return this.getQueues().map((q) => ({ payload: q.payload, attempts: q.attempts }));
  }
  one(id: string): Value {
    const q = this.getQueue(id);
    return q === undefined ? null : q.payload;
  }
  drop(id: string): boolean {
    return this.dequeue(id);
  }
  override onError(_e: unknown, ctx: { event: string }): void {
    errors.push(ctx.event);
  }
}

describe("agent queue", () => {
  const t = tempDir();
  after(() => t.remove());

  test("items run in strict FIFO order after the event that queued them commits", async () => {
    ran.length = 0;
    const clock = new ManualClock();
    const rt = testRuntime(path.join(t.dir, "fifo"), Worker, 1, { clock });
    try {
      await rt.call("w", "add", [["a", "b", "c"]]);
      await rt.call("w", "add", [["d"]]);
      await clock.advance(0);
      assert.deepEqual(ran, ["a#1", "b#2", "c#3", "d#4"]);
      assert.deepEqual(await rt.call("w", "items", []), { ok: true, value: [] });
      const r = await rt.call("w", "addThenThrow", ["never"]);
      assert.equal(r.ok, false);
      await clock.advance(0);
      assert.deepEqual(ran, ["a#1", "b#2", "c#3", "d#4"], "a rolled-back event queues nothing");
    } finally {
      await rt.shutdown();
    }
  });

  test("a failing item is retried with backoff without blocking the rest, and a poison item is reported and removed", async () => {
    ran.length = 0;
    errors.length = 0;
    failing.clear();
    failing.set("flaky", 1);
    failing.set("poison", 100);
    const clock = new ManualClock();
    const rt = testRuntime(path.join(t.dir, "retry"), Worker, 3, { clock });
    await rt.start();
    try {
      await rt.call("w", "add", [["poison", "flaky", "ok1", "ok2"]]);
      await clock.advance(0);
      assert.deepEqual(ran, ["ok1#3", "ok2#4"], "the rest ran although two items failed");
      const waiting = await rt.call("w", "items", []);
      assert.deepEqual(waiting, {
        ok: true,
        value: [
          { payload: "poison", attempts: 1 },
          { payload: "flaky", attempts: 1 },
        ],
      });
      await clock.advance(5_000);
      assert.deepEqual(ran, ["ok1#3", "ok2#4", "flaky#2"]);
      assert.deepEqual(errors, ["queue:work"], "the poison item is reported once, after its last attempt");
      assert.equal(failing.get("poison"), 97, "three attempts");
      assert.deepEqual(await rt.call("w", "items", []), { ok: true, value: [] });
    } finally {
      await rt.shutdown();
    }
  });

  test("getQueue and dequeue see pending items, and items left at shutdown run after a restart", async () => {
    ran.length = 0;
    failing.clear();
    failing.set("later", 1);
    const dataDir = path.join(t.dir, "restart");
    const clock = new ManualClock();
    let rt = testRuntime(dataDir, Worker, 11, { clock });
    await rt.start();
    const ids = (await rt.call("w", "add", [["later", "x"], 5])) as { ok: true; value: string[] };
    await clock.advance(0);
    assert.deepEqual(ran, ["x#2"]);
    assert.deepEqual(await rt.call("w", "one", [ids.value[0]]), { ok: true, value: "later" });
    await rt.shutdown();
    rt = testRuntime(dataDir, Worker, 11, { clock });
    try {
      await rt.start();
      assert.equal(rt.stats().active, 1, "start() woke the agent with pending work");
      await clock.advance(10_000);
      assert.deepEqual(ran, ["x#2", "later#1"]);
      const more = (await rt.call("w2", "add", [["gone"]])) as { ok: true; value: string[] };
      // The item was flushed after its event; dequeue of a finished item says false.
      assert.deepEqual(await rt.call("w2", "drop", [more.value[0]]), { ok: true, value: false });
    } finally {
      await rt.shutdown();
    }
  });
});
