/**
 * A fleet directory index write that runtime.db refuses is retried within the run (agents/directory-index.ts); an
 * operator alerts on /metrics, not on the log, so the refusals are counted and the agents whose entries wait are a
 * gauge that falls back to 0 once the retries land or the agent is destroyed (docs/api.md, "Metrics").
 */
import assert from "node:assert/strict";
import path from "node:path";
import { after, afterEach, beforeEach, describe, test } from "node:test";
import Fastify, { type FastifyInstance } from "fastify";
import { DIRECTORY_RETRY_FIRST_MS } from "../../agents/directory-index.ts";
import { Agent, type AgentRuntime, type Value } from "../../agents/index.ts";
import { createMetrics, registerMetricsRoute } from "../../app/metrics/index.ts";
import { directoryWriteFault } from "../agents/runtime-db-fault.ts";
import { tempDir, testRuntime } from "../agents/helpers.ts";
import { ManualClock } from "../support/manual-clock.ts";

class Approver extends Agent {
  /** Wakes the agent: its start event writes its (empty) index too, and the tests count only the approvals' writes. */
  wake(): void {}
  approve(key: string, value: Value): void {
    this.env.directory.put("approval", key, value);
  }
}

const TOKEN = "t".repeat(32);
const REFUSED = "bridge_directory_writes_refused_total";
const WAITING = "bridge_directory_agents_waiting";

describe("directory index faults on /metrics", () => {
  const t = tempDir();
  after(() => t.remove());
  let fault: ReturnType<typeof directoryWriteFault>;
  let clock: ManualClock;
  let rt: AgentRuntime;
  let app: FastifyInstance;
  let n = 0;

  beforeEach(async () => {
    fault = directoryWriteFault();
    clock = new ManualClock();
    const metrics = createMetrics({ defaultMetrics: false });
    rt = testRuntime(path.join(t.dir, `rt-${++n}`), Approver, n, { clock, observer: metrics.runtimeObserver });
    metrics.setSources({ runtime: rt });
    app = Fastify();
    await registerMetricsRoute(app, metrics, { token: TOKEN });
    await rt.start();
    for (const id of ["a", "b"]) assert.equal((await rt.call(id, "wake", [])).ok, true);
  });
  afterEach(async () => {
    await rt.shutdown();
    await app.close();
    fault.restore();
  });

  /** The value of a series without labels, as a scrape of /metrics shows it. */
  async function series(name: string): Promise<number> {
    const res = await app.inject({ method: "GET", url: "/metrics", headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(res.statusCode, 200);
    const line = res.body.split("\n").find((l) => l.startsWith(`${name} `));
    assert.ok(line !== undefined, `no ${name} in the scrape`);
    return Number(line.slice(name.length + 1));
  }

  test("refusals are counted, retries included; the gauge counts waiting agents and returns to 0", async () => {
    assert.equal(await series(REFUSED), 0);
    assert.equal(await series(WAITING), 0);
    fault.failing = true;
    assert.equal((await rt.call("a", "approve", ["k", 1])).ok, true);
    assert.equal((await rt.call("b", "approve", ["k", 2])).ok, true);
    assert.equal(await series(REFUSED), 2);
    assert.equal(await series(WAITING), 2);
    // The retry stops at its first refusal and backs off: one more refused write, both agents still waiting.
    await clock.advance(DIRECTORY_RETRY_FIRST_MS);
    assert.equal(await series(REFUSED), 3);
    assert.equal(await series(WAITING), 2);
    fault.failing = false;
    await clock.advance(2 * DIRECTORY_RETRY_FIRST_MS);
    assert.equal(rt.directory.list("approval").length, 2, "the retry landed");
    assert.equal(await series(WAITING), 0);
    assert.equal(await series(REFUSED), 3, "a write that lands is not counted");
  });

  test("an agent's own later index write, or its destroy, ends its wait", async () => {
    fault.failing = true;
    assert.equal((await rt.call("a", "approve", ["k", 1])).ok, true);
    assert.equal((await rt.call("b", "approve", ["k", 2])).ok, true);
    assert.equal(await series(WAITING), 2);
    fault.failing = false;
    assert.equal((await rt.call("a", "approve", ["k", 3])).ok, true);
    assert.equal(await series(WAITING), 1);
    assert.equal(await rt.destroyAgent("b"), true);
    assert.equal(await series(WAITING), 0);
    assert.equal(await series(REFUSED), 2);
  });
});
