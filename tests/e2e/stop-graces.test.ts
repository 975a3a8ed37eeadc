/**
 * The close waits of a stop (the broker's MQTT WebSockets, the agent sockets, the HTTP server's requests) overlap under
 * one deadline, `closesMs`, and leave the agents at least three quarters of shutdown.timeoutMs to drain, for every
 * allowed budget.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { stopGraces } from "../../app/bridge/stop-graces.ts";

/** Every allowed shutdown.timeoutMs (app/config/schema.ts), in ms. */
const MIN_TIMEOUT_MS = 1;
const MAX_TIMEOUT_MS = 3_600_000;

describe("the shares of a stop's budget", () => {
  test("the graces at 1 ms, 1 s, 2 s, 15 s (the default) and 60 s, and what the agents keep", () => {
    const cases = [
      { timeoutMs: 1, graces: { mqttWebSocket: 0, agentSockets: 0, http: 0, closesMs: 0 }, drain: 1 },
      { timeoutMs: 1000, graces: { mqttWebSocket: 250, agentSockets: 125, http: 250, closesMs: 250 }, drain: 750 },
      { timeoutMs: 2000, graces: { mqttWebSocket: 500, agentSockets: 250, http: 500, closesMs: 500 }, drain: 1500 },
      {
        timeoutMs: 15_000,
        graces: { mqttWebSocket: 2000, agentSockets: 1000, http: 3000, closesMs: 3000 },
        drain: 12_000,
      },
      {
        timeoutMs: 60_000,
        graces: { mqttWebSocket: 2000, agentSockets: 1000, http: 3000, closesMs: 3000 },
        drain: 57_000,
      },
    ];
    for (const c of cases) {
      const g = stopGraces(c.timeoutMs);
      assert.deepEqual(g, c.graces, `${c.timeoutMs} ms`);
      assert.equal(c.timeoutMs - g.closesMs, c.drain, `${c.timeoutMs} ms`);
    }
  });

  test("for every allowed budget, each grace ends by the shared deadline, which takes at most a quarter of it", () => {
    for (let timeoutMs = MIN_TIMEOUT_MS; timeoutMs <= MAX_TIMEOUT_MS; timeoutMs++) {
      const g = stopGraces(timeoutMs);
      const graces = [g.mqttWebSocket, g.agentSockets, g.http];
      if (
        graces.some((grace) => grace < 0 || grace > g.closesMs) ||
        g.closesMs !== Math.max(...graces) ||
        g.closesMs * 4 > timeoutMs
      ) {
        assert.fail(`${timeoutMs} ms: ${JSON.stringify(g)}`);
      }
    }
  });
});
