import assert from "node:assert/strict";
import path from "node:path";
import { after, describe, test } from "node:test";
import { MAX_TIMER_MS } from "../../agents/clock.ts";
import { Agent, type RuntimeObserver } from "../../agents/index.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { RecordingTransport, tempDir, testRuntime } from "./helpers.ts";

const starts = new Map<string, number>();

class Sleeper extends Agent<{ n: number }> {
  static override callable = ["bump"];
  override initialState = { n: 0 };
  override onStart(): void {
    starts.set(this.id, (starts.get(this.id) ?? 0) + 1);
  }
  bump(): number {
    this.setState({ n: this.state.n + 1 });
    return this.state.n;
  }
  push(text: string): void {
    for (const c of this.getConnections()) c.send({ channel: "cmd", frame: { id: text, n: "say" } });
  }
}

describe("agent hibernation", () => {
  const t = tempDir();
  after(() => t.remove());

  test("beyond maxActiveAgents the least recently used idle agents hibernate and rehydrate with nothing lost", async () => {
    starts.clear();
    const hibernated: string[] = [];
    const observer: RuntimeObserver = { onHibernate: (i) => hibernated.push(`${i.agentId}:${i.reason}`) };
    const rt = testRuntime(path.join(t.dir, "lru"), Sleeper, 1, { maxActiveAgents: 2, observer });
    try {
      await rt.call("a", "bump", []);
      await rt.call("b", "bump", []);
      await rt.call("a", "bump", []); // a is now more recent than b
      await rt.call("c", "bump", []);
      assert.deepEqual(hibernated, ["b:lru"]);
      assert.deepEqual(rt.stats(), { active: 2, hibernated: 1, mailboxDepth: 0, commits: rt.stats().commits });
      assert.deepEqual(await rt.call("b", "bump", []), { ok: true, value: 2 }, "state reloaded from SQLite");
      assert.equal(starts.get("b"), 2, "onStart ran again on wake");
      assert.deepEqual(hibernated, ["b:lru", "a:lru"]);
      assert.deepEqual(await rt.call("a", "bump", []), { ok: true, value: 3 });
    } finally {
      await rt.shutdown();
    }
  });

  test("an idle agent hibernates after idleTimeoutMs while its connection stays open in the host", async () => {
    starts.clear();
    const clock = new ManualClock();
    const rt = testRuntime(path.join(t.dir, "idle"), Sleeper, 2, { clock, idleTimeoutMs: 60_000 });
    try {
      const tr = new RecordingTransport();
      await rt.open("d", { id: "conn", kind: "mqtt", codec: "cbor", transport: tr });
      await clock.advance(59_000);
      assert.equal(rt.stats().active, 1);
      await clock.advance(2_000);
      assert.equal(rt.stats().active, 0);
      // The next event wakes it; the connection is still there and frames reach the same transport.
      const out = rt.deliver("d", "conn", { channel: "rpc", frame: { id: "r1", m: "bump" } });
      assert.ok(out.accepted);
      assert.deepEqual(await out.done, { status: "committed" });
      assert.deepEqual(tr.sent.at(-1)?.message, { channel: "rpc", frame: { id: "r1", ok: true, res: 1 } });
      await rt.call("d", "push", ["hello"]);
      assert.equal(tr.sent.at(-1)?.message.channel, "cmd");
      assert.equal(starts.get("d"), 2);
      assert.deepEqual(tr.closed, []);
      // After close the connection is gone for good.
      await rt.close("d", "conn", "disconnect");
      const after = rt.deliver("d", "conn", { channel: "rpc", frame: { id: "r2", m: "bump" } });
      assert.ok(after.accepted);
      const r = await after.done;
      assert.equal(r.status === "failed" && r.code, "BRIDGE_ERR_CONNECTION_UNKNOWN");
    } finally {
      await rt.shutdown();
    }
  });

  test("an idleTimeoutMs longer than a Node timer can wait is waited for in steps, never handed to setTimeout whole", async () => {
    // Node fires a timer longer than MAX_TIMER_MS after 1 ms: the idle sweep would then run every millisecond.
    class StepClock extends ManualClock {
      longest = 0;
      override setTimeout(fn: () => void, ms: number): unknown {
        this.longest = Math.max(this.longest, ms);
        return super.setTimeout(fn, ms);
      }
    }
    const clock = new StepClock();
    const idleTimeoutMs = 2 * MAX_TIMER_MS;
    const rt = testRuntime(path.join(t.dir, "long-idle"), Sleeper, 6, { clock, idleTimeoutMs });
    try {
      await rt.call("d", "bump", []);
      assert.ok(clock.longest <= MAX_TIMER_MS, `asked setTimeout for ${clock.longest} ms`);
      await clock.advance(idleTimeoutMs - 1000);
      assert.equal(rt.stats().active, 1, "not idle long enough yet");
      await clock.advance(2000);
      assert.equal(rt.stats().active, 0, "hibernated once idleTimeoutMs passed");
      assert.ok(clock.longest <= MAX_TIMER_MS, `asked setTimeout for ${clock.longest} ms`);
    } finally {
      await rt.shutdown();
    }
  });

  test("a wake whose agent constructor throws leaves the agent asleep, so the next event wakes it again", async () => {
    starts.clear();
    let constructorFailures = 1;
    class Fragile extends Sleeper {
      constructor(...args: ConstructorParameters<typeof Sleeper>) {
        super(...args);
        if (constructorFailures > 0) {
          constructorFailures--;
          throw new Error("config not ready");
        }
      }
    }
    const rt = testRuntime(path.join(t.dir, "wake-fails"), Fragile, 5);
    try {
      const first = await rt.call("f", "bump", []);
      assert.equal(first.ok, false, "the event of the failed wake fails");
      assert.equal(!first.ok && first.message, "config not ready");
      assert.deepEqual(await rt.call("f", "bump", []), { ok: true, value: 1 }, "the next event wakes the agent");
      assert.equal(starts.get("f"), 1, "onStart ran on the wake that succeeded");
    } finally {
      await rt.shutdown();
    }
  });

  test("a connection whose transport died with the previous process is closed with reason shutdown on wake", async () => {
    const dataDir = path.join(t.dir, "stale");
    const closes: string[] = [];
    class Tracker extends Sleeper {
      override onClose(conn: { id: string }, reason: string): void {
        closes.push(`${conn.id}:${reason}`);
      }
      count(): number {
        return this.getConnections().length;
      }
    }
    let rt = testRuntime(dataDir, Tracker, 3);
    await rt.open("d", { id: "old", kind: "mqtt", codec: "cbor", transport: new RecordingTransport() });
    await rt.shutdown();
    rt = testRuntime(dataDir, Tracker, 4);
    try {
      assert.deepEqual(await rt.call("d", "count", []), { ok: true, value: 0 });
      assert.deepEqual(closes, ["old:shutdown"]);
    } finally {
      await rt.shutdown();
    }
  });
});
