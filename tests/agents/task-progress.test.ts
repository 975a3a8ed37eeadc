import assert from "node:assert/strict";
import path from "node:path";
import { after, describe, test } from "node:test";
import { Agent, type TaskInfo, type Value } from "../../agents/index.ts";
import { settle, tempDir, testRuntime } from "./helpers.ts";

let releaseBusy: (() => void) | null = null;
let driver: {
  progress(update: Value, merge?: (previous: Value, update: Value) => Value | undefined): void;
  finish(): void;
} | null = null;
const received: Value[] = [];

class SlowReader extends Agent {
  static override callable = ["busy", "stream"];
  async busy(): Promise<string> {
    await new Promise<void>((r) => {
      releaseBusy = r;
    });
    return "free";
  }
  stream(): string {
    return this.startTask(
      "tokens",
      null,
      (task) =>
        new Promise<Value>((resolve) => {
          driver = { progress: (u, merge) => task.progress(u, merge), finish: () => resolve("end") };
        }),
    );
  }
  override onTaskProgress(_task: TaskInfo, update: Value): void {
    received.push(update);
  }
  override onTaskDone(_task: TaskInfo, result: Value): void {
    received.push(`done:${result}`);
  }
}

describe("task progress into a slow agent", () => {
  const t = tempDir();
  after(() => t.remove());

  test("a per-token stream into a busy agent keeps one progress event and hands over every update in order", async () => {
    received.length = 0;
    const progressEvents: number[] = [];
    const rt = testRuntime(path.join(t.dir, "coalesce"), SlowReader, 3, {
      observer: {
        onEvent: (e) => {
          if (e.kind === "task-progress") progressEvents.push(1);
        },
      },
    });
    try {
      assert.equal((await rt.call("a", "stream", [])).ok, true);
      await settle();
      assert.ok(driver !== null);
      const busy = rt.call("a", "busy", []);
      await settle();
      assert.ok(releaseBusy !== null, "the agent is inside a slow event");
      for (let i = 0; i < 1000; i++) driver.progress(`t${i}`);
      assert.equal(rt.stats().mailboxDepth, 1, "1000 updates wait as one mailbox event");
      releaseBusy();
      assert.deepEqual(await busy, { ok: true, value: "free" });
      await settle();
      assert.equal(progressEvents.length, 1);
      assert.deepEqual(
        received,
        Array.from({ length: 1000 }, (_, i) => `t${i}`),
      );
      // Updates after the batch started go into a new event, still ahead of the outcome.
      driver.progress("late");
      driver.finish();
      await settle();
      assert.deepEqual(received.slice(1000), ["late", "done:end"]);
      assert.equal(progressEvents.length, 2);
    } finally {
      releaseBusy = null;
      driver = null;
      await rt.shutdown();
    }
  });
  test("updates offered with a merge join the update still waiting in the mailbox, and never one the agent saw", async () => {
    received.length = 0;
    const rt = testRuntime(path.join(t.dir, "merge"), SlowReader, 4);
    // Strings merge by concatenation; one starting with "!" merges with nothing (as a non-text update would).
    const plain = (v: Value): v is string => typeof v === "string" && !v.startsWith("!");
    const merge = (previous: Value, update: Value): Value | undefined =>
      plain(previous) && plain(update) ? previous + update : undefined;
    try {
      assert.equal((await rt.call("a", "stream", [])).ok, true);
      await settle();
      assert.ok(driver !== null);
      // While the agent keeps up, every update reaches it as it came.
      driver.progress("a", merge);
      await settle();
      driver.progress("b", merge);
      await settle();
      assert.deepEqual(received, ["a", "b"]);
      const busy = rt.call("a", "busy", []);
      await settle();
      assert.ok(releaseBusy !== null, "the agent is inside a slow event");
      const sent: string[] = [];
      for (let i = 0; i < 200; i++) {
        const update = i === 100 ? "!mark" : `${i},`;
        sent.push(update);
        driver.progress(update, merge);
      }
      releaseBusy();
      assert.deepEqual(await busy, { ok: true, value: "free" });
      await settle();
      const merged = received.slice(2);
      assert.deepEqual(merged.length, 3, "the refused update splits the run into three updates");
      assert.equal(merged.join(""), sent.join(""), "nothing dropped, reordered or repeated");
      assert.equal(merged[1], "!mark");
      driver.finish();
      await settle();
      assert.equal(received.at(-1), "done:end");
    } finally {
      releaseBusy = null;
      driver = null;
      await rt.shutdown();
    }
  });
});
