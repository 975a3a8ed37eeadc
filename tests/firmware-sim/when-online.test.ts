/**
 * whenOnline() waits for devices to come online; once the fleet stops, none will, so the wait must end there instead
 * of polling out its timeout with a timer that keeps the process alive.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { type Clock, createFleet, systemClock } from "../../firmware-sim/index.ts";
import { scriptedSocket } from "./helpers/scripted-socket.ts";
import { waitUntil } from "./helpers/wait.ts";

/** The system clock, counting the timers set through it that have neither fired nor been cancelled. */
function countingClock(): Clock & { live(): number } {
  let live = 0;
  return {
    now: () => systemClock.now(),
    setTimer(fn, delayMs) {
      live++;
      let settled = false;
      const settle = () => {
        if (!settled) live--;
        settled = true;
      };
      const cancel = systemClock.setTimer(() => {
        settle();
        fn();
      }, delayMs);
      return () => {
        settle();
        cancel();
      };
    },
    live: () => live,
  };
}

test("whenOnline resolves false when the fleet stops, and leaves no timer behind", async () => {
  const clock = countingClock();
  let attempts = 0;
  const fleet = createFleet({
    url: "mqtt://127.0.0.1:1",
    devices: 1,
    rate: 0,
    clock,
    settleMs: 0,
    drainTimeoutMs: 0,
    // A broker that never answers: the device never comes online.
    socketFactory: () => {
      attempts++;
      return scriptedSocket(() => {});
    },
  });
  await fleet.start();
  await waitUntil(() => attempts === 1, "a connection attempt");
  let settled: boolean | undefined;
  const online = fleet.whenOnline(1, 30_000).then((value) => {
    settled = value;
  });
  await fleet.stop();
  await waitUntil(() => settled !== undefined, "whenOnline to settle after stop()", 3000);
  await online;
  assert.equal(settled, false);
  assert.equal(clock.live(), 0, "no timer of the fleet is left");
});

test("whenOnline called after stop() resolves at once", async () => {
  const clock = countingClock();
  const fleet = createFleet({
    url: "mqtt://127.0.0.1:1",
    devices: 1,
    rate: 0,
    clock,
    socketFactory: () => scriptedSocket(() => {}),
  });
  await fleet.stop();
  const started = Date.now();
  assert.equal(await fleet.whenOnline(1, 30_000), false);
  assert.ok(Date.now() - started < 1000, `took ${Date.now() - started} ms`);
  assert.equal(clock.live(), 0);
});
