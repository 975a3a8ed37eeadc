import assert from "node:assert/strict";
import path from "node:path";
import { after, describe, test } from "node:test";
import { Agent, type AgentRuntime, type RuntimeObserver, type RuntimeOptions } from "../../agents/index.ts";
import { DIRECTORY_RETRY_FIRST_MS, DIRECTORY_RETRY_MAX_MS } from "../../agents/directory-index.ts";
import { OBSERVER_THROW_LOG_INTERVAL_MS } from "../../agents/guarded-observer.ts";
import { BridgeError } from "../../errors/index.ts";
import { capturingLogger } from "../support/capturing-logger.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { RecordingTransport, settle, tempDir, testRuntime } from "./helpers.ts";
import { directoryWriteFault } from "./runtime-db-fault.ts";

// A RuntimeObserver is the embedder's metrics: whatever one of its hooks throws, it never changes what an agent does
// (its wake, its events' outcomes, its retirement's handover, eviction, a destroy, the shutdown, the retry of a refused
// directory index write); the throw is logged, once per hook per OBSERVER_THROW_LOG_INTERVAL_MS
// (agents/guarded-observer.ts).

const TIMEOUT_MS = 1_000;
const TIMEOUT = "BRIDGE_ERR_CALLBACK_TIMEOUT";

let starts = 0;
const errors: Array<{ event: string; code: string }> = [];
let releaseHold: () => void = () => {};

class Meter extends Agent {
  override onStart(): void {
    starts++;
    this.sql`CREATE TABLE IF NOT EXISTS notes (n TEXT)`;
  }
  note(n: string): void {
    this.sql`INSERT INTO notes (n) VALUES (${n})`;
  }
  list(key: string): void {
    this.env.directory.put("note", key, 1);
  }
  notes(): string[] {
    return this.sql<{ n: string }>`SELECT n FROM notes ORDER BY rowid`.map((r) => r.n);
  }
  async hold(): Promise<void> {
    await new Promise<void>((resolve) => {
      releaseHold = resolve;
    });
  }
  /** A schedule whose callback never settles, with no retry: its timeout retires the instance. */
  scheduleHang(): void {
    this.schedule(1, "hang", null, { retry: { maxAttempts: 1 } });
  }
  hang(): Promise<void> {
    return new Promise(() => {});
  }
  override onError(error: unknown, context: { event: string }): void {
    errors.push({ event: context.event, code: error instanceof BridgeError ? error.code : String(error) });
  }
}

function broken(): never {
  throw new Error("metrics broke");
}

describe("an observer hook that throws", () => {
  const t = tempDir();
  after(() => t.remove());

  let clock: ManualClock;
  async function withRuntime(
    name: string,
    observer: RuntimeObserver,
    body: (rt: AgentRuntime) => Promise<void>,
    extra: Partial<RuntimeOptions> = {},
  ): Promise<void> {
    starts = 0;
    errors.length = 0;
    clock = new ManualClock();
    const rt = testRuntime(path.join(t.dir, name), Meter, 41, { clock, observer, ...extra });
    await rt.start();
    try {
      await body(rt);
    } finally {
      await rt.shutdown();
    }
  }

  test("onWake: the agent is awake and started, and its events run", async () => {
    await withRuntime("on-wake", { onWake: broken }, async (rt) => {
      assert.deepEqual(await rt.call("a", "note", ["n1"]), { ok: true, value: null });
      assert.equal(starts, 1, "onStart ran once, before the event");
      assert.deepEqual(await rt.call("a", "notes", []), { ok: true, value: ["n1"] });
    });
  });

  test("onEvent: every event keeps its own outcome and its writes", async () => {
    await withRuntime("on-event", { onEvent: broken }, async (rt) => {
      assert.deepEqual(await rt.call("a", "note", ["n1"]), { ok: true, value: null });
      assert.deepEqual(await rt.call("a", "note", ["n2"]), { ok: true, value: null });
      assert.deepEqual(await rt.call("a", "notes", []), { ok: true, value: ["n1", "n2"] });
    });
  });

  test("onHibernate as a timed-out instance retires: the fresh instance still takes the handover", async () => {
    await withRuntime(
      "on-hibernate-retired",
      { onHibernate: broken },
      async (rt) => {
        await rt.call("a", "scheduleHang", []);
        await clock.advance(1_000 + TIMEOUT_MS);
        assert.equal(starts, 2, "a fresh instance started at once");
        assert.deepEqual(errors, [{ event: "schedule:hang", code: TIMEOUT }], "and its onError heard of the timeout");
      },
      { callbackTimeoutMs: TIMEOUT_MS },
    );
  });

  test("onHibernate as idle agents leave memory: every one of them leaves, and the throw stays out of the timer", async () => {
    await withRuntime(
      "on-hibernate-idle",
      { onHibernate: broken },
      async (rt) => {
        await rt.call("a", "note", ["n1"]);
        await rt.call("b", "note", ["n1"]);
        assert.equal(rt.stats().active, 2);
        await clock.advance(2_000);
        assert.equal(rt.stats().active, 0, "both idle agents hibernated");
      },
      { idleTimeoutMs: 1_000 },
    );
  });

  test("onHibernate in a destroy: the destroy resolves true", async () => {
    await withRuntime("on-hibernate-destroy", { onHibernate: broken }, async (rt) => {
      await rt.call("a", "note", ["n1"]);
      assert.equal(await rt.destroyAgent("a"), true);
      assert.equal(await rt.destroyAgent("a"), false, "the agent is gone");
    });
  });

  test("onHibernate in a shutdown: the shutdown finishes and closes the runtime database", async () => {
    const dataDir = path.join(t.dir, "on-hibernate-shutdown");
    const rt = testRuntime(dataDir, Meter, 42, { observer: { onHibernate: broken } });
    await rt.start();
    await rt.call("a", "note", ["n1"]);
    await rt.call("b", "note", ["n1"]);
    await rt.shutdown();
    // The runtime database is opened in EXCLUSIVE locking mode: a runtime on the same folder opens it only once the
    // first one closed it.
    const again = testRuntime(dataDir, Meter, 43);
    try {
      await again.start();
      assert.deepEqual(await again.call("a", "notes", []), { ok: true, value: ["n1"] });
    } finally {
      await again.shutdown();
    }
  });

  test("onMailboxFull: the device is still told the mailbox is full", async () => {
    await withRuntime(
      "on-mailbox-full",
      { onMailboxFull: broken },
      async (rt) => {
        const tr = new RecordingTransport();
        await rt.open("a", { id: "c", kind: "mqtt", codec: "json", transport: tr });
        const hold = rt.call("a", "hold", []);
        await settle();
        const first = rt.deliver("a", "c", { channel: "telemetry", frame: { r: { t: 1 } } });
        assert.equal(first.accepted, true);
        const second = rt.deliver("a", "c", { channel: "telemetry", frame: { r: { t: 2 } } });
        assert.equal(second.accepted, false, "refused, not thrown");
        releaseHold();
        await hold;
        if (first.accepted) await first.done;
      },
      { mailboxCapacity: 1 },
    );
  });

  test("onDirectoryWriteRefused, onDirectoryWaitEnded: a refused directory index write is written again", async () => {
    const fault = directoryWriteFault();
    const { logger, lines } = capturingLogger<{ hook?: string }>("warn");
    try {
      const observer = { onDirectoryWriteRefused: broken, onDirectoryWaitEnded: broken };
      await withRuntime(
        "on-directory",
        observer,
        async (rt) => {
          await rt.call("a", "notes", []);
          fault.failing = true;
          assert.deepEqual(await rt.call("a", "list", ["k"]), { ok: true, value: null });
          fault.failing = false;
          await clock.advance(DIRECTORY_RETRY_FIRST_MS);
          assert.deepEqual(rt.directory.list("note"), [{ agentId: "a", key: "k", value: 1 }]);
          fault.attempts = 0;
          await clock.advance(DIRECTORY_RETRY_MAX_MS);
          assert.equal(fault.attempts, 0, "the retries stopped once the entries landed");
          const threw = lines.map((l) => l.hook).filter((h) => h?.startsWith("onDirectory"));
          assert.deepEqual(threw, ["onDirectoryWriteRefused", "onDirectoryWaitEnded"], "both were called, and threw");
        },
        { logger },
      );
    } finally {
      fault.restore();
    }
  });

  test("a hook that keeps throwing is logged once per interval, with the count of throws left out of the log", async () => {
    const { logger, lines } = capturingLogger<{ msg?: string; hook?: string; unlogged?: number }>("warn");
    await withRuntime(
      "log-once",
      { onEvent: broken },
      async (rt) => {
        for (let i = 0; i < 3; i++) await rt.call("a", "notes", []);
        const logged = () => lines.filter((l) => l.hook === "onEvent");
        assert.equal(logged().length, 1, "the first throw is logged, the next ones are counted");
        assert.equal(logged()[0].msg, "observer hook threw");
        await clock.advance(OBSERVER_THROW_LOG_INTERVAL_MS);
        await rt.call("a", "notes", []);
        assert.equal(logged().length, 2, "once the interval is over, the next throw is logged");
        assert.ok((logged()[1].unlogged ?? 0) >= 2, "with how many throws were not logged since the last line");
      },
      { logger },
    );
  });
});
