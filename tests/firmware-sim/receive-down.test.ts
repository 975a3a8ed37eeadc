import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { getCodec } from "../../codecs/index.ts";
import type { AliasRecovery } from "../../firmware-sim/device/alias-recovery.ts";
import { CommandBook } from "../../firmware-sim/device/command-book.ts";
import { ReasonTracker } from "../../firmware-sim/device/reason-tracker.ts";
import type { DeviceContext } from "../../firmware-sim/handlers/index.ts";
import { receiveDown } from "../../firmware-sim/handlers/receive.ts";
import type { ViolationKind } from "../../firmware-sim/invariants/violations.ts";
import { getProfile } from "../../firmware-sim/profiles/index.ts";
import { FleetMetrics } from "../../firmware-sim/stats.ts";
import { DeviceTopics } from "../../firmware-sim/wire.ts";

const firstDelivery = { dup: false, packetId: 1 };

/** A device's receive path with nothing behind it but the violations it records. */
function device(): { ctx: DeviceContext; violations: ViolationKind[] } {
  const violations: ViolationKind[] = [];
  const ctx: DeviceContext = {
    deviceId: "bin-1",
    profile: getProfile("sensor"),
    metrics: new FleetMetrics(),
    commands: new CommandBook(),
    reasons: new ReasonTracker(),
    shadow: undefined,
    aliases: { aliasesUnknown: () => {} } satisfies Pick<AliasRecovery, "aliasesUnknown">,
    nowMs: () => 0,
    deviceNowMs: () => 0,
    send: () => {},
    violation: (kind) => violations.push(kind),
    reasonDone: () => {},
  };
  return { ctx, violations };
}

describe("receive path of a binary device", () => {
  const json = Buffer.from(JSON.stringify({ id: "c-1", n: "ping" }));

  it("flags JSON text on a down topic it does not know, not only on the channels it knows", () => {
    // The device subscribes to devices/{id}/down/#, so whatever the broker sends under it reaches its binary parser:
    // a JSON frame on a down topic with a codec suffix or an unknown channel was only counted as an unknown channel.
    for (const codecName of ["cbor", "pb"] as const) {
      for (const topic of ["devices/bin-1/down/cmd", "devices/bin-1/down/cmd/json", "devices/bin-1/down/other"]) {
        const { ctx, violations } = device();
        receiveDown(ctx, getCodec(codecName), new DeviceTopics("bin-1"), topic, json, firstDelivery);
        assert.deepEqual(violations, ["json-to-binary-device"], `${codecName} on ${topic}`);
      }
    }
  });

  it("still only counts a binary frame on a down topic it does not know", () => {
    const { ctx, violations } = device();
    const frame = getCodec("cbor").encodeDown("cmd", { id: "c-1", n: "ping" });
    receiveDown(ctx, getCodec("cbor"), new DeviceTopics("bin-1"), "devices/bin-1/down/other", frame, firstDelivery);
    assert.deepEqual(violations, []);
    assert.equal(ctx.metrics.counters.unknownDownChannel, 1);
  });
});
