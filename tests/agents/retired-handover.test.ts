import assert from "node:assert/strict";
import path from "node:path";
import { after, describe, test } from "node:test";
import { Agent, type AgentRuntime, type RuntimeOptions } from "../../agents/index.ts";
import { DeviceAgent } from "../../agents/device/index.ts";
import { BridgeError } from "../../errors/index.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { RecordingTransport, tempDir, testRuntime } from "./helpers.ts";

// What an agent instance retired by a callback's time limit (callbackTimeoutMs) hands to the fresh one: the failures
// its onError could not act on, and the state broadcasts it left out (agents/retirement.ts, events/handover.ts).

const TIMEOUT_MS = 1_000;
const TIMEOUT = "BRIDGE_ERR_CALLBACK_TIMEOUT";

const log: string[] = [];
/** What onError was told, and whether it could record it in the agent's database. */
const errors: Array<{ event: string; code: string; recorded: boolean }> = [];

function codeOf(err: unknown): string {
  return err instanceof BridgeError ? err.code : String(err);
}

/** How many of the next starts hang (onStart never settles), and how many of the next wakes fail (constructor). */
let hangingStarts = 0;
let failingWakes = 0;

class Reporter extends Agent<{ n: number }> {
  override initialState = { n: 0 };

  constructor(...args: ConstructorParameters<typeof Agent<{ n: number }>>) {
    if (failingWakes > 0) {
      failingWakes--;
      throw new Error("cannot wake");
    }
    super(...args);
  }

  override onStart(): void | Promise<void> {
    this.sql`CREATE TABLE IF NOT EXISTS reports (event TEXT, code TEXT)`;
    log.push("start");
    if (hangingStarts > 0) {
      hangingStarts--;
      return new Promise(() => {});
    }
  }

  /** A schedule whose callback never settles, with no retry: its timeout goes to onError at once. */
  scheduleHang(): void {
    this.schedule(1, "hang", null, { retry: { maxAttempts: 1 } });
  }

  hang(): Promise<void> {
    log.push("hang");
    return new Promise(() => {});
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
    let recorded = true;
    try {
      this.sql`INSERT INTO reports (event, code) VALUES (${context.event}, ${code})`;
    } catch {
      recorded = false;
    }
    errors.push({ event: context.event, code, recorded });
  }
}

/** A DeviceAgent whose queue flush changes the state, then hangs on its second item. */
class StatefulDevice extends DeviceAgent {
  bumpThenHang(): void {
    this.queue("bump", null);
    this.queue("hang", null, { retry: { maxAttempts: 1 } });
  }

  bump(): void {
    this.setState({ n: Number(this.state.n ?? 0) + 1 });
  }

  hang(): Promise<void> {
    return new Promise(() => {});
  }
}

describe("what a retired agent instance hands to the fresh one", () => {
  const t = tempDir();
  after(() => t.remove());

  let clock: ManualClock;
  async function withRuntime(
    name: string,
    cls: RuntimeOptions["defaultAgentClass"],
    body: (rt: AgentRuntime) => Promise<void>,
    extra: Partial<RuntimeOptions> = {},
  ): Promise<void> {
    log.length = 0;
    errors.length = 0;
    hangingStarts = 0;
    failingWakes = 0;
    clock = new ManualClock();
    const rt = testRuntime(path.join(t.dir, name), cls, 31, { clock, callbackTimeoutMs: TIMEOUT_MS, ...extra });
    await rt.start();
    try {
      await body(rt);
    } finally {
      await rt.shutdown();
    }
  }

  test("onError of a timed-out schedule callback reaches the fresh instance, not the retired one that cannot write", async () => {
    await withRuntime("on-error", Reporter, async (rt) => {
      await rt.call("a", "scheduleHang", []);
      await clock.advance(1_000 + TIMEOUT_MS);
      assert.deepEqual(log, ["start", "hang", "start"]);
      assert.deepEqual(errors, [{ event: "schedule:hang", code: TIMEOUT, recorded: true }]);
      assert.deepEqual(await rt.call("a", "reports", []), {
        ok: true,
        value: [{ event: "schedule:hang", code: TIMEOUT }],
      });
    });
  });

  test("an instance retired in its own start before the handover ran: onError hears both failures, in order, in one handover", async () => {
    const kinds: string[] = [];
    await withRuntime(
      "retired-twice",
      Reporter,
      async (rt) => {
        await rt.call("a", "scheduleHang", []);
        hangingStarts = 1;
        await clock.advance(1_000 + TIMEOUT_MS);
        assert.deepEqual(log, ["start", "hang", "start"], "the fresh instance's onStart hangs");
        await clock.advance(TIMEOUT_MS);
        assert.deepEqual(log, ["start", "hang", "start", "start"]);
        assert.deepEqual(errors, [
          { event: "schedule:hang", code: TIMEOUT, recorded: true },
          { event: "onStart", code: TIMEOUT, recorded: true },
        ]);
        assert.deepEqual(kinds.filter((k) => k === "handover").length, 1, "the handovers were merged, not piled up");
      },
      { observer: { onEvent: (info) => kinds.push(info.kind) } },
    );
  });

  test("a handover whose fresh instance fails to wake is tried again later, not lost", async () => {
    await withRuntime("wake-fails", Reporter, async (rt) => {
      await rt.call("a", "scheduleHang", []);
      failingWakes = 1;
      await clock.advance(1_000 + TIMEOUT_MS);
      assert.equal(failingWakes, 0, "the fresh instance's wake failed");
      assert.deepEqual(errors, []);
      await clock.advance(1_000);
      assert.deepEqual(errors, [{ event: "schedule:hang", code: TIMEOUT, recorded: true }]);
      assert.deepEqual(await rt.call("a", "reports", []), {
        ok: true,
        value: [{ event: "schedule:hang", code: TIMEOUT }],
      });
    });
  });

  test("with a destroy asked while the callback hung, no instance follows: the retired one's onError is told", async () => {
    await withRuntime("destroy", Reporter, async (rt) => {
      await rt.call("a", "scheduleHang", []);
      await clock.advance(1_000);
      const destroyed = rt.destroyAgent("a");
      await clock.advance(TIMEOUT_MS);
      assert.equal(await destroyed, true);
      assert.deepEqual(log, ["start", "hang"]);
      assert.deepEqual(errors, [{ event: "schedule:hang", code: TIMEOUT, recorded: false }]);
    });
  });

  test("a JSON connection that missed the state broadcast of a timed-out event gets the committed state from the fresh instance", async () => {
    await withRuntime("resync", StatefulDevice, async (rt) => {
      const tr = new RecordingTransport();
      // A JSON device gets the runtime's state broadcasts; the retired DeviceAgent cannot vet them (maxFrame).
      await rt.open("d", { id: "c", kind: "mqtt", codec: "json", transport: tr });
      await rt.call("d", "bumpThenHang", []);
      await clock.advance(0);
      await clock.advance(TIMEOUT_MS);
      const states = tr.protocol.filter((m) => m.type === "state");
      assert.deepEqual(states, [{ type: "state", state: { n: 1 } }], "the device ends with the committed state, once");
    });
  });
});
