/**
 * A bridge given a clock reads it for what it computes itself: the activity the fleet view and the dashboard show
 * (last seen, the per-second rates) and the `serverTime` they are measured against. On the wall clock, a test with a
 * manual clock saw its devices seen at today's date while the fleet answered with the manual clock's.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { pino } from "pino";
import { type Bridge, createBridge } from "../../app/bridge.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { loopbackConfig } from "../support/in-process-bridge.ts";

const TOKEN = "bridge-clock-activity-token-0123456789";
/** Far from any wall-clock time the test could run at, and a whole second. */
const START_MS = Date.UTC(2001, 0, 1);
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "bridge-clock-activity-"));
const clock = new ManualClock(START_MS);
let bridge: Bridge;

before(async () => {
  bridge = await createBridge(loopbackConfig({ dataDir, apiToken: TOKEN }), {
    logger: pino({ level: "silent" }),
    clock,
  });
});

after(async () => {
  await bridge?.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

test("the fleet view's serverTime, rates and last-seen marks all read the bridge's clock", async () => {
  clock.advanceSync(2500);
  bridge.metrics.brokerObserver.messageIn?.("telemetry", "json");
  bridge.metrics.activity.seen("dev-1");
  assert.equal(bridge.metrics.activity.lastSeen("dev-1"), START_MS + 2500);

  const res = await bridge.http.app.inject({
    method: "GET",
    url: "/api/fleet",
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  assert.equal(res.statusCode, 200);
  const fleet = res.json() as { serverTime: number; rates: { history: Array<{ t: number; in: number }> } };
  assert.equal(fleet.serverTime, START_MS + 2500);
  assert.deepEqual(fleet.rates.history.at(-1), { t: START_MS + 2000, in: 1, out: 0, tokens: 0, ttftMs: null });
});
