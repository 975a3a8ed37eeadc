/**
 * A destroy finishes after the batch that was running when it was asked, not once the mailbox is empty: events that
 * arrive meanwhile fail with "agent destroyed" instead of running on (and being acknowledged by) an agent whose data
 * is about to go, and a device that keeps sending cannot hold the destroy off.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, test } from "node:test";
import { Agent } from "../../agents/index.ts";
import { capturingLogger } from "../support/capturing-logger.ts";
import { settle, tempDir, testRuntime } from "./helpers.ts";

const t = tempDir();
after(() => t.remove());

let release: (() => void) | undefined;
const ran: string[] = [];

class Busy extends Agent {
  async slow(): Promise<string> {
    ran.push("slow");
    await new Promise<void>((resolve) => {
      release = resolve;
    });
    return "slow done";
  }
  /** Queues an item and asks for its own destroy in the same event: the flush its commit asks for never runs. */
  queueThenDestroy(): void {
    this.queue("note", 9);
    void this.destroy();
  }
  note(n: number): number {
    ran.push(`note ${n}`);
    this.sql`CREATE TABLE IF NOT EXISTS notes (n INTEGER)`;
    this.sql`INSERT INTO notes (n) VALUES (${n})`;
    return n;
  }
}

test("a destroy asked while an event runs ends the agent after that event; what waits fails, however much", async () => {
  const dataDir = path.join(t.dir, "busy");
  const rt = testRuntime(dataDir, Busy, 1);
  try {
    await rt.call("b", "note", [0]);
    const first = rt.call("b", "slow", []);
    await settle();
    const waiting = [rt.call("b", "note", [1]), rt.call("b", "note", [2])];
    let destroyed = false;
    const destroy = rt.destroyAgent("b").then((removed) => {
      destroyed = true;
      return removed;
    });
    // More arrive while the destroy waits for the running event, as from a device that keeps sending.
    waiting.push(rt.call("b", "note", [3]));
    await settle();
    assert.equal(destroyed, false, "the running event is not cut short");
    release?.();
    assert.deepEqual(await first, { ok: true, value: "slow done" });
    assert.equal(await destroy, true);
    for (const result of await Promise.all(waiting)) {
      assert.deepEqual(result, { ok: false, code: "BRIDGE_ERR_AGENT_DESTROYED", message: "agent destroyed" });
    }
    assert.deepEqual(ran, ["note 0", "slow"], "nothing ran after the destroy was asked but the event already running");
    assert.equal(fs.existsSync(path.join(dataDir, "agents", "b.db")), false);
  } finally {
    await rt.shutdown();
  }
});

test("the queue flush a destroyed agent's last event asked for is not set again as a failure", async () => {
  const { logger, lines } = capturingLogger<{ msg?: string; agent?: string }>("warn");
  const dataDir = path.join(t.dir, "queue-destroy");
  const rt = testRuntime(dataDir, Busy, 2, { logger });
  try {
    ran.length = 0;
    await rt.call("d", "queueThenDestroy", []);
    await settle();
    assert.equal(fs.existsSync(path.join(dataDir, "agents", "d.db")), false, "the agent was destroyed");
    assert.deepEqual(ran, [], "the queued item never ran");
    const retried = lines.filter((l) => l.agent === "d" && /set again/.test(l.msg ?? ""));
    assert.deepEqual(retried, [], "a destroyed agent's dropped flush is not a failure to retry");
  } finally {
    await rt.shutdown();
  }
});
