/** The simulator's `stall` fault: a hung engine process that accepts requests and never answers, not even /health. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { startEngineSimulator } from "../../engine-client/sim/index.ts";
import { waitFor } from "./support.ts";

const CHAT = JSON.stringify({ messages: [{ role: "user", content: "x" }] });

test("under the stall fault chat and /health are read but never answered, admin still answers, and a held chat request is aborted when its client leaves", async () => {
  const sim = await startEngineSimulator({ timeScale: 0, faults: { stall: true } });
  const leave = new AbortController();
  const answered: string[] = [];
  try {
    const chat = fetch(`${sim.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: CHAT,
      signal: leave.signal,
    }).then(() => answered.push("chat"));
    const health = fetch(`${sim.url}/health`, { signal: leave.signal }).then(() => answered.push("health"));
    await waitFor(() => sim.requests().length === 1 && sim.stats().healthChecks === 1, "both requests to arrive");
    // An admin round trip after both arrived: the handlers of the held requests have long returned without a word.
    const faults = (await (await fetch(`${sim.url}/admin/faults`)).json()) as { stall: boolean };
    assert.equal(faults.stall, true);
    assert.deepEqual(answered, []);
    assert.deepEqual(
      sim.requests().map((r) => [r.status, r.outcome]),
      [[0, "running"]],
    );

    leave.abort();
    await Promise.allSettled([chat, health]);
    await waitFor(() => sim.requests()[0].outcome === "aborted", "the held request to be recorded as aborted");
    assert.deepEqual(answered, []);

    sim.clearFaults();
    assert.equal((await fetch(`${sim.url}/health`)).status, 200);
    assert.equal(sim.stats().healthChecks, 2);
  } finally {
    await sim.close();
  }
});

test("the stall fault is a boolean: anything else is refused", async () => {
  const sim = await startEngineSimulator({ timeScale: 0 });
  try {
    const refused = await fetch(`${sim.url}/admin/faults`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ stall: "yes" }),
    });
    assert.equal(refused.status, 400);
    assert.match(await refused.text(), /faults\.stall must be a boolean/);
  } finally {
    await sim.close();
  }
});

test("closing the simulator ends the requests it holds", async () => {
  const sim = await startEngineSimulator({ timeScale: 0, faults: { stall: true } });
  const chat = fetch(`${sim.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: CHAT,
  });
  await waitFor(() => sim.requests().length === 1, "the request to arrive");
  await sim.close();
  await assert.rejects(chat);
  await waitFor(() => sim.requests()[0].outcome === "aborted", "the held request to be recorded as aborted");
});
