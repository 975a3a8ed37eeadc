import assert from "node:assert/strict";
import path from "node:path";
import { after, describe, test } from "node:test";
import { Agent, type Connection } from "../../agents/index.ts";
import { BridgeError } from "../../errors/index.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { RecordingTransport, tempDir, testRuntime } from "./helpers.ts";

const changes: Array<{ state: unknown; source: string | null }> = [];
let protocolAsked = 0;

class Thermo extends Agent<{ target: number; big?: string }> {
  static override callable = ["setTarget", "setBig"];
  override initialState = { target: 20 };
  override validateStateChange(next: { target: number }): void {
    if (typeof next.target !== "number" || next.target > 30) {
      throw new BridgeError("BRIDGE_ERR_STATE_INVALID", "target must be a number <= 30");
    }
  }
  override onStateChanged(state: { target: number }, source: Connection | null): void {
    changes.push({ state, source: source?.id ?? null });
  }
  override shouldSendProtocolMessages(conn: Connection): boolean {
    protocolAsked++;
    return super.shouldSendProtocolMessages(conn, {});
  }
  setTarget(target: number): number {
    this.setState({ ...this.state, target });
    return target;
  }
  setBig(bytes: number): number {
    this.setState({ ...this.state, big: "x".repeat(bytes) });
    return bytes;
  }
  bigLength(): number {
    return this.state.big?.length ?? 0;
  }
  connState(id: string): unknown {
    return this.getConnection(id)?.state ?? null;
  }
  setConnState(id: string, value: string): void {
    this.getConnection(id)?.setState({ v: value });
  }
}

describe("agent state and protocol connections", () => {
  const t = tempDir();
  after(() => t.remove());

  test("state changes are broadcast to protocol connections except the source, and never to binary devices", async () => {
    changes.length = 0;
    const rt = testRuntime(path.join(t.dir, "bcast"), Thermo, 1);
    try {
      const ws1 = new RecordingTransport();
      const ws2 = new RecordingTransport();
      const dev = new RecordingTransport();
      await rt.open("th", { id: "ws1", kind: "ws", codec: "json", transport: ws1 });
      await rt.open("th", { id: "ws2", kind: "ws", codec: "json", transport: ws2 });
      await rt.open("th", { id: "dev", kind: "mqtt", codec: "cbor", transport: dev });
      // Identity then the current state on connect, only for protocol (json) connections.
      assert.deepEqual(
        ws1.protocol.map((m) => m.type),
        ["identity", "state"],
      );
      assert.equal(ws1.protocol[0].type === "identity" && ws1.protocol[0].agent, "th");
      assert.equal(ws1.protocol[0].type === "identity" && ws1.protocol[0].name, "Thermo");
      assert.deepEqual(dev.protocol, []);

      const out = rt.deliver("th", "ws1", { channel: "client-state", frame: { state: { target: 22 } } });
      assert.ok(out.accepted);
      assert.deepEqual(await out.done, { status: "committed" });
      assert.deepEqual(ws1.protocol.slice(2), [], "the source does not get its own change back");
      assert.deepEqual(ws2.protocol.slice(2), [{ type: "state", state: { target: 22 } }]);
      assert.deepEqual(dev.protocol, [], "protocol messages never reach a flag-false connection");
      assert.deepEqual(changes, [{ state: { target: 22 }, source: "ws1" }]);

      // A change made by the agent itself goes to every protocol connection.
      assert.deepEqual(await rt.call("th", "setTarget", [25]), { ok: true, value: 25 });
      assert.deepEqual(ws1.protocol.at(-1), { type: "state", state: { target: 25 } });
      assert.deepEqual(ws2.protocol.at(-1), { type: "state", state: { target: 25 } });
      assert.deepEqual(dev.protocol, []);
      for (const s of dev.sent) assert.notEqual(typeof s.message, "string");
    } finally {
      await rt.shutdown();
    }
  });

  test("an invalid or readonly client-state change is refused with an error frame and changes nothing", async () => {
    changes.length = 0;
    const rt = testRuntime(path.join(t.dir, "refuse"), Thermo, 2);
    try {
      const ws = new RecordingTransport();
      const viewer = new RecordingTransport();
      await rt.open("th", { id: "ws", kind: "ws", codec: "json", transport: ws });
      await rt.open("th", { id: "view", kind: "ws", codec: "json", readonly: true, transport: viewer });
      const bad = rt.deliver("th", "ws", { channel: "client-state", frame: { state: { target: 99 } } });
      assert.ok(bad.accepted);
      await bad.done;
      assert.deepEqual(ws.sent.at(-1)?.message, {
        channel: "error",
        frame: { code: "BRIDGE_ERR_STATE_INVALID", msg: "target must be a number <= 30" },
      });
      const ro = rt.deliver("th", "view", { channel: "client-state", frame: { state: { target: 21 } } });
      assert.ok(ro.accepted);
      await ro.done;
      assert.equal(viewer.sent.at(-1)?.message.channel, "error");
      assert.equal((viewer.sent.at(-1)!.message.frame as { code: string }).code, "BRIDGE_ERR_READONLY");
      assert.deepEqual(changes, []);
      const direct = await rt.call("th", "setTarget", [31]);
      assert.equal(!direct.ok && direct.code, "BRIDGE_ERR_STATE_INVALID");
      assert.deepEqual(
        ws.protocol.map((m) => m.type),
        ["identity", "state"],
      );
    } finally {
      await rt.shutdown();
    }
  });

  test("the protocol flag is asked once and, with per-connection state, survives hibernation", async () => {
    protocolAsked = 0;
    const clock = new ManualClock();
    const rt = testRuntime(path.join(t.dir, "flag"), Thermo, 3, { clock, idleTimeoutMs: 1000 });
    try {
      const dev = new RecordingTransport();
      const ws = new RecordingTransport();
      await rt.open("th", { id: "dev", kind: "mqtt", codec: "cbor", transport: dev });
      await rt.open("th", { id: "ws", kind: "ws", codec: "json", transport: ws });
      await rt.call("th", "setConnState", ["ws", "hello"]);
      assert.equal(protocolAsked, 2);
      await clock.advance(5000);
      assert.equal(rt.stats().active, 0, "idle agent hibernated");
      assert.deepEqual(await rt.call("th", "connState", ["ws"]), { ok: true, value: { v: "hello" } });
      await rt.call("th", "setTarget", [23]);
      assert.equal(protocolAsked, 2, "not asked again on wake");
      assert.deepEqual(ws.protocol.at(-1), { type: "state", state: { target: 23 } });
      assert.deepEqual(dev.protocol, []);
    } finally {
      await rt.shutdown();
    }
  });

  test("a state larger than one SQLite row is stored in chunks and read back whole after a restart", async () => {
    const dataDir = path.join(t.dir, "large");
    const size = 1_300_000; // > 2 chunks of 512 KiB
    let rt = testRuntime(dataDir, Thermo, 4);
    try {
      assert.deepEqual(await rt.call("th", "setBig", [size]), { ok: true, value: size });
      await rt.call("th", "setBig", [10]);
      await rt.call("th", "setBig", [size]);
    } finally {
      await rt.shutdown();
    }
    rt = testRuntime(dataDir, Thermo, 5);
    try {
      assert.deepEqual(await rt.call("th", "bigLength", []), { ok: true, value: size });
    } finally {
      await rt.shutdown();
    }
  });

  test("a state beyond the database cap fails the event with BRIDGE_ERR_STATE_TOO_LARGE, keeping the old state", async () => {
    const rt = testRuntime(path.join(t.dir, "cap"), Thermo, 6, { maxDatabaseBytes: 256 * 1024 });
    try {
      await rt.call("th", "setTarget", [21]);
      const r = await rt.call("th", "setBig", [400 * 1024]);
      assert.equal(!r.ok && r.code, "BRIDGE_ERR_STATE_TOO_LARGE");
      const r2 = await rt.call("th", "setBig", [250 * 1024]);
      assert.equal(!r2.ok && r2.code, "BRIDGE_ERR_STORAGE_FULL");
      assert.deepEqual(await rt.call("th", "bigLength", []), { ok: true, value: 0 });
    } finally {
      await rt.shutdown();
    }
  });
});
