/**
 * The registry keeps the firmware text of a device's last hello, and `GET /api/devices` and `devices list` show it for
 * every device. It was stored whole, up to the payload limit (64 KiB): each device could make its row of the fleet
 * list 64 KiB, and the list of a fleet hundreds of megabytes. It is cut to the 128 characters the agent keeps.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { MqttClient } from "mqtt";
import { getCodec, MAX_FIRMWARE_LENGTH } from "../../codecs/index.ts";
import { connectDevice, endClient, publish, startTestBroker, type TestBroker } from "./helpers.ts";

const json = getCodec("json");

describe("the firmware a hello records in the registry", () => {
  let tb: TestBroker;
  let client: MqttClient;

  before(async () => {
    tb = await startTestBroker();
    const secret = await tb.addDevice("fw-long");
    client = await connectDevice(tb.url, { clientId: "fw-long", username: "fw-long", password: secret });
  });
  after(async () => {
    await endClient(client, true);
    await tb.close();
  });

  test("is cut to MAX_FIRMWARE_LENGTH characters", async () => {
    assert.equal(MAX_FIRMWARE_LENGTH, 128);
    await publish(
      client,
      "devices/fw-long/up/hello",
      json.encodeUp("hello", { fw: "v".repeat(60_000), codec: "json" }),
    );
    assert.equal(tb.registry.get("fw-long")?.firmware, "v".repeat(MAX_FIRMWARE_LENGTH));
  });
});
