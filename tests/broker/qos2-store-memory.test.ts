import assert from "node:assert/strict";
import v8 from "node:v8";
import vm from "node:vm";
import { test } from "node:test";
import mqttPacket from "mqtt-packet";
import { connectRaw, startTestBroker, waitUntil } from "./helpers.ts";

// A full collection before each measure, so what is measured is what something still holds.
v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc") as () => void;
const heldBuffers = (): number => {
  gc();
  gc();
  return process.memoryUsage().arrayBuffers;
};

const MESSAGES = 300;
const PAYLOAD_BYTES = 60_000;

test("QoS 2 messages awaiting their PUBREL cost the broker their ids, not their payloads", async () => {
  // A generous rate limit: the device sends fast on purpose.
  const tb = await startTestBroker({ limits: { messagesPerSecond: 1_000_000, burstMessages: 1_000_000 } });
  try {
    const secret = await tb.addDevice("no-pubrel");
    // A persistent session: aedes keeps what awaits a PUBREL across reconnects too.
    const device = await connectRaw(tb.port, {
      clientId: "no-pubrel",
      username: "no-pubrel",
      password: Buffer.from(secret),
      clean: false,
    });
    const before = heldBuffers();
    for (let n = 1; n <= MESSAGES; n++) {
      device.socket.write(
        mqttPacket.generate({
          cmd: "publish",
          topic: "devices/no-pubrel/up/telemetry/json",
          // Not JSON: refused with an error frame and answered, as the agent's answer does not matter here.
          payload: Buffer.alloc(PAYLOAD_BYTES, 0x61),
          qos: 2,
          messageId: n,
          dup: false,
          retain: false,
        }),
      );
    }
    // Each PUBREC is written after aedes stored its message; the device never sends the PUBRELs.
    await waitUntil(() => device.packets.filter((p) => p.cmd === "pubrec").length === MESSAGES, 20_000);
    const held = heldBuffers() - before;
    assert.ok(held < (MESSAGES * PAYLOAD_BYTES) / 10, `the broker holds ${held} bytes for ${MESSAGES} messages`);
    device.socket.destroy();
  } finally {
    await tb.close();
  }
});
