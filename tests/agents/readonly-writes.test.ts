import assert from "node:assert/strict";
import path from "node:path";
import { after, describe, test } from "node:test";
import type { RpcResultFrame, Value } from "../../codecs/frames.ts";
import { Agent, type AgentRuntime } from "../../agents/index.ts";
import { RecordingTransport, tempDir, testRuntime } from "./helpers.ts";

const READONLY = "BRIDGE_ERR_READONLY_CONNECTION";

/** A callable per kind of durable write an agent can make, and `snapshot`, which reads them all. */
class Keeper extends Agent {
  static override callable = [
    "insertRow",
    "insertRowQuietly",
    "addSchedule",
    "addInterval",
    "dropSchedule",
    "enqueue",
    "dropItem",
    "launch",
    "dropTask",
    "putEntry",
    "setConnectionState",
    "selfDestroy",
    "snapshot",
    "readInTransaction",
  ];
  override onStart(): void {
    this.sql`CREATE TABLE IF NOT EXISTS notes (text TEXT)`;
  }
  insertRow(text: string): boolean {
    this.sql`INSERT INTO notes (text) VALUES (${text})`;
    return true;
  }
  /** Swallows the refusal: the row still must not be written, and the refusal says what was refused. */
  insertRowQuietly(): string {
    try {
      this.sql`INSERT INTO notes (text) VALUES ('quiet')`;
      return "inserted";
    } catch (err) {
      const e = err as { code?: string; details?: { operation?: string } };
      return `${e.code}:${e.details?.operation}`;
    }
  }
  addSchedule(): string {
    return this.schedule(60, "tick").id;
  }
  addInterval(): string {
    return this.scheduleEvery(60, "tick").id;
  }
  dropSchedule(id: string): boolean {
    return this.cancelSchedule(id);
  }
  enqueue(method: string): string {
    return this.queue(method, null);
  }
  dropItem(id: string): boolean {
    return this.dequeue(id);
  }
  launch(): string {
    return this.startTask(
      "wait",
      null,
      (task) => new Promise((_, reject) => task.signal.addEventListener("abort", reject)),
    );
  }
  dropTask(id: string): boolean {
    return this.cancelTask(id);
  }
  putEntry(): void {
    this.env.directory.put("notes", "k", "v");
  }
  setConnectionState(connectionId: string): void {
    this.getConnection(connectionId)?.setState({ seen: true });
  }
  selfDestroy(): void {
    void this.destroy();
  }
  tick(): void {}
  /** A queue item that fails, so it stays in the queue (its retry waits on a clock that never moves). */
  park(): void {
    throw new Error("parked");
  }
  snapshot(): Value {
    return {
      notes: this.sql<{ c: number }>`SELECT count(*) AS c FROM notes`[0].c,
      schedules: this.getSchedules().map((s) => s.id),
      queue: this.getQueues().map((q) => q.id),
      tasks: this.getTasks().map((t) => t.id),
      viewerState: this.getConnection("view")?.state ?? null,
    };
  }
  readInTransaction(): number {
    return this.transaction(() => this.sql<{ c: number }>`SELECT count(*) AS c FROM notes`[0].c);
  }
}

interface Ctx {
  rt: AgentRuntime;
  viewer: RecordingTransport;
  editor: RecordingTransport;
  rpc(conn: "view" | "edit", m: string, a?: Value[]): Promise<RpcResultFrame>;
  snapshot(): Promise<Value>;
}

/** A runtime with one Keeper, a schedule, a parked queue item and a running task, and a viewer and an editor. */
async function withKeeper(dataDir: string, fn: (ctx: Ctx) => Promise<void>): Promise<void> {
  const rt = testRuntime(dataDir, Keeper, 7);
  let n = 0;
  try {
    await rt.start();
    const viewer = new RecordingTransport();
    const editor = new RecordingTransport();
    await rt.open("keep", { id: "view", kind: "ws", codec: "json", readonly: true, transport: viewer });
    await rt.open("keep", { id: "edit", kind: "ws", codec: "json", transport: editor });
    for (const [m, a] of [
      ["addSchedule", []],
      ["enqueue", ["park"]],
      ["launch", []],
    ] as const) {
      assert.equal((await rt.call("keep", m, [...a])).ok, true, m);
    }
    const rpc = async (conn: "view" | "edit", m: string, a: Value[] = []): Promise<RpcResultFrame> => {
      const id = String(++n);
      const outcome = rt.deliver("keep", conn, { channel: "rpc", frame: { id, m, a } });
      assert.ok(outcome.accepted);
      await outcome.done;
      const reply = (conn === "view" ? viewer : editor).sent.at(-1)?.message;
      assert.ok(reply?.channel === "rpc", `no reply to ${m}`);
      return reply.frame;
    };
    const snapshot = async (): Promise<Value> => {
      const r = await rt.call("keep", "snapshot", []);
      assert.ok(r.ok);
      return r.value;
    };
    await fn({ rt, viewer, editor, rpc, snapshot });
  } finally {
    await rt.shutdown();
  }
}

describe("a readonly connection's rpc changes nothing the agent keeps", () => {
  const t = tempDir("agents-readonly-writes-");
  after(() => t.remove());

  test("every agent-facing write is refused with BRIDGE_ERR_READONLY_CONNECTION and the data stays as it was", async () => {
    await withKeeper(path.join(t.dir, "refused"), async ({ rt, rpc, snapshot }) => {
      const before = (await snapshot()) as { schedules: string[]; queue: string[]; tasks: string[] };
      const writes: Array<[string, Value[]]> = [
        ["insertRow", ["x"]],
        ["addSchedule", []],
        ["addInterval", []],
        ["dropSchedule", [before.schedules[0]]],
        ["enqueue", ["tick"]],
        ["dropItem", [before.queue[0]]],
        ["launch", []],
        ["dropTask", [before.tasks[0]]],
        ["putEntry", []],
        ["setConnectionState", ["view"]],
        ["selfDestroy", []],
      ];
      const replies: Value[] = [];
      for (const [m, a] of writes) {
        const reply = await rpc("view", m, a);
        replies.push({ m, ok: reply.ok, err: reply.err ?? null });
      }
      assert.deepEqual(
        replies,
        writes.map(([m]) => ({ m, ok: false, err: READONLY })),
      );
      assert.deepEqual(await snapshot(), before);
      assert.deepEqual(rt.directory.list("notes"), []);
    });
  });

  test("a refusal the method catches still writes nothing, and names what it refused", async () => {
    await withKeeper(path.join(t.dir, "caught"), async ({ rpc, snapshot }) => {
      const reply = await rpc("view", "insertRowQuietly");
      assert.deepEqual(reply, { id: "1", ok: true, res: `${READONLY}:sql` });
      assert.equal(((await snapshot()) as { notes: number }).notes, 0);
    });
  });

  test("read-only methods work for the viewer, reads inside transaction() included", async () => {
    await withKeeper(path.join(t.dir, "reads"), async ({ rpc, snapshot }) => {
      assert.deepEqual(await rpc("view", "snapshot"), { id: "1", ok: true, res: await snapshot() });
      assert.deepEqual(await rpc("view", "readInTransaction"), { id: "2", ok: true, res: 0 });
    });
  });

  test("a read-write client's same calls commit, also in the batch of a refused viewer event", async () => {
    await withKeeper(path.join(t.dir, "editor"), async ({ rt, viewer, editor, rpc, snapshot }) => {
      // Delivered together, so they run in one batch: the viewer's refusal rolls back its own event only.
      const ro = rt.deliver("keep", "view", { channel: "rpc", frame: { id: "v", m: "insertRow", a: ["v"] } });
      const rw = rt.deliver("keep", "edit", { channel: "rpc", frame: { id: "e", m: "insertRow", a: ["e"] } });
      assert.ok(ro.accepted && rw.accepted);
      await Promise.all([ro.done, rw.done]);
      assert.deepEqual(viewer.sent.at(-1)?.message.frame, { id: "v", ok: false, err: READONLY });
      assert.deepEqual(editor.sent.at(-1)?.message.frame, { id: "e", ok: true, res: true });

      const before = (await snapshot()) as { schedules: string[]; queue: string[]; tasks: string[] };
      for (const [m, a] of [
        ["addSchedule", []],
        ["enqueue", ["park"]],
        ["launch", []],
        ["dropSchedule", [before.schedules[0]]],
        ["dropItem", [before.queue[0]]],
        ["dropTask", [before.tasks[0]]],
        ["putEntry", []],
        ["setConnectionState", ["view"]],
      ] as Array<[string, Value[]]>) {
        assert.equal((await rpc("edit", m, a)).ok, true, m);
      }
      const afterEdits = (await snapshot()) as Record<string, unknown>;
      assert.equal(afterEdits.notes, 1);
      assert.equal((afterEdits.schedules as string[]).length, 1);
      assert.notEqual((afterEdits.schedules as string[])[0], before.schedules[0]);
      assert.deepEqual(afterEdits.viewerState, { seen: true });
      assert.deepEqual(rt.directory.list("notes"), [{ agentId: "keep", key: "k", value: "v" }]);
    });
  });

  test("the runtime's own bookkeeping goes on: the viewer's connection row, its close and later events", async () => {
    await withKeeper(path.join(t.dir, "bookkeeping"), async ({ rt, rpc, snapshot }) => {
      assert.equal((await rpc("view", "insertRow", ["x"])).ok, false);
      assert.equal((await rt.close("keep", "view", "disconnect")).status, "committed");
      assert.deepEqual(await rt.call("keep", "insertRow", ["y"]), { ok: true, value: true });
      assert.equal(((await snapshot()) as { notes: number }).notes, 1);
    });
  });
});
