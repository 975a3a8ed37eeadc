import assert from "node:assert/strict";
import path from "node:path";
import { after, describe, test } from "node:test";
import { Agent } from "../../agents/index.ts";
import { AgentCell } from "../../agents/cell.ts";
import type { RuntimeCore } from "../../agents/core.ts";
import type { EventOutcome, QueuedEvent } from "../../agents/events/types.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { settle, silentLogger, tempDir, testRuntime } from "./helpers.ts";

let releaseSlow: (() => void) | null = null;

class Lru extends Agent {
  static override callable = ["slow", "fast"];
  async slow(): Promise<string> {
    await new Promise<void>((r) => {
      releaseSlow = r;
    });
    return "slow-done";
  }
  fast(): string {
    return "fast-done";
  }
}

/** The parts of RuntimeCore a cell touches when it closes; anything else used would throw. */
function stubCore(rerouted: QueuedEvent[], destroyed: string[]): RuntimeCore {
  const clock = new ManualClock();
  return {
    clock,
    logger: silentLogger,
    observer: {},
    reroute: (_id: string, item: QueuedEvent) => rerouted.push(item),
    destroyFiles: (id: string) => destroyed.push(id),
    cellIdle: () => {},
  } as unknown as RuntimeCore;
}

function item(outcomes: EventOutcome[], user = true): QueuedEvent {
  return { event: { kind: "wake" }, user, resolve: (o) => outcomes.push(o) };
}

/** True once `p` settled, after letting callbacks run. */
async function isSettled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(() => {
    done = true;
  });
  await settle();
  return done;
}

describe("closed agent cells never leave an event or a waiting transport behind", () => {
  const t = tempDir();
  after(() => t.remove());

  test("a new agent arriving while every other active agent is busy is answered, not evicted unanswered", async () => {
    // Regression: with maxActiveAgents 1 the new, still idle cell could be evicted before its event ran.
    const rt = testRuntime(path.join(t.dir, "lru"), Lru, 1, { maxActiveAgents: 1 });
    try {
      const p1 = rt.call("a1", "slow", []);
      await settle();
      assert.ok(releaseSlow !== null, "a1 is inside its slow handler");
      const p2 = rt.call("a2", "fast", []);
      assert.ok(await isSettled(p2), "a2 must be answered while a1 is busy");
      assert.deepEqual(await p2, { ok: true, value: "fast-done" });
      releaseSlow();
      assert.deepEqual(await p1, { ok: true, value: "slow-done" });
      assert.deepEqual(await rt.call("a2", "fast", []), { ok: true, value: "fast-done" });
    } finally {
      releaseSlow = null;
      await rt.shutdown();
    }
  });

  test("an event given to a hibernated cell is handed to the agent's current cell", () => {
    const rerouted: QueuedEvent[] = [];
    const cell = new AgentCell("x", Lru, stubCore(rerouted, []));
    cell.hibernate();
    const outcomes: EventOutcome[] = [];
    const ev = item(outcomes);
    cell.enqueue(ev);
    assert.deepEqual(rerouted, [ev]);
    assert.equal(cell.mailbox.length, 0);
  });

  test("hibernating a cell with queued events hands them on and releases transports waiting for room", async () => {
    const rerouted: QueuedEvent[] = [];
    const cell = new AgentCell("x", Lru, stubCore(rerouted, []));
    const outcomes: EventOutcome[] = [];
    // Queued without draining (the cell is not running), as an eviction racing an arrival would leave them.
    cell.mailbox.push(item(outcomes), item(outcomes));
    cell.userDepth = 2;
    const ready = cell.waitForCapacity();
    cell.hibernate();
    assert.equal(rerouted.length, 2);
    assert.equal(cell.userDepth, 0);
    assert.ok(await isSettled(ready), "ready must resolve when the cell closes");
    assert.ok(await isSettled(cell.waitForCapacity()), "a closed cell never makes a transport wait");
  });

  test("failAll at shutdown fails queued events with the given code and releases waiting transports", async () => {
    const cell = new AgentCell("x", Lru, stubCore([], []));
    const outcomes: EventOutcome[] = [];
    cell.mailbox.push(item(outcomes));
    cell.userDepth = 1;
    const ready = cell.waitForCapacity();
    cell.failAll("BRIDGE_ERR_RUNTIME_CLOSED", "runtime shut down");
    assert.deepEqual(outcomes, [{ status: "failed", code: "BRIDGE_ERR_RUNTIME_CLOSED", message: "runtime shut down" }]);
    assert.ok(await isSettled(ready), "ready must resolve at shutdown");
  });

  test("destroying a cell fails its queued events and releases waiting transports", async () => {
    const destroyed: string[] = [];
    const cell = new AgentCell("x", Lru, stubCore([], destroyed));
    const outcomes: EventOutcome[] = [];
    cell.mailbox.push(item(outcomes));
    cell.userDepth = 1;
    const ready = cell.waitForCapacity();
    await cell.requestDestroy();
    assert.deepEqual(destroyed, ["x"]);
    assert.equal(outcomes.length, 1);
    assert.equal(outcomes[0].status === "failed" && outcomes[0].code, "BRIDGE_ERR_AGENT_DESTROYED");
    assert.ok(await isSettled(ready), "ready must resolve when the agent is destroyed");
  });

  test("after a shutdown a transport that waited for room delivers again and gets BRIDGE_ERR_RUNTIME_CLOSED", async () => {
    const rt = testRuntime(path.join(t.dir, "shutdown"), Lru, 2);
    const tr = { send() {}, sendProtocol() {}, close() {} };
    await rt.open("a", { id: "c", kind: "mqtt", codec: "cbor", transport: tr });
    await rt.shutdown();
    const again = rt.deliver("a", "c", { channel: "rpc", frame: { id: "1", m: "fast" } });
    assert.ok(again.accepted);
    const r = await again.done;
    assert.equal(r.status === "failed" && r.code, "BRIDGE_ERR_RUNTIME_CLOSED");
  });
});
