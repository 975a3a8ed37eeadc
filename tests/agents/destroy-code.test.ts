/**
 * An event that fails because its own agent was destroyed carries BRIDGE_ERR_AGENT_DESTROYED, not the shutdown's
 * BRIDGE_ERR_RUNTIME_CLOSED: a transport or an operator's client can then tell "this agent is gone, do not retry
 * against it" from "the bridge is stopping, try again later" by the code alone.
 */
import assert from "node:assert/strict";
import path from "node:path";
import { after, describe, test } from "node:test";
import { Agent, AGENT_ERRORS } from "../../agents/index.ts";
import { RecordingTransport, settle, tempDir, testRuntime } from "./helpers.ts";

let release: (() => void) | undefined;

class Slow extends Agent {
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
});
