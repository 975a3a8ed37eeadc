import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { resolveFleetOptions } from "../../firmware-sim/fleet/options.ts";
import { backoffDelayMs, createFleet, DEFAULT_BACKOFF } from "../../firmware-sim/index.ts";
import { BridgeError } from "../../errors/index.ts";

function field(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof BridgeError);
    assert.equal(err.code, "BRIDGE_ERR_SIM_OPTIONS");
    return err.details.field;
  }
  assert.fail("expected BRIDGE_ERR_SIM_OPTIONS");
}

describe("fleet options", () => {
  it("fills in defaults and the broker's default ports", () => {
    const o = resolveFleetOptions({ url: "mqtt://broker.local" });
    assert.deepEqual(o.target, { host: "broker.local", port: 1883, tls: false });
    assert.equal(o.devices, 10);
    assert.deepEqual(o.profiles, ["sensor"]);
    assert.equal(o.codec, "cbor");
    assert.deepEqual(resolveFleetOptions({ url: "mqtts://[::1]" }).target, { host: "::1", port: 8883, tls: true });
    const creds = [
      { id: "a", secret: "x" },
      { id: "b", secret: "y" },
    ];
    assert.equal(resolveFleetOptions({ url: "mqtt://h:1", credentials: creds }).devices, 2);
  });

  it("names the field of every invalid option", () => {
    assert.equal(
      field(() => resolveFleetOptions({ url: "not a url" })),
      "url",
    );
    assert.equal(
      field(() => resolveFleetOptions({ url: "ws://h:1" })),
      "url",
    );
    assert.equal(
      field(() => resolveFleetOptions({ url: "mqtt://h", devices: 0 })),
      "devices",
    );
    assert.equal(
      field(() => resolveFleetOptions({ url: "mqtt://h", devices: 1.5 })),
      "devices",
    );
    assert.equal(
      field(() => resolveFleetOptions({ url: "mqtt://h", devices: 3, credentials: [{ id: "a", secret: "x" }] })),
      "devices",
    );
    assert.equal(
      field(() => resolveFleetOptions({ url: "mqtt://h", profile: [] })),
      "profile",
    );
    // A source address that is not an IP address would fail every connection attempt of its devices.
    assert.equal(
      field(() => resolveFleetOptions({ url: "mqtt://h", localAddresses: ["127.0.0.1", "localhost"] })),
      "localAddresses",
    );
    assert.equal(
      field(() => resolveFleetOptions({ url: "mqtt://h", rate: -1 })),
      "rate",
    );
    assert.equal(
      field(() => resolveFleetOptions({ url: "mqtt://h", noClockRatio: 2 })),
      "noClockRatio",
    );
    assert.equal(
      field(() => resolveFleetOptions({ url: "mqtt://h", backoff: { baseDelayMs: 500, maxDelayMs: 100 } })),
      "backoff.maxDelayMs",
    );
    assert.equal(
      field(() => resolveFleetOptions({ url: "mqtt://h", idPrefix: "bad prefix" })),
      "idPrefix",
    );
    assert.equal(
      field(() => resolveFleetOptions({ url: "mqtt://h", maxInflight: 0 })),
      "maxInflight",
    );
  });

  it("says an empty credentials list is empty, rather than that devices is undefined", () => {
    assert.throws(
      () => resolveFleetOptions({ url: "mqtt://h", credentials: [] }),
      (err: unknown) => {
        assert.ok(err instanceof BridgeError);
        assert.equal(err.details.field, "credentials");
        assert.match(err.message, /^credentials is empty/);
        return true;
      },
    );
  });

  it("refuses a last-will topic with a wildcard, which no broker accepts as a topic name", () => {
    for (const lastWillTopic of ["devices/{id}/up/#", "devices/+/up/status"]) {
      assert.equal(
        field(() => resolveFleetOptions({ url: "mqtt://h", lastWillTopic })),
        "lastWillTopic",
      );
    }
    assert.equal(
      resolveFleetOptions({ url: "mqtt://h", lastWillTopic: "devices/{id}/up/status" }).lastWillTopic,
      "devices/{id}/up/status",
    );
  });

  it("refuses a driveApi.maxQueued that is negative or not an integer", () => {
    for (const maxQueued of [-1, 1.5, Number.NaN]) {
      assert.equal(
        field(() => resolveFleetOptions({ url: "mqtt://h", driveApi: { apiUrl: "http://x", maxQueued } })),
        "driveApi.maxQueued",
      );
    }
  });

  it("takes a backoff field given as undefined as its default, as every other option does", () => {
    // Spread over the defaults, an undefined field replaced its default and passed validation: every reconnect delay
    // was NaN (and the stable-connection reset a NaN timer).
    const given = { baseDelayMs: undefined, maxDelayMs: undefined, stableConnectionMs: undefined };
    const o = resolveFleetOptions({ url: "mqtt://h", backoff: given });
    assert.deepEqual(o.backoff, DEFAULT_BACKOFF);
    assert.equal(
      backoffDelayMs(3, o.backoff, () => 0.5),
      4000,
    );
    assert.equal(resolveFleetOptions({ url: "mqtt://h", backoff: { mode: undefined } }).backoff.mode, "exponential");
  });

  it("refuses a run duration that is negative or not a number, before anything starts", async () => {
    const fleet = createFleet({ url: "mqtt://127.0.0.1:1", devices: 1 });
    for (const durationMs of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
      await assert.rejects(fleet.run(durationMs), (err: unknown) => {
        assert.ok(err instanceof BridgeError);
        assert.equal(err.code, "BRIDGE_ERR_SIM_OPTIONS");
        assert.equal(err.details.field, "durationMs");
        return true;
      });
    }
    assert.equal(fleet.stats().started, 0);
  });
});
