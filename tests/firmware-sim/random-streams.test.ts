/** A seeded fleet's streams: one per device and purpose, independent of each other and of the order of draws. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { DRAW_PURPOSES, seededFleetRandom, sharedFleetRandom } from "../../firmware-sim/index.ts";
import { resolveFleetOptions } from "../../firmware-sim/fleet/options.ts";
import { thrownField } from "../support/thrown-field.ts";

const take = (random: () => number, n: number) => Array.from({ length: n }, () => random());

describe("seeded fleet random streams", () => {
  test("a device's stream gives the same values whatever the other devices and purposes drew before", () => {
    const quiet = seededFleetRandom(7);
    const busy = seededFleetRandom(7);
    take(busy.fleet, 5);
    take(busy.device(0).telemetry, 50);
    take(busy.device(2).backoff, 3);
    take(busy.device(1).telemetry, 4);
    assert.deepEqual(take(busy.device(1).backoff, 10), take(quiet.device(1).backoff, 10));
    assert.deepEqual(take(busy.device(2).telemetry, 10), take(quiet.device(2).telemetry, 10));
  });

  test("devices, purposes and seeds give different streams", () => {
    const random = seededFleetRandom(7);
    const firsts = new Set<number>();
    for (let i = 0; i < 100; i++) for (const purpose of DRAW_PURPOSES) firsts.add(random.device(i)[purpose]());
    assert.equal(firsts.size, 100 * DRAW_PURPOSES.length);
    assert.notEqual(seededFleetRandom(8).device(0).telemetry(), seededFleetRandom(7).device(0).telemetry());
  });

  test("a shared source is every stream of every device, so a scripted source controls every draw", () => {
    let calls = 0;
    const shared = sharedFleetRandom(() => {
      calls++;
      return 0.25;
    });
    assert.equal(shared.device(3).backoff(), 0.25);
    assert.equal(shared.device(9).telemetry(), 0.25);
    assert.equal(shared.fleet(), 0.25);
    assert.equal(calls, 3);
  });

  test("seed is an integer from 0 to 2^32-1 and cannot be combined with an injected random", () => {
    assert.equal(
      thrownField(() => resolveFleetOptions({ url: "mqtt://h", seed: 1.5 })),
      "seed",
    );
    assert.equal(
      thrownField(() => resolveFleetOptions({ url: "mqtt://h", seed: -1 })),
      "seed",
    );
    assert.equal(
      thrownField(() => resolveFleetOptions({ url: "mqtt://h", seed: 2 ** 32 })),
      "seed",
    );
    assert.equal(
      thrownField(() => resolveFleetOptions({ url: "mqtt://h", seed: 1, random: Math.random })),
      "seed",
    );
    assert.equal(
      thrownField(() => resolveFleetOptions({ url: "mqtt://h", seed: 2 ** 32 - 1 })),
      undefined,
    );
  });
});
