import assert from "node:assert/strict";
import path from "node:path";
import { after, afterEach, beforeEach, describe, test } from "node:test";
import { Agent } from "../../agents/index.ts";
import { ManualClock, settle } from "../support/manual-clock.ts";
import { tempDir, testRuntime } from "./helpers.ts";

// An onError written as an async method (an alert it sends may fail) returns a promise the runtime does not await.
// If that promise rejects, the rejection must stay with the agent (logged), not become an unhandled rejection: the
// bridge exits on one (app/cli/start.ts), so one agent's fault would end every agent's process.

const TIMEOUT_MS = 1_000;

class AsyncOnError extends Agent {
  static told: string[] = [];
  fail(): never {
    throw new Error("planned failure");
  }
  hang(): Promise<void> {
    return new Promise(() => {});
  }
  ok(): string {
    return "ok";
  }
  override async onError(_error: unknown, ctx: { event: string }): Promise<void> {
    AsyncOnError.told.push(ctx.event);
    await Promise.resolve();
    throw new Error(`onError failed for ${ctx.event}`);
  }
}

describe("an async onError that rejects", () => {
  const t = tempDir();
  after(() => t.remove());
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  beforeEach(() => {
    unhandled.length = 0;
    AsyncOnError.told = [];
    process.on("unhandledRejection", onUnhandled);
  });
  afterEach(() => {
    process.off("unhandledRejection", onUnhandled);
  });
  /** onError was told of the failed call, its rejection left no unhandled one, and the agent answers the next call. */
  const toldAndStillServing = async (rt: ReturnType<typeof testRuntime>): Promise<void> => {
    await settle();
    assert.deepEqual(AsyncOnError.told, ["call"]);
    assert.deepEqual(unhandled, []);
    assert.deepEqual(await rt.call("a", "ok", []), { ok: true, value: "ok" });
  };

  test("a failed event's onError: its rejection is no unhandled rejection", async () => {
    const rt = testRuntime(path.join(t.dir, "event"), AsyncOnError, 1);
    try {
      const r = await rt.call("a", "fail", []);
      assert.equal(r.ok, false);
      await toldAndStillServing(rt);
    } finally {
      await rt.shutdown();
    }
  });

  test("the fresh instance's onError told of a timeout in its handover: its rejection is no unhandled rejection", async () => {
    const clock = new ManualClock();
    const rt = testRuntime(path.join(t.dir, "handover"), AsyncOnError, 2, { clock, callbackTimeoutMs: TIMEOUT_MS });
    try {
      const hung = rt.call("a", "hang", []);
      await clock.advance(TIMEOUT_MS);
      const r = await hung;
      assert.equal(r.ok, false);
      await toldAndStillServing(rt);
    } finally {
      await rt.shutdown();
    }
  });
});
