import assert from "node:assert/strict";
import path from "node:path";
import { after, describe, test } from "node:test";
import { Agent, type AgentRuntime, type Value } from "../../agents/index.ts";
import { failControlOnce } from "./control-fault.ts";
import { RecordingTransport, settle, tempDir, testRuntime } from "./helpers.ts";
import { statementSpy } from "./statement-spy.ts";

// The statements of a group commit (agents/cell-batch.ts): an event gets a savepoint only when something before it in
// the batch reached SQLite, and the first eight savepoints nest until the COMMIT; deeper ones are released. These tests pin the statement sequence and what a
// failing event rolls back in each position.

class Rows extends Agent {
  static override callable = ["write", "writeThenThrow", "send", "sendThenThrow", "rows"];
  override onStart(): void {
    this.sql`CREATE TABLE IF NOT EXISTS rows (n TEXT)`;
  }
  write(n: string): string {
    this.sql`INSERT INTO rows (n) VALUES (${n})`;
    return n;
  }
  writeThenThrow(n: string): never {
    this.sql`INSERT INTO rows (n) VALUES (${n})`;
    throw new Error(`refused ${n}`);
  }
  /** Writes nothing: only a frame to every connection. */
  send(n: string): null {
    for (const c of this.getConnections()) c.send({ channel: "rpc", frame: { id: n, ok: true, res: n } });
    return null;
  }
  sendThenThrow(n: string): never {
    this.send(n);
    throw new Error(`refused ${n}`);
  }
  rows(): Value {
    return this.sql<{ n: string }>`SELECT n FROM rows ORDER BY rowid`.map((r) => r.n);
  }
}

/**
 * Its onError records the failure the way an agent may: a row through `sql`, a schedule and a state change (the
 * last two through the runtime's own write of a change outside any event). What each attempt threw is kept.
 */
class Recorder extends Agent<{ err: string | null }> {
  static override callable = ["send", "fail", "lose", "write", "seen"];
  override initialState = { err: null as string | null };
  readonly refused: string[] = [];
  override onStart(): void {
    this.sql`CREATE TABLE IF NOT EXISTS rows (n TEXT)`;
    this.sql`CREATE TABLE IF NOT EXISTS u (k INTEGER PRIMARY KEY)`;
    this.sql`INSERT OR IGNORE INTO u (k) VALUES (1)`;
  }
  send(n: string): null {
    for (const c of this.getConnections()) c.send({ channel: "rpc", frame: { id: n, ok: true, res: n } });
    return null;
  }
  write(n: string): string {
    this.sql`INSERT INTO rows (n) VALUES (${n})`;
    return n;
  }
  fail(n: string): never {
    this.sql`INSERT INTO rows (n) VALUES (${n})`;
    throw new Error(`refused ${n}`);
  }
  /** SQLite rolls the whole transaction back on its own (`INSERT OR ROLLBACK`), and the event fails with it. */
  lose(n: string): never {
    this.sql`INSERT INTO rows (n) VALUES (${n})`;
    this.sql`INSERT OR ROLLBACK INTO u (k) VALUES (1)`;
    throw new Error("unreachable");
  }
  seen(): Value {
    return {
      rows: this.sql<{ n: string }>`SELECT n FROM rows ORDER BY rowid`.map((r) => r.n),
      schedules: this.getSchedules().length,
      err: this.state.err,
      refused: this.refused,
    };
  }
  override onError(error: unknown, ctx: { event: string }): void {
    const steps: Array<[string, () => void]> = [
      ["sql", () => this.sql`INSERT INTO rows (n) VALUES (${`onError:${ctx.event}`})`],
      ["schedule", () => this.schedule(3600, "seen")],
      ["state", () => this.setState({ err: (error as Error).message })],
    ];
    for (const [what, step] of steps) {
      try {
        step();
      } catch (err) {
        this.refused.push(`${what}: ${(err as Error).message}`);
      }
    }
  }
}

/** Keeps its instance, so a test can change its state outside any event as a timer callback of the agent would. */
class Outside extends Agent<{ n: number }> {
  static last: Outside | null = null;
  static override callable = ["n"];
  override initialState = { n: 0 };
  override onStart(): void {
    Outside.last = this;
  }
  n(): number {
    return this.state.n;
  }
}

/** Calls delivered in one turn, so they run as one batch. */
function batch(rt: AgentRuntime, calls: Array<[string, string]>) {
  return Promise.all(calls.map(([m, n]) => rt.call("a", m, [n])));
}

describe("savepoints of a group commit", () => {
  const t = tempDir();
  after(() => t.remove());
  let seed = 0;
  async function withRows(name: string, fn: (rt: AgentRuntime) => Promise<void>): Promise<void> {
    const rt = testRuntime(path.join(t.dir, name), Rows, ++seed);
    try {
      assert.deepEqual(await rt.call("a", "rows", []), { ok: true, value: [] });
      await fn(rt);
    } finally {
      await rt.shutdown();
    }
  }

  test("four queued writing events run BEGIN, the first write, then a savepoint and a write each, and one COMMIT", async () => {
    await withRows("sequence", async (rt) => {
      const s = statementSpy();
      try {
        s.spy.on = true;
        const results = await batch(rt, [
          ["write", "1"],
          ["write", "2"],
          ["write", "3"],
          ["write", "4"],
        ]);
        s.spy.on = false;
        assert.deepEqual(
          results.map((r) => r.ok),
          [true, true, true, true],
        );
        const insert = "INSERT INTO rows (n) VALUES (?)";
        assert.deepEqual(s.spy.executed, [
          "BEGIN",
          insert,
          "SAVEPOINT ev",
          insert,
          "SAVEPOINT ev",
          insert,
          "SAVEPOINT ev",
          insert,
          "COMMIT",
        ]);
      } finally {
        s.restore();
      }
      assert.deepEqual(await rt.call("a", "rows", []), { ok: true, value: ["1", "2", "3", "4"] });
    });
  });

  test("past eight nested savepoints, each later event's savepoint is released when it ends", async () => {
    await withRows("deep", async (rt) => {
      const s = statementSpy();
      let results: Awaited<ReturnType<typeof batch>>;
      try {
        s.spy.on = true;
        const calls: Array<[string, string]> = [];
        for (let i = 1; i <= 12; i++) calls.push([i === 11 ? "writeThenThrow" : "write", String(i)]);
        results = await batch(rt, calls);
        s.spy.on = false;
        const insert = "INSERT INTO rows (n) VALUES (?)";
        const nested = Array.from({ length: 8 }, () => ["SAVEPOINT ev", insert]).flat();
        assert.deepEqual(s.spy.executed, [
          "BEGIN",
          insert,
          ...nested,
          ...["SAVEPOINT ev", insert, "RELEASE ev"],
          ...["SAVEPOINT ev", insert, "ROLLBACK TO ev", "RELEASE ev"],
          ...["SAVEPOINT ev", insert, "RELEASE ev"],
          "COMMIT",
        ]);
      } finally {
        s.restore();
      }
      assert.deepEqual(
        results.map((r) => r.ok),
        [true, true, true, true, true, true, true, true, true, true, false, true],
      );
      assert.deepEqual(await rt.call("a", "rows", []), {
        ok: true,
        value: ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "12"],
      });
    });
  });

  test("the first event of a batch failing after its write rolls back alone, and the events after it commit", async () => {
    await withRows("first-fails", async (rt) => {
      const results = await batch(rt, [
        ["writeThenThrow", "x"],
        ["write", "2"],
        ["write", "3"],
      ]);
      assert.equal(results[0].ok, false);
      assert.deepEqual(
        results.slice(1).map((r) => r.ok),
        [true, true],
      );
      assert.deepEqual(await rt.call("a", "rows", []), { ok: true, value: ["2", "3"] });
    });
  });

  test("a failing event inside nested savepoints rolls back only its own write, first, middle or last", async () => {
    await withRows("nested-fails", async (rt) => {
      const results = await batch(rt, [
        ["write", "1"],
        ["writeThenThrow", "x"],
        ["write", "3"],
        ["writeThenThrow", "y"],
        ["write", "5"],
        ["writeThenThrow", "z"],
      ]);
      assert.deepEqual(
        results.map((r) => r.ok),
        [true, false, true, false, true, false],
      );
      assert.deepEqual(await rt.call("a", "rows", []), { ok: true, value: ["1", "3", "5"] });
    });
  });

  test("an event after events that wrote nothing rolls back the transaction alone: their frames still leave", async () => {
    await withRows("after-frames", async (rt) => {
      const tr = new RecordingTransport();
      await rt.open("a", { id: "c", kind: "mqtt", codec: "cbor", transport: tr });
      const results = await batch(rt, [
        ["send", "f1"],
        ["sendThenThrow", "f2"],
        ["writeThenThrow", "x"],
        ["send", "f3"],
        ["write", "4"],
      ]);
      assert.deepEqual(
        results.map((r) => r.ok),
        [true, false, false, true, true],
      );
      const frames = tr.sent.map((s) => (s.message.frame as { id: string }).id);
      assert.deepEqual(frames, ["f1", "f3"], "a failed event's frame is dropped, the others leave");
      assert.deepEqual(await rt.call("a", "rows", []), { ok: true, value: ["4"] });
    });
  });

  test("onError of an event without a savepoint runs outside the batch's transaction: its schedule and state stand", async () => {
    // The failing event is the first that writes, so it has no savepoint and its transaction is rolled back whole.
    // onError must then run as it does after a one-event batch, outside any transaction: a change it makes through
    // the runtime's own write (setState, schedule) begins and commits its own, and the batch goes on after it.
    for (const [name, calls] of [
      ["alone", [["fail", "x"]]],
      [
        "after-frames",
        [
          ["send", "f1"],
          ["fail", "x"],
          ["write", "3"],
        ],
      ],
    ] as Array<[string, Array<[string, string]>]>) {
      const rt = testRuntime(path.join(t.dir, `onerror-${name}`), Recorder, ++seed);
      try {
        const tr = new RecordingTransport();
        await rt.open("a", { id: "c", kind: "mqtt", codec: "cbor", transport: tr });
        const results = await batch(rt, calls);
        await settle();
        assert.deepEqual(
          results.map((r) => r.ok),
          calls.map(([m]) => m !== "fail"),
          name,
        );
        assert.deepEqual(
          tr.sent.map((s) => (s.message.frame as { id: string }).id),
          calls.filter(([m]) => m === "send").map(([, n]) => n),
          `${name}: the frames of the events that committed leave`,
        );
        assert.deepEqual(await rt.call("a", "seen", []), {
          ok: true,
          value: {
            rows: ["onError:call", ...calls.filter(([m]) => m === "write").map(([, n]) => n)],
            schedules: 1,
            err: "refused x",
            refused: [],
          },
        });
      } finally {
        await rt.shutdown();
      }
    }
  });

  test("onError of an event with a savepoint runs after the batch's commit: its schedule and state stand", async () => {
    // The failing event has a savepoint (the event before it wrote), so the batch's transaction stays open past it.
    // onError is told after the COMMIT, outside any transaction, as after a one-event batch; before, its setState and
    // schedule failed on BEGIN inside the batch's transaction.
    const rt = testRuntime(path.join(t.dir, "onerror-savepoint"), Recorder, ++seed);
    try {
      assert.ok((await rt.call("a", "seen", [])).ok);
      const results = await batch(rt, [
        ["write", "1"],
        ["fail", "x"],
        ["write", "3"],
      ]);
      await settle();
      assert.deepEqual(
        results.map((r) => r.ok),
        [true, false, true],
      );
      assert.deepEqual(await rt.call("a", "seen", []), {
        ok: true,
        value: { rows: ["1", "3", "onError:call"], schedules: 1, err: "refused x", refused: [] },
      });
    } finally {
      await rt.shutdown();
    }
  });

  test("after SQLite lost the transaction of an event without a savepoint, its onError's writes are refused", async () => {
    // docs/errors.md (BRIDGE_ERR_STORAGE): further writes of that event, and of its onError, are refused.
    const rt = testRuntime(path.join(t.dir, "onerror-lost"), Recorder, ++seed);
    try {
      // Woken first, so the start event's writes do not give the failing event a savepoint.
      assert.ok((await rt.call("a", "seen", [])).ok);
      const results = await batch(rt, [["lose", "x"]]);
      await settle();
      assert.equal(results[0].ok, false);
      const seen = await rt.call("a", "seen", []);
      assert.ok(seen.ok, JSON.stringify(seen));
      const value = seen.value as { rows: string[]; refused: string[] };
      assert.deepEqual(value.rows, [], "no row of the lost event, nor of its onError, was stored");
      assert.match(value.refused[0] ?? "", /^sql: the transaction was lost/);
    } finally {
      await rt.shutdown();
    }
  });

  test("a change outside any event whose BEGIN fails leaves no scope behind: the next change commits and broadcasts", async () => {
    const rt = testRuntime(path.join(t.dir, "outside-begin"), Outside, ++seed);
    const fault = failControlOnce((text) => text === "BEGIN");
    try {
      const tr = new RecordingTransport();
      await rt.open("a", { id: "c", kind: "ws", codec: "json", transport: tr });
      const agent = Outside.last!;
      tr.protocol.length = 0;
      assert.throws(() => agent.setState({ n: 1 }), /disk I\/O error/);
      agent.setState({ n: 2 });
      await settle();
      assert.deepEqual(
        tr.protocol.filter((m) => m.type === "state"),
        [{ type: "state", state: { n: 2 } }],
        "the second change was broadcast",
      );
      assert.deepEqual(await rt.call("a", "n", []), { ok: true, value: 2 });
    } finally {
      fault.restore();
      await rt.shutdown();
    }
    // Stored, not only in memory: a new runtime on the same files reads it back.
    const again = testRuntime(path.join(t.dir, "outside-begin"), Outside, ++seed);
    try {
      assert.deepEqual(await again.call("a", "n", []), { ok: true, value: 2 });
    } finally {
      await again.shutdown();
    }
  });
});
