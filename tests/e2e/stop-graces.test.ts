/**
 * The close graces a stop waits out one after the other (the broker's MQTT WebSockets, the agent sockets, the HTTP
 * server's requests) leave the agents at least three eighths of shutdown.timeoutMs to drain, for every allowed budget.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { stopGraces } from "../../app/bridge/stop-graces.ts";

/** Every allowed shutdown.timeoutMs (app/config/schema.ts), in ms. */
const MIN_TIMEOUT_MS = 1;
const MAX_TIMEOUT_MS = 3_600_000;

const total = (timeoutMs: number): number => {
  const g = stopGraces(timeoutMs);
  return g.mqttWebSocket + g.agentSockets + g.http;
};

describe("the shares of a stop's budget", () => {
  test("the graces at 1 s, 2 s, 15 s (the default) and 60 s, and what the agents keep", () => {
    const cases = [
      { timeoutMs: 1000, graces: { mqttWebSocket: 250, agentSockets: 125, http: 250 }, drain: 375 },
      { timeoutMs: 2000, graces: { mqttWebSocket: 500, agentSockets: 250, http: 500 }, drain: 750 },
      { timeoutMs: 15_000, graces: { mqttWebSocket: 2000, agentSockets: 1000, http: 3000 }, drain: 9000 },
      { timeoutMs: 60_000, graces: { mqttWebSocket: 2000, agentSockets: 1000, http: 3000 }, drain: 54_000 },
    ];
    for (const c of cases) {
      assert.deepEqual(stopGraces(c.timeoutMs), c.graces, `${c.timeoutMs} ms`);
      assert.equal(c.timeoutMs - total(c.timeoutMs), c.drain, `${c.timeoutMs} ms`);
    }
  });

  test("for every allowed budget, the graces take at most five eighths of it, never a negative one", () => {
    for (let timeoutMs = MIN_TIMEOUT_MS; timeoutMs <= MAX_TIMEOUT_MS; timeoutMs++) {
      const g = stopGraces(timeoutMs);
      if (g.mqttWebSocket < 0 || g.agentSockets < 0 || g.http < 0 || total(timeoutMs) * 8 > timeoutMs * 5) {
        assert.fail(`${timeoutMs} ms: ${JSON.stringify(g)}`);
      }
    }
  });
});
