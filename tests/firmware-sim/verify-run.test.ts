import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { verifyCommands, verifyTelemetry } from "../../firmware-sim/fleet/verify-run.ts";

describe("the end-of-run read-back", () => {
  it("counts a telemetry verifier that throws or rejects as an unavailable device and still checks the others", async () => {
    const kinds: string[] = [];
    const asked: string[] = [];
    const result = await verifyTelemetry(
      (deviceId, seqs) => {
        asked.push(deviceId);
        if (deviceId === "sync-throw") throw new Error("boom");
        if (deviceId === "rejects") return Promise.reject("refused");
        return Promise.resolve({ status: "read", missingSeqs: deviceId === "lossy" ? [seqs[0]] : [] });
      },
      new Map<string, number[]>([
        ["sync-throw", [1, 2]],
        ["rejects", [1]],
        ["lossy", [7, 8, 9]],
        ["fine", [1]],
        ["silent", []],
      ]),
      2,
      (v) => kinds.push(`${v.kind}:${v.deviceId}:${v.message}`),
    );
    assert.deepEqual(asked.sort(), ["fine", "lossy", "rejects", "sync-throw"], "a device with nothing acked is skipped");
    assert.deepEqual(kinds.sort(), [
      "telemetry-lost:lossy:1 of 3 acknowledged messages not readable (seq 7)",
      "telemetry-unverifiable:rejects:refused",
      "telemetry-unverifiable:sync-throw:boom",
    ]);
    assert.deepEqual(result, {
      status: "checked",
      devices: 4,
      ackedMessages: 7,
      missingMessages: 1,
      unavailableDevices: 2,
    });
  });

  it("never has more verifier calls in flight than its concurrency", async () => {
    let inFlight = 0;
    let most = 0;
    const acked = new Map(Array.from({ length: 9 }, (_, i) => [`d${i}`, [{ id: "c", ok: true }]] as const));
    const result = await verifyCommands(
      async () => {
        inFlight++;
        most = Math.max(most, inFlight);
        await new Promise<void>((resolve) => setImmediate(resolve));
        inFlight--;
        return { status: "read", unrecorded: [] };
      },
      acked,
      3,
      () => assert.fail("no violation expected"),
    );
    assert.equal(most, 3);
    assert.deepEqual(result, {
      status: "checked",
      devices: 9,
      commands: 9,
      unrecorded: 0,
      mismatched: 0,
      missing: 0,
      unavailableDevices: 0,
    });
  });

  it("counts a command verifier that throws as an unavailable device", async () => {
    const kinds: string[] = [];
    const result = await verifyCommands(
      async (deviceId) => {
        if (deviceId === "down") throw new Error("api down");
        return { status: "read", unrecorded: [{ id: "x", state: "SENT" }] };
      },
      new Map([
        ["down", [{ id: "a", ok: true }]],
        ["up", [{ id: "x", ok: true }]],
      ]),
      1,
      (v) => kinds.push(`${v.kind}:${v.deviceId}`),
    );
    assert.deepEqual(kinds, ["command-unverifiable:down", "command-ack-unrecorded:up"]);
    assert.deepEqual(result, {
      status: "checked",
      devices: 2,
      commands: 2,
      unrecorded: 1,
      mismatched: 0,
      missing: 0,
      unavailableDevices: 1,
    });
  });
});
