import assert from "node:assert/strict";
import path from "node:path";
import { after, describe, test } from "node:test";
import { Agent, type AgentRuntime, type RuntimeOptions, type Value } from "../../agents/index.ts";
import { DeviceAgent } from "../../agents/device/index.ts";
import { BridgeError } from "../../errors/index.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { RecordingTransport, settle, tempDir, testRuntime } from "./helpers.ts";

const TIMEOUT_MS = 1_000;

/** A promise the test settles by hand: stands for I/O a callback waits on. */
function gate(): { promise: Promise<void>; open(): void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

const log: string[] = [];
const errors: Array<{ event: string; code: string }> = [];
/** What the late calls of a timed-out callback got: the error code of each, or "ok". */
const late: string[] = [];
let hangGate = gate();
let slowGate = gate();

function codeOf(err: unknown): string {
  return err instanceof BridgeError ? err.code : String(err);
}

class Hanging extends Agent<{ n: number }> {
  override initialState = { n: 0 };

  override onStart(): void {
    this.sql`CREATE TABLE IF NOT EXISTS marks (what TEXT)`;
    log.push("start");
  }

  /** Writes, sends a frame, then waits forever. */
  hang(payload: Value): Promise<void> {
    this.sql`INSERT INTO marks (what) VALUES (${`hang:${String(payload)}`})`;
    for (const conn of this.getConnections()) conn.send({ channel: "error", frame: { code: "X", msg: "from hang" } });
    log.push(`hang:${String(payload)}`);
    return new Promise(() => {});
  }

  /** Waits on the test's gate, and tries to write once it opens: long after its time limit. */
  async hangThenWrite(): Promise<void> {
    const conns = this.getConnections();
    await hangGate.promise;
    const attempts: Array<[string, () => unknown]> = [
      ["sql", () => this.sql`INSERT INTO marks (what) VALUES ('late')`],
      ["setState", () => this.setState({ n: 99 })],
      ["schedule", () => this.schedule(1, "note", "late")],
      ["queue", () => this.queue("note", "late")],
      ["send", () => conns[0]?.send({ channel: "error", frame: { code: "X", msg: "late" } })],
      ["directory", () => this.env.directory.put("late", "k", 1)],
    ];
    for (const [what, attempt] of attempts) {
      try {
        attempt();
        late.push(`${what}:ok`);
      } catch (err) {
        late.push(`${what}:${codeOf(err)}`);
      }
    }
    throw new Error("the late promise fails too, and must not crash the process");
  }

  note(payload: Value): void {
    this.sql`INSERT INTO marks (what) VALUES (${`note:${String(payload)}`})`;
    log.push(`note:${String(payload)}`);
  }

  /** An event that stays open on the test's second gate, then writes: the one a late write could have joined. */
  async slow(): Promise<void> {
    this.sql`INSERT INTO marks (what) VALUES ('slow')`;
    await slowGate.promise;
    this.setState({ n: this.state.n + 1 });
  }

  ping(): string {
    log.push("ping");
    return "pong";
  }

  startWaitingTask(): string {
    return this.startTask("wait", null, async (task) => {
      await new Promise<void>((resolve) => task.signal.addEventListener("abort", () => resolve()));
      log.push(`task aborted: ${codeOf(task.signal.reason)}`);
      return null;
    });
  }

  /** A task that ends when the test opens the gate, then a queue item that never settles. */
  taskThenHang(): void {
    this.startTask("quick", null, async () => {
      await hangGate.promise;
      return "answer";
    });
    this.queue("hang", "after-task", { retry: { maxAttempts: 1 } });
  }

  override onTaskInterrupted(): void {
    log.push("interrupted");
  }

  override onTaskDone(): void {
    log.push("task done");
  }

  count(): number {
    return this.state.n;
  }

  marks(): string[] {
    return this.sql<{ what: string }>`SELECT what FROM marks ORDER BY rowid`.map((r) => r.what);
  }

  scheduleIn(seconds: number, method: string, payload: string, maxAttempts: number): string {
    return this.schedule(seconds, method, payload, {
      retry: { maxAttempts, baseDelayMs: 100, maxDelayMs: 100 },
    }).id;
  }

  enqueue(items: Array<[string, string, number]>): string[] {
    return items.map(([method, payload, maxAttempts]) =>
      this.queue(method, payload, { retry: { maxAttempts, baseDelayMs: 100, maxDelayMs: 100 } }),
    );
  }

  override onError(error: unknown, context: { event: string }): void {
    errors.push({ event: context.event, code: codeOf(error) });
  }
}

/** A DeviceAgent with a runtime state and queue items, one of which may hang. */
class StatefulDevice extends DeviceAgent {
  /** Two queue items flushed in one event: the first changes the state, the second never settles. */
  bumpThenHang(): void {
    this.queue("bump", null);
    this.queue("hang", null, { retry: { maxAttempts: 1 } });
  }

  bump(): void {
    this.setState({ n: Number(this.state.n ?? 0) + 1 });
  }

  hang(): Promise<void> {
    log.push("device hang");
    return new Promise(() => {});
  }

  count(): number {
    return Number(this.state.n ?? 0);
  }

  queued(): number {
    return this.getQueues().length;
  }

  override onError(error: unknown, context: { event: string }): void {
    errors.push({ event: context.event, code: codeOf(error) });
  }
}

function runtime(dir: string, clock: ManualClock, extra: Partial<RuntimeOptions> = {}): AgentRuntime {
  return testRuntime(dir, Hanging, 11, { clock, callbackTimeoutMs: TIMEOUT_MS, ...extra });
}

function reset(): void {
  log.length = 0;
  errors.length = 0;
  late.length = 0;
  hangGate = gate();
  slowGate = gate();
}

describe("callback time limit (callbackTimeoutMs)", () => {
  const t = tempDir();
  after(() => t.remove());

  test("a schedule callback that never settles fails with BRIDGE_ERR_CALLBACK_TIMEOUT, rolls back, and the mailbox moves on", async () => {
    reset();
    const clock = new ManualClock();
    const rt = runtime(path.join(t.dir, "schedule"), clock);
    await rt.start();
    const tr = new RecordingTransport();
    try {
      await rt.open("a", { id: "c", kind: "mqtt", codec: "cbor", transport: tr });
      await rt.call("a", "scheduleIn", [1, "hang", "s", 2]);
      await clock.advance(1_000);
      assert.deepEqual(log, ["start", "hang:s"]);
      // The callback holds the mailbox: a later event waits behind it.
      let answered: Value | undefined;
      const waiting = rt.call("a", "ping", []).then((r) => {
        answered = r.ok ? r.value : `failed: ${r.code}`;
      });
      await settle();
      assert.equal(answered, undefined, "the ping waits behind the hung callback");
      await clock.advance(TIMEOUT_MS);
      await waiting;
      assert.equal(answered, "pong", "the mailbox moved on once the callback timed out");
      assert.deepEqual(errors, [], "the first attempt is retried by its options, not reported yet");
      assert.deepEqual(log, ["start", "hang:s", "start", "ping"], "a fresh instance; the retry waits for its backoff");
      // The retry runs on a fresh instance (onStart again) and hangs again: its last attempt goes to onError.
      await clock.advance(100);
      await clock.advance(TIMEOUT_MS);
      assert.deepEqual(errors, [{ event: "schedule:hang", code: "BRIDGE_ERR_CALLBACK_TIMEOUT" }]);
      assert.equal(log.filter((l) => l === "hang:s").length, 2);
      const marks = await rt.call("a", "marks", []);
      assert.deepEqual(marks, { ok: true, value: [] }, "the timed-out callbacks' writes were rolled back");
      assert.deepEqual(tr.sent, [], "their frames were never sent");
      const left = await rt.call("a", "ping", []);
      assert.deepEqual(left, { ok: true, value: "pong" }, "the agent serves events after its retirement");
    } finally {
      await rt.shutdown();
    }
  });

  test("late calls of a timed-out callback are refused and never land in another event's transaction", async () => {
    reset();
    const clock = new ManualClock();
    const rt = runtime(path.join(t.dir, "late"), clock);
    await rt.start();
    const tr = new RecordingTransport();
    try {
      await rt.open("a", { id: "c", kind: "mqtt", codec: "cbor", transport: tr });
      await rt.call("a", "scheduleIn", [1, "hangThenWrite", "x", 1]);
      await clock.advance(1_000 + TIMEOUT_MS);
      assert.deepEqual(errors, [{ event: "schedule:hangThenWrite", code: "BRIDGE_ERR_CALLBACK_TIMEOUT" }]);
      // Another event is open (its transaction holds a write) when the timed-out promise wakes up and writes.
      const slow = rt.call("a", "slow", []);
      await settle();
      hangGate.open();
      await settle();
      slowGate.open();
      assert.deepEqual(await slow, { ok: true, value: null });
      assert.deepEqual(late, [
        "sql:BRIDGE_ERR_AGENT_RETIRED",
        "setState:BRIDGE_ERR_AGENT_RETIRED",
        "schedule:BRIDGE_ERR_AGENT_RETIRED",
        "queue:BRIDGE_ERR_AGENT_RETIRED",
        "send:BRIDGE_ERR_AGENT_RETIRED",
        "directory:BRIDGE_ERR_AGENT_RETIRED",
      ]);
      assert.deepEqual(await rt.call("a", "marks", []), { ok: true, value: ["slow"] }, "only the open event's write");
      assert.deepEqual(tr.sent, [], "no late frame left");
      assert.deepEqual(await rt.call("a", "count", []), { ok: true, value: 1 }, "the late setState never landed");
      await clock.advance(10_000);
      assert.ok(!log.some((l) => l.startsWith("note:")), "nothing the late promise scheduled or queued ran");
    } finally {
      await rt.shutdown();
    }
  });

  test("a queue item that never settles is retried, then reported, and the items after it still run in order", async () => {
    reset();
    const clock = new ManualClock();
    const rt = runtime(path.join(t.dir, "queue"), clock);
    await rt.start();
    try {
      // In one event: a later event would wait behind the hung item like any other.
      await rt.call("a", "enqueue", [
        [
          ["hang", "q", 2],
          ["note", "after-1", 1],
          ["note", "after-2", 1],
        ],
      ]);
      await clock.advance(0);
      assert.deepEqual(log, ["start", "hang:q"]);
      await clock.advance(TIMEOUT_MS);
      assert.deepEqual(log, ["start", "hang:q", "start", "note:after-1", "note:after-2"]);
      await clock.advance(100);
      await clock.advance(TIMEOUT_MS);
      assert.deepEqual(errors, [{ event: "queue:hang", code: "BRIDGE_ERR_CALLBACK_TIMEOUT" }]);
      assert.deepEqual(await rt.call("a", "marks", []), { ok: true, value: ["note:after-1", "note:after-2"] });
    } finally {
      await rt.shutdown();
    }
  });

  test("events batched behind the timed-out one run on the fresh instance, after its onStart", async () => {
    reset();
    const clock = new ManualClock();
    const rt = runtime(path.join(t.dir, "batched"), clock);
    await rt.start();
    try {
      await rt.call("a", "scheduleIn", [1, "hang", "b", 1]);
      await clock.advance(500);
      // `slow` holds the mailbox while the alarm and a call queue up behind it: they then run as one batch. It settles
      // within its own time limit (an operator call is bounded too).
      const slow = rt.call("a", "slow", []);
      await settle();
      await clock.advance(500);
      const note = rt.call("a", "note", ["batched"]);
      await settle();
      slowGate.open();
      await slow;
      assert.deepEqual(log, ["start", "hang:b"]);
      await clock.advance(TIMEOUT_MS);
      assert.deepEqual(await note, { ok: true, value: null }, "not refused as the retired instance's call");
      assert.deepEqual(log, ["start", "hang:b", "start", "note:batched"]);
      assert.deepEqual(await rt.call("a", "marks", []), { ok: true, value: ["slow", "note:batched"] });
    } finally {
      await rt.shutdown();
    }
  });

  test("a task running when the agent is retired is aborted and reported to the fresh instance as interrupted", async () => {
    reset();
    const clock = new ManualClock();
    const rt = runtime(path.join(t.dir, "task"), clock);
    await rt.start();
    try {
      const started = await rt.call("a", "startWaitingTask", []);
      assert.ok(started.ok);
      await rt.call("a", "scheduleIn", [1, "hang", "t", 1]);
      await clock.advance(1_000 + TIMEOUT_MS);
      assert.deepEqual(log, ["start", "hang:t", "task aborted: BRIDGE_ERR_CALLBACK_TIMEOUT", "start", "interrupted"]);
    } finally {
      await rt.shutdown();
    }
  });

  test("a task that ended while a callback hung reaches the fresh instance with its outcome, not as interrupted", async () => {
    reset();
    const clock = new ManualClock();
    const rt = runtime(path.join(t.dir, "task-ended"), clock);
    await rt.start();
    try {
      await rt.call("a", "taskThenHang", []);
      await clock.advance(0);
      assert.deepEqual(log, ["start", "hang:after-task"]);
      // The task's outcome waits in the mailbox behind the hung item.
      hangGate.open();
      await settle();
      await clock.advance(TIMEOUT_MS);
      assert.deepEqual(log, ["start", "hang:after-task", "start", "task done"]);
    } finally {
      await rt.shutdown();
    }
  });

  test("a destroy asked while a callback hangs goes ahead at its timeout and fails the events waiting behind it", async () => {
    reset();
    const clock = new ManualClock();
    const rt = runtime(path.join(t.dir, "destroy"), clock);
    await rt.start();
    try {
      await rt.call("a", "scheduleIn", [1, "hang", "d", 1]);
      await clock.advance(1_000);
      assert.deepEqual(log, ["start", "hang:d"]);
      // Both wait behind the hung callback; the retired instance must run neither.
      const ping = rt.call("a", "ping", []);
      let destroyed = false;
      const destroy = rt.destroyAgent("a").then(() => {
        destroyed = true;
      });
      await settle();
      assert.equal(destroyed, false, "the destroy waits for the event in progress");
      await clock.advance(TIMEOUT_MS);
      await destroy;
      assert.deepEqual(await ping, { ok: false, code: "BRIDGE_ERR_AGENT_DESTROYED", message: "agent destroyed" });
      assert.deepEqual(log, ["start", "hang:d"], "nothing ran on the retired instance, and no fresh one was woken");
      // The agent is gone: the next call makes a new one, with an empty database.
      assert.deepEqual(await rt.call("a", "marks", []), { ok: true, value: [] });
      assert.deepEqual(log, ["start", "hang:d", "start"]);
    } finally {
      await rt.shutdown();
    }
  });

  test("a state change committed before a DeviceAgent callback timed out still commits with its event", async () => {
    reset();
    const clock = new ManualClock();
    const rt = testRuntime(path.join(t.dir, "device-state"), StatefulDevice, 12, {
      clock,
      callbackTimeoutMs: TIMEOUT_MS,
    });
    await rt.start();
    const tr = new RecordingTransport();
    try {
      // A JSON device gets the runtime's state broadcasts: whether each may go is asked of the (then retired) agent.
      await rt.open("d", { id: "c", kind: "mqtt", codec: "json", transport: tr });
      await rt.call("d", "bumpThenHang", []);
      await clock.advance(0);
      assert.deepEqual(log, ["device hang"]);
      await clock.advance(TIMEOUT_MS);
      // Not a failed queue event (BRIDGE_ERR_AGENT_RETIRED), which would roll back the first item's state and the
      // hung item's spent attempt, and so run both again on the next instance, hanging again, forever.
      assert.deepEqual(errors, [{ event: "queue:hang", code: "BRIDGE_ERR_CALLBACK_TIMEOUT" }]);
      assert.deepEqual(log, ["device hang"], "the item out of attempts did not run again");
      assert.deepEqual(await rt.call("d", "count", []), { ok: true, value: 1 }, "the first item's state committed");
      assert.deepEqual(await rt.call("d", "queued", []), { ok: true, value: 0 }, "both items are done with");
    } finally {
      // A callback still hung (when this fails) holds the shutdown until its own timeout.
      const closed = rt.shutdown();
      await clock.advance(TIMEOUT_MS);
      await closed;
    }
  });

  test("an agent retired while the runtime shuts down leaves memory once: one hibernation, reason retired", async () => {
    reset();
    const clock = new ManualClock();
    const hibernations: string[] = [];
    const rt = runtime(path.join(t.dir, "shutdown"), clock, {
      observer: { onHibernate: (info) => hibernations.push(`${info.agentId}:${info.reason}`) },
    });
    await rt.start();
    await rt.call("a", "scheduleIn", [1, "hang", "s", 1]);
    await rt.call("b", "ping", []);
    await clock.advance(1_000);
    assert.deepEqual(log, ["start", "start", "ping", "hang:s"]);
    // The shutdown waits for the hung callback until its timeout.
    const closed = rt.shutdown();
    await clock.advance(TIMEOUT_MS);
    await closed;
    assert.deepEqual(hibernations.sort(), ["a:retired", "b:shutdown"]);
  });

  test("a shutdown that retires an agent still drains what waited behind its hung callback, on a fresh instance", async () => {
    reset();
    const clock = new ManualClock();
    const dir = path.join(t.dir, "shutdown-drain");
    const rt = runtime(dir, clock);
    await rt.start();
    // A task that keeps running, then one that ends while the item queued after it hangs.
    await rt.call("a", "startWaitingTask", []);
    await rt.call("a", "taskThenHang", []);
    await clock.advance(0);
    assert.deepEqual(log, ["start", "hang:after-task"]);
    // Accepted before the shutdown: a call, then the outcome of the task, both waiting behind the hung item.
    const ping = rt.call("a", "ping", []);
    hangGate.open();
    await settle();
    const closed = rt.shutdown();
    await clock.advance(TIMEOUT_MS);
    await closed;
    assert.deepEqual(await ping, { ok: true, value: "pong" }, "drained, not failed as the runtime shutting down");
    assert.deepEqual(
      log.filter((l) => !l.startsWith("task aborted")),
      ["start", "hang:after-task", "start", "ping", "task done"],
      "the task still running is not reported while the runtime shuts down",
    );

    // The task that ended is done with; the one cut off by the shutdown is reported once, by the next start.
    log.length = 0;
    const next = runtime(dir, clock);
    await next.start();
    try {
      assert.deepEqual(await next.call("a", "ping", []), { ok: true, value: "pong" });
      assert.deepEqual(log, ["start", "interrupted", "ping"]);
    } finally {
      await next.shutdown();
    }
  });

  test("a callback that settles within the limit is untouched, and its timer does not outlive it", async () => {
    reset();
    const clock = new ManualClock();
    const rt = runtime(path.join(t.dir, "in-time"), clock);
    await rt.start();
    try {
      await rt.call("a", "scheduleIn", [1, "note", "quick", 1]);
      await clock.advance(1_000);
      assert.deepEqual(log, ["start", "note:quick"]);
      await clock.advance(TIMEOUT_MS * 2);
      assert.deepEqual(log, ["start", "note:quick"], "no retirement: onStart ran once");
      assert.deepEqual(errors, []);
    } finally {
      await rt.shutdown();
    }
  });

  test("callbackTimeoutMs is validated when the runtime is created", () => {
    for (const bad of [0, -1, 1.5, 2 ** 31, Number.NaN, "60000"]) {
      assert.throws(
        () => runtime(path.join(t.dir, "bad"), new ManualClock(), { callbackTimeoutMs: bad as number }),
        (err: unknown) => err instanceof BridgeError && err.code === "BRIDGE_ERR_INVALID_OPTION",
        `callbackTimeoutMs ${String(bad)}`,
      );
    }
  });
});
