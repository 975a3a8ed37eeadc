/**
 * Reconnect backoff resets only after a stable connection (AWS IoT Device SDK's minConnectedTimeToResetReconnectDelayMs):
 * a broker that kicks a device right after its hello must see it come back later and later, not every half second.
 */
import assert from "node:assert/strict";
import type { Duplex } from "node:stream";
import { describe, test } from "node:test";
import {
  createFleet,
  createManualClock,
  DEFAULT_BACKOFF,
  type FleetReport,
  type ManualClock,
} from "../../firmware-sim/index.ts";
import { acknowledge, scriptedSocket } from "./helpers/scripted-socket.ts";

/** Lets the in-memory sockets exchange what is pending (each broker answer takes a macrotask turn or two). */
async function flush(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** Moves the manual clock forward in small steps, letting I/O run between them. */
async function advance(clock: ManualClock, ms: number, stepMs = 50): Promise<void> {
  for (let done = 0; done < ms; done += stepMs) {
    clock.advance(Math.min(stepMs, ms - done));
    await flush();
  }
}

async function stopWith(clock: ManualClock, stop: () => Promise<FleetReport>): Promise<FleetReport> {
  let report: FleetReport | undefined;
  const stopped = stop().then((r) => {
    report = r;
  });
  while (report === undefined) await advance(clock, 50);
  await stopped;
  return report;
}

/**
 * One device against a broker that accepts it and, while `kick` says so, closes the connection right after the hello's
 * PUBACK. Returns the clock times of its CONNECTs.
 */
function kickedDevice(clock: ManualClock, kick: () => boolean, stableConnectionMs?: number) {
  const connects: number[] = [];
  const sockets: Duplex[] = [];
  const fleet = createFleet({
    url: "mqtt://127.0.0.1:1",
    devices: 1,
    rate: 0,
    clock,
    random: () => 0.5,
    backoff: {
      baseDelayMs: 1000,
      maxDelayMs: 30_000,
      ...(stableConnectionMs === undefined ? {} : { stableConnectionMs }),
    },
    keepaliveSec: 0,
    settleMs: 0,
    drainTimeoutMs: 0,
    socketFactory: () => {
      const socket = scriptedSocket((packet, broker) => {
        if (packet.cmd === "connect") connects.push(clock.now());
        acknowledge(packet, broker);
        if (packet.cmd === "publish" && packet.topic.endsWith("/hello/cbor") && kick()) broker.close();
      });
      sockets.push(socket);
      return socket;
    },
  });
  return { fleet, connects, sockets };
}

const gaps = (times: readonly number[]) => times.slice(1).map((t, i) => t - times[i]);

describe("stable connection before the backoff resets", () => {
  test("a device kicked right after each hello backs off further every time", async () => {
    const clock = createManualClock(0);
    const { fleet, connects } = kickedDevice(clock, () => true);
    void fleet.start();
    await advance(clock, 16_000);
    await stopWith(clock, () => fleet.stop());
    // random() = 0.5: half of each window, 1 s doubling (the 50 ms steps of the test clock add at most one step).
    const seen = gaps(connects).slice(0, 5);
    assert.equal(seen.length, 5, `connects at ${connects.join(", ")}`);
    [500, 1000, 2000, 4000, 8000].forEach((expected, i) => {
      assert.ok(seen[i] >= expected && seen[i] <= expected + 50, `gap ${i}: ${seen[i]} (all: ${seen.join(", ")})`);
    });
  });

  test("a connection that stayed up stableConnectionMs resets the backoff; a shorter one does not", async () => {
    const clock = createManualClock(0);
    let kicking = true;
    const { fleet, connects, sockets } = kickedDevice(clock, () => kicking, 20_000);
    void fleet.start();
    await advance(clock, 1600); // connects at 0 and ~500 (kicked), ~1500 (kicked): the next window is 4 s
    kicking = false;
    await advance(clock, 2500); // back at ~3500 and stays
    assert.equal(connects.length, 4, `connects at ${connects.join(", ")}`);
    // Up for 5 s, less than stableConnectionMs: the next delay keeps growing (half of 8 s).
    await advance(clock, 5000);
    sockets.at(-1)?.destroy();
    await advance(clock, 4100);
    assert.equal(connects.length, 5, `connects at ${connects.join(", ")}`);
    assert.ok(gaps(connects)[3] >= 5000 + 4000, `after a short connection: ${gaps(connects).join(", ")}`);
    // Up for 20 s: stable, so the next drop waits half of the first window again.
    await advance(clock, 20_000);
    sockets.at(-1)?.destroy();
    const droppedAt = clock.now();
    await advance(clock, 600);
    assert.equal(connects.length, 6, `connects at ${connects.join(", ")}`);
    const back = (connects.at(-1) ?? 0) - droppedAt;
    assert.ok(back >= 450 && back <= 600, `back ${back} ms after a stable connection`);
    await stopWith(clock, () => fleet.stop());
  });

  test("defaults to 30 s, as AWS IoT Device SDKs do, and refuses a negative value naming the field", () => {
    assert.equal(DEFAULT_BACKOFF.stableConnectionMs, 30_000);
    assert.throws(
      () => createFleet({ url: "mqtt://127.0.0.1:1", backoff: { stableConnectionMs: -1 } }),
      (err: unknown) =>
        err instanceof Error &&
        "details" in err &&
        (err.details as { field: string }).field === "backoff.stableConnectionMs",
    );
  });
});
