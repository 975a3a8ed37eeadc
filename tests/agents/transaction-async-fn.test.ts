import assert from "node:assert/strict";
import path from "node:path";
import { after, describe, test } from "node:test";
import { Agent } from "../../agents/index.ts";
import { settle, tempDir, testRuntime } from "./helpers.ts";

// transaction() takes a synchronous function and refuses a promise (BRIDGE_ERR_INVALID_OPTION). The async function
// given to it has started all the same, and its promise may reject later: that rejection must be handled (logged), not
// left unhandled, on which the bridge exits (app/cli/start.ts) with every other agent.

class AsyncTransaction extends Agent {
  misuse(): string {
    try {
      this.transaction((async () => {
        await null;
        throw new Error("late failure");
      }) as unknown as () => void);
    } catch (err) {
      return (err as Error).message;
    }
    return "accepted";
  }
}

describe("transaction() given an async function", () => {
  const t = tempDir();
  after(() => t.remove());

  test("the refused function's later rejection is no unhandled rejection", async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    const rt = testRuntime(path.join(t.dir, "a"), AsyncTransaction, 1);
    try {
      assert.deepEqual(await rt.call("a", "misuse", []), {
        ok: true,
        value: "transaction() takes a synchronous function",
      });
      await settle();
      assert.deepEqual(unhandled, []);
    } finally {
      process.off("unhandledRejection", onUnhandled);
      await rt.shutdown();
    }
  });
});
