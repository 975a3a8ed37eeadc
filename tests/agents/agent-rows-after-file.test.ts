/**
 * start() drops the runtime.db rows of an agent whose database file is missing (runtime-start.ts). That is safe only if
 * an agent never has a row in runtime.db before its file exists: otherwise a crash between the two writes of a
 * brand-new agent (its first schedule's alarm written ahead, its file not yet made) would lose the alarm at the next
 * start. The file comes first: a wake opens (creates) the database before any event of the agent runs, and every row
 * is written by an event. Checked here at each runtime.db write of brand-new agents' first schedule, queue item, task
 * and directory entry.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, describe, test } from "node:test";
import { Agent, type Value } from "../../agents/index.ts";
import { RuntimeDb } from "../../agents/runtime-db.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { tempDir, testRuntime } from "./helpers.ts";

class Fresh extends Agent {
  later(): void {
    this.schedule(60, "noop", null);
  }
  enqueue(): void {
    this.queue("noop", null);
  }
  background(): void {
    this.startTask("t", null, () => new Promise<Value>(() => {}));
  }
  list(): void {
    this.env.directory.put("fleet", this.id, 1);
  }
  noop(): void {}
}

/** Every runtime.db write for an agent, with whether the agent's database file existed at that moment. */
function spyOnRowWrites(agentsDir: string) {
  const writes: Array<{ write: string; agentId: string; fileExisted: boolean }> = [];
  const methods = ["setAlarm", "setPending", "directoryPut"] as const;
  const originals = methods.map((m) => RuntimeDb.prototype[m]);
  for (const m of methods) {
    const original = RuntimeDb.prototype[m] as (this: RuntimeDb, agentId: string, ...rest: unknown[]) => void;
    (RuntimeDb.prototype[m] as unknown) = function (this: RuntimeDb, agentId: string, ...rest: unknown[]): void {
      writes.push({ write: m, agentId, fileExisted: fs.existsSync(path.join(agentsDir, `${agentId}.db`)) });
      original.call(this, agentId, ...rest);
    };
  }
  return {
    writes,
    restore(): void {
      methods.forEach((m, i) => {
        (RuntimeDb.prototype[m] as unknown) = originals[i];
      });
    },
  };
}

describe("a brand-new agent's database file exists before any of its runtime.db rows", () => {
  const t = tempDir();
  after(() => t.remove());

  test("its first schedule, queue item, task and directory entry are written after its file is made", async () => {
    const dataDir = path.join(t.dir, "order");
    const spy = spyOnRowWrites(path.join(dataDir, "agents"));
    const rt = testRuntime(dataDir, Fresh, 1, { clock: new ManualClock() });
    try {
      await rt.start();
      for (const [id, method] of [
        ["s", "later"],
        ["q", "enqueue"],
        ["t", "background"],
        ["d", "list"],
      ]) {
        assert.equal((await rt.call(id, method, [])).ok, true, method);
      }
    } finally {
      await rt.shutdown();
      spy.restore();
    }
    const kinds = new Set(spy.writes.map((w) => w.write));
    assert.deepEqual([...kinds].sort(), ["directoryPut", "setAlarm", "setPending"], "each kind of row was written");
    assert.deepEqual(
      spy.writes.filter((w) => !w.fileExisted),
      [],
      "no row was written while the agent's file did not exist",
    );
  });
});
