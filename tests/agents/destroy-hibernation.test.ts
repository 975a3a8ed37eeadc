/**
 * A destroy reaches the observer's `onHibernate` (bridge_agent_hibernations_total{reason="destroy"}) only for an agent
 * that was in memory: one on disk only, or asleep with a connection still open, had nothing to hibernate.
 */
import assert from "node:assert/strict";
import path from "node:path";
import { after, test } from "node:test";
import { Agent, type RuntimeObserver } from "../../agents/index.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { RecordingTransport, tempDir, testRuntime } from "./helpers.ts";

class Counter extends Agent<{ n: number }> {
  static override callable = ["bump"];
  override initialState = { n: 0 };
  bump(): number {
    this.setState({ n: this.state.n + 1 });
    return this.state.n;
  }
}

const t = tempDir("destroy-hibernation-");
after(() => t.remove());

test("destroying an agent counts as a hibernation only when the agent was in memory", async () => {
  const dataDir = path.join(t.dir, "agents");
  const first = testRuntime(dataDir, Counter, 1);
  await first.call("on-disk", "bump", []);
  await first.shutdown();

  const left: string[] = [];
  const observer: RuntimeObserver = { onHibernate: (i) => left.push(`${i.agentId}:${i.reason}`) };
  const clock = new ManualClock();
  const rt = testRuntime(dataDir, Counter, 1, { observer, clock, idleTimeoutMs: 1000 });
  try {
    // Asleep with its connection still open in the host: the idle timeout took it out of memory.
    await rt.open("asleep", { id: "c1", kind: "mqtt", codec: "json", transport: new RecordingTransport() });
    await rt.call("asleep", "bump", []);
    await clock.advance(1000);
    assert.deepEqual(left, ["asleep:idle"]);
    await rt.call("live", "bump", []);

    assert.equal(await rt.destroyAgent("live"), true);
    assert.equal(await rt.destroyAgent("asleep"), true);
    assert.equal(await rt.destroyAgent("on-disk"), true);
    assert.deepEqual(left, ["asleep:idle", "live:destroy"]);
  } finally {
    await rt.shutdown();
  }
});
