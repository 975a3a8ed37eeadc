import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Aedes } from "aedes";
import type { HookContext } from "../../broker/hooks/context.ts";
import { followEvents } from "../../broker/hooks/events.ts";

describe("aedes errors", () => {
  test("an error event from aedes is logged, and does not throw (with no listener it would end the process)", () => {
    const aedes = new Aedes();
    const logged: string[] = [];
    const logger = {
      error: (_obj: unknown, msg: string) => logged.push(msg),
      info: () => {},
    };
    const ctx = { sender: {}, connections: new Map(), opts: { logger } } as unknown as HookContext;
    followEvents(aedes, ctx);
    try {
      assert.doesNotThrow(() => aedes.emit("error", new Error("will cleanup failed")));
      assert.deepEqual(logged, ["broker error"]);
    } finally {
      aedes.close();
    }
  });
});
