/**
 * An event that fails because its own agent was destroyed carries BRIDGE_ERR_AGENT_DESTROYED, not the shutdown's
 * BRIDGE_ERR_RUNTIME_CLOSED: a transport or an operator's client can then tell "this agent is gone, do not retry
 * against it" from "the bridge is stopping, try again later" by the code alone.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, describe, test } from "node:test";
import { Agent, AGENT_ERRORS, type Value } from "../../agents/index.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { RecordingTransport, settle, tempDir, testRuntime } from "./helpers.ts";

let release: (() => void) | undefined;

/** Schedules that ran and task outcomes an agent heard of, by agent id. */
const heard: string[] = [];
let finishTask: ((value: Value) => void) | undefined;

class Slow extends Agent {
  later(seconds: number): void {
    this.schedule(seconds, "tick", null);
  }
  tick(): void {
    heard.push(`${this.id}:tick`);
  }
  background(): void {
    this.startTask(
      "t",
      null,
      () =>
        new Promise<Value>((resolve) => {
          finishTask = resolve;
        }),
    );
  }
  override onTaskDone(): void {
    heard.push(`${this.id}:task-done`);
  }
  async slow(): Promise<string> {
    await new Promise<void>((resolve) => {
      release = resolve;
    });
    return "slow done";
  }
  ping(): string {
    return "pong";
  }
}

const destroyed = { status: "failed", code: "BRIDGE_ERR_AGENT_DESTROYED", message: "agent destroyed" };

describe("the failure code of an event whose agent was destroyed", () => {
  const t = tempDir();
  after(() => t.remove());

  test("the code is part of the runtime's stable codes", () => {
    assert.equal(AGENT_ERRORS.AGENT_DESTROYED, "BRIDGE_ERR_AGENT_DESTROYED");
  });

  test("a message, an open, a close and a call waiting behind a destroy fail with BRIDGE_ERR_AGENT_DESTROYED", async () => {
    const rt = testRuntime(path.join(t.dir, "waiting"), Slow, 1);
    try {
      const device = new RecordingTransport();
      assert.deepEqual(await rt.open("a", { id: "dev", kind: "mqtt", codec: "json", transport: device }), {
        status: "committed",
      });
      const running = rt.call("a", "slow", []);
      await settle();
      const delivered = rt.deliver("a", "dev", { channel: "telemetry", frame: { r: { t: 1 } } });
      assert.equal(delivered.accepted, true);
      const opening = rt.open("a", { id: "ws", kind: "ws", codec: "json", transport: new RecordingTransport() });
      const closing = rt.close("a", "dev", "disconnect");
      const called = rt.call("a", "ping", []);
      const destroy = rt.destroyAgent("a");
      release?.();
      assert.deepEqual(await running, { ok: true, value: "slow done" }, "the running event is not cut short");
      assert.equal(await destroy, true);
      assert.deepEqual(delivered.accepted && (await delivered.done), destroyed);
      assert.deepEqual(await opening, destroyed);
      assert.deepEqual(await closing, destroyed);
      assert.deepEqual(await called, { ok: false, code: "BRIDGE_ERR_AGENT_DESTROYED", message: "agent destroyed" });
      assert.deepEqual(device.closed, ["agent destroyed"]);
    } finally {
      await rt.shutdown();
    }
  });

  test("a call that arrives while the destroy is pending fails with BRIDGE_ERR_AGENT_DESTROYED", async () => {
    const rt = testRuntime(path.join(t.dir, "pending"), Slow, 2);
    try {
      const running = rt.call("a", "slow", []);
      await settle();
      const destroy = rt.destroyAgent("a");
      await settle();
      const late = rt.call("a", "ping", []);
      release?.();
      await running;
      assert.equal(await destroy, true);
      assert.deepEqual(await late, { ok: false, code: "BRIDGE_ERR_AGENT_DESTROYED", message: "agent destroyed" });
      // The agent is gone, not the runtime: the next call makes a new one.
      assert.deepEqual(await rt.call("a", "ping", []), { ok: true, value: "pong" });
    } finally {
      await rt.shutdown();
    }
  });

  test("a shutdown still fails what arrives with BRIDGE_ERR_RUNTIME_CLOSED", async () => {
    const rt = testRuntime(path.join(t.dir, "shutdown"), Slow, 3);
    const device = new RecordingTransport();
    await rt.open("a", { id: "dev", kind: "mqtt", codec: "json", transport: device });
    const running = rt.call("a", "slow", []);
    await settle();
    const stopping = rt.shutdown();
    const called = await rt.call("a", "ping", []);
    const delivered = rt.deliver("a", "dev", { channel: "telemetry", frame: { r: { t: 1 } } });
    const opened = await rt.open("b", { id: "x", kind: "mqtt", codec: "json", transport: new RecordingTransport() });
    release?.();
    await running;
    await stopping;
    assert.equal(called.ok === false && called.code, "BRIDGE_ERR_RUNTIME_CLOSED");
    assert.equal(delivered.accepted, true);
    const done = delivered.accepted ? await delivered.done : undefined;
    assert.equal(done?.status === "failed" && done.code, "BRIDGE_ERR_RUNTIME_CLOSED");
    assert.equal(opened.status === "failed" && opened.code, "BRIDGE_ERR_RUNTIME_CLOSED");
    const after = await rt.call("a", "ping", []);
    assert.equal(after.ok === false && after.code, "BRIDGE_ERR_RUNTIME_CLOSED");
  });

  test("a task's report arriving after the destroy reaches no agent and makes none again", async () => {
    heard.length = 0;
    const dataDir = path.join(t.dir, "task-report");
    const clock = new ManualClock();
    const rt = testRuntime(dataDir, Slow, 4, { clock });
    await rt.start();
    try {
      assert.equal((await rt.call("a", "background", [])).ok, true);
      await settle();
      assert.equal(await rt.destroyAgent("a"), true);
      finishTask?.("late");
      await settle();
      await clock.advance(600_000);
      assert.deepEqual(heard, []);
      assert.deepEqual(fs.readdirSync(path.join(dataDir, "agents")), [], "the destroyed agent was not made again");
    } finally {
      await rt.shutdown();
    }
  });

  for (const asleep of [true, false]) {
    test(`an alarm of an agent destroyed ${asleep ? "asleep" : "while its alarm event waits"} never fires and is not set again`, async () => {
      heard.length = 0;
      const dataDir = path.join(t.dir, asleep ? "alarm-asleep" : "alarm-waiting");
      const clock = new ManualClock();
      const rt = testRuntime(dataDir, Slow, 5, { clock, idleTimeoutMs: 1_000 });
      await rt.start();
      try {
        assert.equal((await rt.call("a", "later", [10])).ok, true);
        if (asleep) {
          await clock.advance(2_000);
          assert.equal(rt.stats().active, 0);
          assert.equal(await rt.destroyAgent("a"), true);
        } else {
          // The alarm fires while the agent is in a slow call: its event waits behind it, and the destroy fails it.
          const running = rt.call("a", "slow", []);
          await settle();
          await clock.advance(10_000);
          const destroy = rt.destroyAgent("a");
          release?.();
          await running;
          assert.equal(await destroy, true);
        }
        await clock.advance(600_000);
        assert.deepEqual(heard, [], "no schedule ran");
        assert.deepEqual(fs.readdirSync(path.join(dataDir, "agents")), [], "the destroyed agent was not made again");
      } finally {
        await rt.shutdown();
      }
    });
  }

  test("a destroy fails only its own agent's events: calls to another agent of the same class go on", async () => {
    const rt = testRuntime(path.join(t.dir, "other-agent"), Slow, 6);
    try {
      assert.deepEqual(await rt.call("b", "ping", []), { ok: true, value: "pong" });
      const running = rt.call("a", "slow", []);
      await settle();
      const waiting = rt.call("a", "ping", []);
      const destroy = rt.destroyAgent("a");
      const others = [rt.call("b", "ping", []), rt.call("c", "ping", [])];
      release?.();
      await running;
      assert.equal(await destroy, true);
      assert.deepEqual(await waiting, { ok: false, code: "BRIDGE_ERR_AGENT_DESTROYED", message: "agent destroyed" });
      assert.deepEqual(await Promise.all(others), [
        { ok: true, value: "pong" },
        { ok: true, value: "pong" },
      ]);
      assert.deepEqual(await rt.call("b", "ping", []), { ok: true, value: "pong" });
    } finally {
      await rt.shutdown();
    }
  });
});
