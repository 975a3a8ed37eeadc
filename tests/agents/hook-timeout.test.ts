import assert from "node:assert/strict";
import path from "node:path";
import { after, describe, test } from "node:test";
import type { CloseReason, InboundMessage } from "../../agents/host.ts";
import {
  Agent,
  type AgentRuntime,
  type Connection,
  type RuntimeOptions,
  type TaskContext,
  type TaskInfo,
  type Value,
} from "../../agents/index.ts";
import { BridgeError } from "../../errors/index.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { RecordingTransport, settle, tempDir, testRuntime } from "./helpers.ts";

// The time limit of every callback the runtime awaits inside an event (callbackTimeoutMs): rpc methods and hooks,
// not only schedules and queue items (callback-timeout.test.ts). Each hook here hangs once when the test names it.

const TIMEOUT_MS = 1_234;
const TIMEOUT = "BRIDGE_ERR_CALLBACK_TIMEOUT";

const log: string[] = [];
/** What onError was told, and whether it could record it in the agent's database. */
const errors: Array<{ event: string; code: string; recorded: boolean }> = [];
/** When onError and ping ran, in order. */
const sequence: string[] = [];
/** Hooks that never settle the next time they run (each hangs once). */
const hangOnce = new Set<string>();
/** The `details.kind` of each timeout onError was told of. */
const timeoutKinds: string[] = [];

function codeOf(err: unknown): string {
  return err instanceof BridgeError ? err.code : String(err);
}

/** A promise that never settles when `hook` is due to hang, else nothing (a synchronous hook). */
function maybeHang(hook: string): void | Promise<void> {
  if (!hangOnce.delete(hook)) return;
  return new Promise(() => {});
}

/** A promise the test settles by hand. */
function gate(): { promise: Promise<void>; open(): void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

let taskGate = gate();
let taskContext: TaskContext | null = null;

class Hooked extends Agent<{ n: number }> {
  static override callable = ["hangingRpc"];
  override initialState = { n: 0 };

  override onStart(): void | Promise<void> {
    this.sql`CREATE TABLE IF NOT EXISTS marks (what TEXT)`;
    this.sql`CREATE TABLE IF NOT EXISTS reports (event TEXT, code TEXT)`;
    log.push("start");
    return maybeHang("onStart");
  }

  /** Writes a row and sends a frame: both must be undone when the hook times out. */
  #leaveTraces(what: string): void {
    this.sql`INSERT INTO marks (what) VALUES (${what})`;
    for (const conn of this.getConnections()) conn.send({ channel: "error", frame: { code: "X", msg: what } });
    log.push(what);
  }

  override onConnect(_conn: Connection): void | Promise<void> {
    this.#leaveTraces("onConnect");
    return maybeHang("onConnect");
  }

  override onMessage(conn: Connection, message: InboundMessage): void | Promise<void> {
    if (message.channel === "rpc") return super.onMessage(conn, message);
    this.#leaveTraces(`onMessage:${message.channel}`);
    return maybeHang("onMessage");
  }

  override onClose(_conn: Connection, reason: CloseReason): void | Promise<void> {
    this.#leaveTraces(`onClose:${reason}`);
    return maybeHang("onClose");
  }

  override onStateChanged(state: { n: number }): void | Promise<void> {
    log.push(`onStateChanged:${state.n}`);
    return maybeHang("onStateChanged");
  }

  override onTaskProgress(_task: TaskInfo, update: Value): void | Promise<void> {
    this.#leaveTraces(`onTaskProgress:${String(update)}`);
    return maybeHang("onTaskProgress");
  }

  override onTaskDone(_task: TaskInfo, result: Value): void | Promise<void> {
    this.#leaveTraces(`onTaskDone:${String(result)}`);
    return maybeHang("onTaskDone");
  }

  override onTaskInterrupted(): void {
    log.push("onTaskInterrupted");
  }

  /** An operator call (runtime.call) that never settles. */
  hangingCall(): Promise<string> {
    this.#leaveTraces("call:hangingCall");
    return new Promise(() => {});
  }

  /** A device rpc (up/rpc through the base onMessage) that never settles. */
  hangingRpc(): Promise<string> {
    this.#leaveTraces("rpc:hangingRpc");
    return new Promise(() => {});
  }

  /** An async call that settles in time. */
  async quickAsync(): Promise<string> {
    await Promise.resolve();
    return "quick";
  }

  ping(): string {
    log.push("ping");
    sequence.push("ping");
    return "pong";
  }

  bump(): void {
    this.setState({ n: this.state.n + 1 });
  }

  count(): number {
    return this.state.n;
  }

  /** A task that reports progress at once, then ends with "answer" when the test opens its gate. */
  startGatedTask(): string {
    return this.startTask("gated", null, async (task) => {
      taskContext = task;
      await taskGate.promise;
      return "answer";
    });
  }

  marks(): string[] {
    return this.sql<{ what: string }>`SELECT what FROM marks ORDER BY rowid`.map((r) => r.what);
  }

  reports(): Array<{ event: string; code: string }> {
    return this.sql<{ event: string; code: string }>`SELECT event, code FROM reports ORDER BY rowid`.map((r) => ({
      event: r.event,
      code: r.code,
    }));
  }

  /** Records the report in its own database: only an instance that can still write manages it. */
  override onError(error: unknown, context: { event: string }): void {
    const code = codeOf(error);
    if (code === TIMEOUT && error instanceof BridgeError) timeoutKinds.push(String(error.details?.kind));
    let recorded = true;
    try {
      this.sql`INSERT INTO reports (event, code) VALUES (${context.event}, ${code})`;
    } catch {
      recorded = false;
    }
    errors.push({ event: context.event, code, recorded });
    sequence.push(`onError:${context.event}`);
  }
}

/** Counts the timers set for the callback time limit (by their delay, which no other timer of these tests uses). */
class CountingClock extends ManualClock {
  limitTimers = 0;

  override setTimeout(fn: () => void, ms: number): unknown {
    if (ms === TIMEOUT_MS) this.limitTimers++;
    return super.setTimeout(fn, ms);
  }
}

/** A promise's result once it settled, read without awaiting it (a hung event must fail the test, not hang it). */
function track<T>(promise: Promise<T>): { result: T | undefined } {
  const box: { result: T | undefined } = { result: undefined };
  void promise.then((r) => {
    box.result = r;
  });
  return box;
}

function deliver(rt: AgentRuntime, agentId: string, message: InboundMessage) {
  const outcome = rt.deliver(agentId, "c", message);
  assert.ok(outcome.accepted);
  return track(outcome.done);
}

function reset(): void {
  log.length = 0;
  errors.length = 0;
  sequence.length = 0;
  timeoutKinds.length = 0;
  hangOnce.clear();
  taskGate = gate();
  taskContext = null;
}

const TELEMETRY = (t: number): InboundMessage => ({ channel: "telemetry", frame: { r: { t } } });

describe("callback time limit for rpc methods and hooks (callbackTimeoutMs)", () => {
  const t = tempDir();
  after(() => t.remove());

  let clock: CountingClock;
  async function withRuntime(
    name: string,
    body: (rt: AgentRuntime) => Promise<void>,
    cls: RuntimeOptions["defaultAgentClass"] = Hooked,
  ): Promise<void> {
    reset();
    clock = new CountingClock();
    const rt = testRuntime(path.join(t.dir, name), cls, 21, { clock, callbackTimeoutMs: TIMEOUT_MS });
    await rt.start();
    try {
      await body(rt);
    } finally {
      // A hook still hung (when the test fails) holds the shutdown until its time limit.
      const closed = rt.shutdown();
      await clock.advance(TIMEOUT_MS);
      await closed;
    }
  }

  async function open(rt: AgentRuntime, tr: RecordingTransport, codec: "cbor" | "json" = "cbor"): Promise<void> {
    assert.deepEqual(await rt.open("a", { id: "c", kind: "mqtt", codec, transport: tr }), { status: "committed" });
  }

  test("an operator call whose method never settles fails with BRIDGE_ERR_CALLBACK_TIMEOUT and the mailbox moves on", async () => {
    await withRuntime("call", async (rt) => {
      const tr = new RecordingTransport();
      await open(rt, tr);
      const hung = track(rt.call("a", "hangingCall", []));
      await settle();
      const ping = track(rt.call("a", "ping", []));
      await settle();
      assert.equal(ping.result, undefined, "the ping waits behind the hung call");
      await clock.advance(TIMEOUT_MS);
      assert.equal(hung.result?.ok, false);
      assert.equal(hung.result?.ok === false && hung.result.code, TIMEOUT);
      assert.deepEqual(ping.result, { ok: true, value: "pong" });
      assert.deepEqual(log, ["start", "onConnect", "call:hangingCall", "start", "ping"], "on a fresh instance");
      assert.deepEqual(await rt.call("a", "marks", []), { ok: true, value: ["onConnect"] }, "its write rolled back");
      assert.deepEqual(
        tr.sent.map((s) => s.message.frame),
        [{ code: "X", msg: "onConnect" }],
        "its frame was never sent",
      );
      assert.deepEqual(timeoutKinds, ["call"]);
    });
  });

  test("an onMessage that never settles fails its message, and the device's next message runs on a fresh instance", async () => {
    await withRuntime("message", async (rt) => {
      const tr = new RecordingTransport();
      await open(rt, tr);
      hangOnce.add("onMessage");
      const first = deliver(rt, "a", TELEMETRY(1));
      await settle();
      const second = deliver(rt, "a", TELEMETRY(2));
      await settle();
      assert.equal(second.result, undefined, "the next message waits behind the hung one");
      await clock.advance(TIMEOUT_MS);
      assert.equal(first.result?.status === "failed" && first.result.code, TIMEOUT);
      assert.deepEqual(second.result, { status: "committed" });
      assert.deepEqual(log, ["start", "onConnect", "onMessage:telemetry", "start", "onMessage:telemetry"]);
      assert.deepEqual(await rt.call("a", "marks", []), {
        ok: true,
        value: ["onConnect", "onMessage:telemetry"],
      });
      assert.equal(tr.sent.length, 2, "the hung message's frame was dropped");
      assert.deepEqual(timeoutKinds, ["onMessage"]);
    });
  });

  test("a device rpc whose method never settles fails its message with BRIDGE_ERR_CALLBACK_TIMEOUT", async () => {
    await withRuntime("device-rpc", async (rt) => {
      const tr = new RecordingTransport();
      await open(rt, tr);
      const rpc = deliver(rt, "a", { channel: "rpc", frame: { id: "r1", m: "hangingRpc" } });
      await settle();
      const ping = track(rt.call("a", "ping", []));
      await clock.advance(TIMEOUT_MS);
      assert.equal(rpc.result?.status === "failed" && rpc.result.code, TIMEOUT);
      assert.deepEqual(ping.result, { ok: true, value: "pong" });
      assert.deepEqual(await rt.call("a", "marks", []), { ok: true, value: ["onConnect"] });
    });
  });

  test("an onConnect that never settles fails the open, and the agent serves the next event on a fresh instance", async () => {
    await withRuntime("connect", async (rt) => {
      const tr = new RecordingTransport();
      hangOnce.add("onConnect");
      const opened = track(rt.open("a", { id: "c", kind: "mqtt", codec: "cbor", transport: tr }));
      await settle();
      const ping = track(rt.call("a", "ping", []));
      await settle();
      assert.equal(ping.result, undefined);
      await clock.advance(TIMEOUT_MS);
      assert.equal(opened.result?.status === "failed" && opened.result.code, TIMEOUT);
      assert.deepEqual(ping.result, { ok: true, value: "pong" });
      assert.deepEqual(log, ["start", "onConnect", "start", "ping"], "onClose never ran: the connection never opened");
      assert.deepEqual(tr.sent, []);
      assert.deepEqual(await rt.call("a", "marks", []), { ok: true, value: [] });
      assert.deepEqual(timeoutKinds, ["onConnect"]);
    });
  });

  test("an onClose that never settles is failed like a throw: the close still happens, once", async () => {
    await withRuntime("close", async (rt) => {
      const tr = new RecordingTransport();
      await open(rt, tr);
      hangOnce.add("onClose");
      const closed = track(rt.close("a", "c", "disconnect"));
      await settle();
      const ping = track(rt.call("a", "ping", []));
      await settle();
      assert.equal(ping.result, undefined);
      await clock.advance(TIMEOUT_MS);
      // A throwing onClose does not keep the connection open either: its row goes, so the fresh instance does not
      // close it again as a connection of a previous process (with reason "shutdown").
      assert.deepEqual(closed.result, { status: "committed" });
      assert.deepEqual(ping.result, { ok: true, value: "pong" });
      assert.deepEqual(log, ["start", "onConnect", "onClose:disconnect", "start", "ping"]);
      assert.deepEqual(await rt.call("a", "marks", []), { ok: true, value: ["onConnect"] }, "its write rolled back");
      assert.deepEqual(errors, [{ event: "onClose", code: TIMEOUT, recorded: true }]);
      assert.deepEqual(timeoutKinds, ["onClose"]);
    });
  });

  test("an onTaskDone that never settles is reported, the task is done with, and the mailbox moves on", async () => {
    await withRuntime("task-done", async (rt) => {
      await rt.call("a", "startGatedTask", []);
      hangOnce.add("onTaskDone");
      taskGate.open();
      await settle();
      assert.deepEqual(log, ["start", "onTaskDone:answer"]);
      const ping = track(rt.call("a", "ping", []));
      await settle();
      assert.equal(ping.result, undefined);
      await clock.advance(TIMEOUT_MS);
      assert.deepEqual(ping.result, { ok: true, value: "pong" });
      assert.deepEqual(log, ["start", "onTaskDone:answer", "start", "ping"], "not reported again as interrupted");
      assert.deepEqual(errors, [{ event: "onTaskDone", code: TIMEOUT, recorded: true }]);
      assert.deepEqual(await rt.call("a", "marks", []), { ok: true, value: [] });
      assert.deepEqual(timeoutKinds, ["onTaskDone"]);
    });
  });

  test("an onTaskProgress that never settles fails its event; the task, cut off, reaches the fresh instance as interrupted", async () => {
    await withRuntime("task-progress", async (rt) => {
      await rt.call("a", "startGatedTask", []);
      await settle();
      hangOnce.add("onTaskProgress");
      taskContext?.progress("p1");
      await settle();
      const ping = track(rt.call("a", "ping", []));
      await settle();
      assert.equal(ping.result, undefined);
      await clock.advance(TIMEOUT_MS);
      assert.deepEqual(ping.result, { ok: true, value: "pong" });
      assert.deepEqual(log, ["start", "onTaskProgress:p1", "start", "onTaskInterrupted", "ping"]);
      assert.deepEqual(errors, [{ event: "task-progress", code: TIMEOUT, recorded: true }]);
      assert.deepEqual(timeoutKinds, ["onTaskProgress"]);
    });
  });

  test("an onStart that never settles retires its instance; the events that waited run on the next one", async () => {
    await withRuntime("start", async (rt) => {
      hangOnce.add("onStart");
      const ping = track(rt.call("a", "ping", []));
      await settle();
      assert.equal(ping.result, undefined);
      await clock.advance(TIMEOUT_MS);
      assert.deepEqual(ping.result, { ok: true, value: "pong" });
      assert.deepEqual(log, ["start", "start", "ping"]);
      assert.deepEqual(errors, [{ event: "onStart", code: TIMEOUT, recorded: true }]);
      assert.deepEqual(timeoutKinds, ["onStart"]);
    });
  });

  test("an onStateChanged that never settles is failed like a throw: the state and its broadcast still commit", async () => {
    await withRuntime("state-changed", async (rt) => {
      const tr = new RecordingTransport();
      await open(rt, tr, "json");
      hangOnce.add("onStateChanged");
      const bumped = track(rt.call("a", "bump", []));
      await settle();
      const ping = track(rt.call("a", "ping", []));
      await clock.advance(TIMEOUT_MS);
      assert.deepEqual(bumped.result, { ok: true, value: null });
      assert.deepEqual(ping.result, { ok: true, value: "pong" });
      assert.deepEqual(await rt.call("a", "count", []), { ok: true, value: 1 });
      assert.deepEqual(tr.protocol.at(-1), { type: "state", state: { n: 1 } });
      assert.deepEqual(errors, [{ event: "onStateChanged", code: TIMEOUT, recorded: true }]);
      assert.deepEqual(timeoutKinds, ["onStateChanged"]);
    });
  });

  test("a destroy asked while onMessage hangs completes at the time limit", async () => {
    await withRuntime("destroy", async (rt) => {
      const tr = new RecordingTransport();
      await open(rt, tr);
      hangOnce.add("onMessage");
      const hung = deliver(rt, "a", TELEMETRY(1));
      await settle();
      const destroyed = track(rt.destroyAgent("a"));
      await settle();
      assert.equal(destroyed.result, undefined, "the destroy waits for the event in progress");
      await clock.advance(TIMEOUT_MS);
      assert.equal(destroyed.result, true);
      assert.equal(hung.result?.status === "failed" && hung.result.code, TIMEOUT);
      assert.deepEqual(log, ["start", "onConnect", "onMessage:telemetry"], "no fresh instance for a destroyed agent");
    });
  });

  test("onError of a timeout reaches the fresh instance, which can write, before the events that waited", async () => {
    await withRuntime("on-error", async (rt) => {
      const tr = new RecordingTransport();
      await open(rt, tr);
      hangOnce.add("onMessage");
      deliver(rt, "a", TELEMETRY(1));
      await settle();
      const ping = track(rt.call("a", "ping", []));
      await clock.advance(TIMEOUT_MS);
      assert.deepEqual(ping.result, { ok: true, value: "pong" });
      assert.deepEqual(errors, [{ event: "message", code: TIMEOUT, recorded: true }]);
      assert.deepEqual(sequence, ["onError:message", "ping"]);
      assert.deepEqual(await rt.call("a", "reports", []), { ok: true, value: [{ event: "message", code: TIMEOUT }] });
    });
  });

  test("synchronous events set no time-limit timer, and an async callback that settles in time clears its own", async () => {
    await withRuntime("sync", async (rt) => {
      const tr = new RecordingTransport();
      await open(rt, tr);
      const before = clock.limitTimers;
      assert.deepEqual(await rt.call("a", "ping", []), { ok: true, value: "pong" });
      assert.deepEqual(deliverNow(rt, TELEMETRY(1)), undefined);
      await settle();
      assert.deepEqual(await rt.close("a", "c", "disconnect"), { status: "committed" });
      assert.equal(clock.limitTimers, before, "no timer for synchronous hooks and methods");
      const pending = clock.pending;
      assert.deepEqual(await rt.call("a", "quickAsync", []), { ok: true, value: "quick" });
      assert.equal(clock.limitTimers, before + 1, "an async method is bounded");
      assert.equal(clock.pending, pending, "and its timer is cleared once it settled");
      await clock.advance(TIMEOUT_MS * 2);
      assert.deepEqual(log.filter((l) => l === "start").length, 1, "nothing was retired");
    });
  });
});

/** Delivers without waiting for the outcome (undefined: accepted). */
function deliverNow(rt: AgentRuntime, message: InboundMessage): undefined | string {
  const outcome = rt.deliver("a", "c", message);
  return outcome.accepted ? undefined : outcome.reason;
}
