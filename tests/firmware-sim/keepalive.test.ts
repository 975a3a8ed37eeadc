import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Keepalive } from "../../firmware-sim/device/keepalive.ts";
import { createManualClock, TickScheduler } from "../../firmware-sim/index.ts";

describe("keepalive", () => {
  it("pings every three quarters of the keepalive while answered", () => {
    const clock = createManualClock(0);
    const pings: number[] = [];
    let dead = false;
    const keepalive = new Keepalive(
      new TickScheduler(clock),
      10,
      () => pings.push(clock.now()),
      () => {
        dead = true;
      },
    );
    keepalive.start();
    for (let i = 0; i < 3; i++) {
      clock.advance(7500);
      keepalive.pong();
    }
    assert.deepEqual(pings, [7500, 15000, 22500]);
    assert.equal(dead, false);
    keepalive.stop();
  });

  it("declares the connection dead when a ping is still unanswered at the next one", () => {
    const clock = createManualClock(0);
    let pings = 0;
    let dead = false;
    const keepalive = new Keepalive(
      new TickScheduler(clock),
      4,
      () => pings++,
      () => {
        dead = true;
      },
    );
    keepalive.start();
    clock.advance(3000);
    assert.equal(pings, 1);
    clock.advance(3000);
    assert.equal(dead, true);
    assert.equal(pings, 1);
  });

  it("never pings with keepalive 0", () => {
    const clock = createManualClock(0);
    let pings = 0;
    new Keepalive(
      new TickScheduler(clock),
      0,
      () => pings++,
      () => {},
    ).start();
    clock.advance(1e9);
    assert.equal(pings, 0);
  });
});
