import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, describe, test } from "node:test";
import Database from "better-sqlite3";
import { Agent, type Connection, createRuntime, type Value } from "../../agents/index.ts";
import { BridgeError } from "../../errors/index.ts";
import { RecordingTransport, tempDir, testRuntime } from "./helpers.ts";

class Base extends Agent {
  static override callable = ["ping"];
  ping(): string {
    return `pong:${this.constructor.name}`;
  }
  secret(): string {
    return "operator only";
  }
  _hidden(): string {
    return "never";
  }
  config(): Value {
    return this.env.config as Value;
  }
  approve(key: string, value: Value): void {
    this.env.directory.put("approval", key, value);
  }
  approvals(): Value {
    return this.env.directory.list("approval").map((e) => `${e.agentId}/${e.key}`);
  }
  later(): string {
    return this.schedule(60, "ping").id;
  }
  onCustomHook(): string {
    return "a subclass hook";
  }
  override onConnect(conn: Connection): void {
    if (conn.context.fail === true) throw new Error("refused");
  }
}
class Thermostat extends Base {
  static override callable = ["heat"];
  heat(): string {
    return "warm";
  }
}

describe("agent runtime registry and operator calls", () => {
  const t = tempDir();
  after(() => t.remove());

  test("runtime.db follows lockingMode: held by the runtime under EXCLUSIVE, readable from outside under NORMAL", async () => {
    for (const lockingMode of ["EXCLUSIVE", "NORMAL"] as const) {
      const dataDir = path.join(t.dir, `runtime-db-${lockingMode}`);
      const rt = testRuntime(dataDir, Base, 1, { lockingMode });
      await rt.start();
      await rt.call("a1", "later", []);
      const outside = new Database(path.join(dataDir, "runtime.db"), { timeout: 0 });
      try {
        const read = () => outside.prepare("SELECT agent_id FROM alarms").all();
        if (lockingMode === "EXCLUSIVE") assert.throws(read, /locked/);
        else assert.deepEqual(read(), [{ agent_id: "a1" }]);
      } finally {
        outside.close();
        await rt.shutdown();
      }
    }
  });

  test("classes are chosen by glob pattern with the default as fallback, and get their class config", async () => {
    const rt = testRuntime(path.join(t.dir, "classes"), Base, 2, {
      agentClasses: [{ pattern: "thermo-*", agentClass: Thermostat }],
      agentConfig: { Thermostat: { setpoint: 21 } },
    });
    try {
      assert.deepEqual(await rt.call("thermo-1", "ping", []), { ok: true, value: "pong:Thermostat" });
      assert.deepEqual(await rt.call("lamp-1", "ping", []), { ok: true, value: "pong:Base" });
      assert.deepEqual(await rt.call("thermo-1", "config", []), { ok: true, value: { setpoint: 21 } });
      assert.deepEqual(await rt.call("lamp-1", "config", []), { ok: true, value: {} });
    } finally {
      await rt.shutdown();
    }
  });

  test("rpc reaches only static callable methods along the class chain; call reaches public methods but not hooks", async () => {
    const rt = testRuntime(path.join(t.dir, "rpc"), Thermostat, 3);
    try {
      const tr = new RecordingTransport();
      await rt.open("t", { id: "c", kind: "mqtt", codec: "pb", transport: tr });
      for (const [id, m] of [
        ["1", "heat"],
        ["2", "ping"],
        ["3", "secret"],
        ["4", "onStart"],
        ["5", "setState"],
        ["6", "constructor"],
      ]) {
        const out = rt.deliver("t", "c", { channel: "rpc", frame: { id, m, a: [] } });
        assert.ok(out.accepted);
        await out.done;
      }
      assert.deepEqual(
        tr.sent.map((s) => s.message.frame),
        [
          { id: "1", ok: true, res: "warm" },
          { id: "2", ok: true, res: "pong:Thermostat" },
          { id: "3", ok: false, err: "BRIDGE_ERR_RPC_UNKNOWN_METHOD" },
          { id: "4", ok: false, err: "BRIDGE_ERR_RPC_UNKNOWN_METHOD" },
          { id: "5", ok: false, err: "BRIDGE_ERR_RPC_UNKNOWN_METHOD" },
          { id: "6", ok: false, err: "BRIDGE_ERR_RPC_UNKNOWN_METHOD" },
        ],
      );
      assert.deepEqual(await rt.call("t", "secret", []), { ok: true, value: "operator only" });
      for (const m of ["onStart", "onMessage", "onCustomHook", "setState", "destroy", "_hidden", "sql", "nope"]) {
        const r = await rt.call("t", m, []);
        assert.equal(!r.ok && r.code, "BRIDGE_ERR_CALL_UNKNOWN_METHOD", m);
      }
      for (const id of ["../etc", ".", ".."]) {
        const bad = await rt.call(id, "ping", []);
        assert.equal(!bad.ok && bad.code, "BRIDGE_ERR_INVALID_AGENT_ID", id);
      }
    } finally {
      await rt.shutdown();
    }
  });

  test("a throwing onConnect fails the open and forgets the connection", async () => {
    const rt = testRuntime(path.join(t.dir, "open"), Base, 4);
    try {
      const r = await rt.open("a", {
        id: "c",
        kind: "ws",
        codec: "json",
        context: { fail: true },
        transport: new RecordingTransport(),
      });
      assert.equal(r.status, "failed");
      const out = rt.deliver("a", "c", { channel: "rpc", frame: { id: "1", m: "ping" } });
      assert.ok(out.accepted);
      const d = await out.done;
      assert.equal(d.status === "failed" && d.code, "BRIDGE_ERR_CONNECTION_UNKNOWN");
    } finally {
      await rt.shutdown();
    }
  });

  test("the fleet directory lists entries across agents after commit and destroyAgent removes everything", async () => {
    const dataDir = path.join(t.dir, "dir");
    const rt = testRuntime(dataDir, Base, 5);
    try {
      await rt.call("a", "approve", ["k1", { tool: "open-valve" }]);
      await rt.call("b", "approve", ["k2", 1]);
      await rt.call("b", "later", []);
      assert.deepEqual(
        rt.directory.list("approval").map((e) => `${e.agentId}/${e.key}`),
        ["a/k1", "b/k2"],
      );
      assert.deepEqual(rt.directory.list("approval")[0].value, { tool: "open-valve" });
      await rt.call("a", "approve", ["k1", null]);
      assert.deepEqual(await rt.call("b", "approvals", []), { ok: true, value: ["b/k2"] });
      const tr = new RecordingTransport();
      await rt.open("b", { id: "c", kind: "mqtt", codec: "cbor", transport: tr });
      await rt.destroyAgent("b");
      assert.deepEqual(tr.closed, ["agent destroyed"]);
      assert.deepEqual(rt.directory.list("approval"), []);
      assert.equal(fs.existsSync(path.join(dataDir, "agents", "b.db")), false);
      assert.deepEqual(await rt.call("b", "approvals", []), { ok: true, value: [] });
    } finally {
      await rt.shutdown();
    }
  });

  test("destroyAgent says whether the agent had anything to remove, and reports a destroy only then", async () => {
    const dataDir = path.join(t.dir, "destroy-outcome");
    const destroyed: string[] = [];
    const observer = { onHibernate: (i: { agentId: string; reason: string }) => destroyed.push(i.agentId) };
    const first = testRuntime(dataDir, Base, 6, { observer });
    await first.call("live", "later", []);
    await first.call("asleep", "later", []);
    await first.shutdown();
    destroyed.length = 0;

    const rt = testRuntime(dataDir, Base, 6, { observer });
    try {
      await rt.call("live", "ping", []);
      assert.equal(await rt.destroyAgent("live"), true, "an agent in memory");
      // Never woken by this runtime: only its database file and its alarm row are left of it.
      assert.equal(await rt.destroyAgent("asleep"), true, "an agent on disk");
      assert.equal(fs.existsSync(path.join(dataDir, "agents", "asleep.db")), false);
      assert.equal(await rt.destroyAgent("asleep"), false, "destroyed already");
      assert.equal(await rt.destroyAgent("never-was"), false, "an id that never had an agent");
      assert.equal(await rt.destroyAgent("bad/id"), false, "an id that cannot have one");
      assert.deepEqual(
        destroyed.filter((id) => id !== "live" && id !== "asleep"),
        [],
      );
      assert.deepEqual(rt.stats().hibernated, 0);
    } finally {
      await rt.shutdown();
    }
  });

  test("destroyAgent after shutdown is refused with BRIDGE_ERR_RUNTIME_CLOSED and deletes nothing", async () => {
    const dataDir = path.join(t.dir, "destroy-after-shutdown");
    const rt = testRuntime(dataDir, Base, 7);
    await rt.call("kept", "later", []);
    await rt.shutdown();
    await assert.rejects(
      rt.destroyAgent("kept"),
      (err: unknown) => err instanceof BridgeError && err.code === "BRIDGE_ERR_RUNTIME_CLOSED",
    );
    assert.equal(fs.existsSync(path.join(dataDir, "agents", "kept.db")), true, "its database is left alone");
  });

  test("directory.list after shutdown is refused with BRIDGE_ERR_RUNTIME_CLOSED", async () => {
    const rt = testRuntime(path.join(t.dir, "directory-after-shutdown"), Base, 7);
    await rt.call("asker", "approve", ["ap-1", "tool"]);
    assert.equal(rt.directory.list("approval").length, 1);
    await rt.shutdown();
    assert.throws(
      () => rt.directory.list("approval"),
      (err: unknown) => err instanceof BridgeError && err.code === "BRIDGE_ERR_RUNTIME_CLOSED",
    );
  });

  test("options are validated at construction with the field named", () => {
    const dataDir = path.join(t.dir, "opts");
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ mailboxCapacity: 0 }, "mailboxCapacity"],
      [{ idleTimeoutMs: 1.5 }, "idleTimeoutMs"],
      [{ maxActiveAgents: -1 }, "maxActiveAgents"],
      [{ maxDatabaseBytes: 10 }, "maxDatabaseBytes"],
      [{ synchronous: "OFF" }, "synchronous"],
      [{ pageSizeBytes: 3000 }, "pageSizeBytes"],
      [{ pageSizeBytes: 256 }, "pageSizeBytes"],
      [{ pageSizeBytes: 131072 }, "pageSizeBytes"],
      [{ defaultAgentClass: 3 }, "defaultAgentClass"],
      [{ agentClasses: [{ pattern: "", agentClass: Base }] }, "agentClasses[0].pattern"],
    ];
    for (const [extra, field] of cases) {
      assert.throws(
        () => createRuntime({ dataDir, defaultAgentClass: Base, ...extra } as Parameters<typeof createRuntime>[0]),
        (err: unknown) =>
          err instanceof BridgeError && err.code === "BRIDGE_ERR_INVALID_OPTION" && err.details.field === field,
        field,
      );
    }
  });
});
