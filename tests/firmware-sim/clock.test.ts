/** The real clock behind the simulator's one scheduler timer. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { systemClock } from "../../firmware-sim/index.ts";

test("the system clock waits out delays beyond setTimeout's limit of 2^31-1 ms instead of firing at once", async () => {
  // Node fires a longer setTimeout after 1 ms: a 25-day --duration stopped the run at once, and a network drop drawn
  // beyond 24.8 days (--drop-mean-ms near its limit of 1e9) dropped the device as soon as it came online.
  const fired: string[] = [];
  const cancels = [
    systemClock.setTimer(() => fired.push("2^31 ms"), 2 ** 31),
    systemClock.setTimer(() => fired.push("30 days"), 30 * 86_400_000),
    systemClock.setTimer(() => fired.push("never"), Number.POSITIVE_INFINITY),
  ];
  const shortDone = new Promise<void>((resolve) => systemClock.setTimer(resolve, 50));
  await shortDone;
  for (const cancel of cancels) cancel();
  assert.deepStrictEqual(fired, []);
});
