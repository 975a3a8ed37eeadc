import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { MqttClient } from "mqtt";
import { getCodec } from "../../codecs/index.ts";
import {
  collect,
  connectDevice,
  endClient,
  MemoryLogger,
  publish,
  startTestBroker,
  subscribe,
  type TestBroker,
  waitUntil,
} from "./helpers.ts";

/** A logger with a debug level, as pino has; the broker's other tests use one without it. */
class DebugLogger extends MemoryLogger {
  debug(obj: Record<string, unknown>, msg: string): void {
    this.lines.push({ level: "debug", msg, obj });
  }
}

// A device maker trying the bridge with mosquitto_pub never sees the down/error frame its refused message got: that
// frame goes to the publishing connection, which mosquitto_pub does not read. `--log-level debug` must say it instead.
describe("error frames sent to a device are logged at debug level", () => {
  let tb: TestBroker;
  let device: MqttClient;
  let inbox: ReturnType<typeof collect>;
  const logger = new DebugLogger();
  const refusals = () => logger.lines.filter((l) => l.level === "debug" && l.msg === "error frame to device");

  before(async () => {
    tb = await startTestBroker({ logger });
    const secret = await tb.addDevice("dev-1", "cbor");
    device = await connectDevice(tb.url, { clientId: "dev-1", username: "dev-1", password: secret });
    inbox = collect(device);
    await subscribe(device, "devices/dev-1/down/#");
  });
  after(async () => {
    await endClient(device, true);
    await tb.close();
  });

  test("a message that does not decode names the device, topic, codec it was read in, code and message", async () => {
    await publish(device, "devices/dev-1/up/telemetry", '{"r":{"t":1}}');
    await waitUntil(() => inbox.length > 0);
    assert.equal(refusals().length, 1);
    const { obj } = refusals()[0]!;
    assert.equal(obj.device, "dev-1");
    assert.equal(obj.topic, "devices/dev-1/up/telemetry");
    assert.equal(obj.codec, "cbor", "a JSON payload read as CBOR is the usual mistake: the line must show it");
    const frame = obj.frame as { code: string; msg: string };
    assert.equal(frame.code, "BRIDGE_ERR_FRAME_DECODE");
    assert.equal(typeof frame.msg, "string");
    assert.equal(obj.msg, undefined, "the frame's msg must not collide with the log line's own msg key");
  });

  test("a message whose event failed in its agent is logged with the failure's code and the topic", async () => {
    tb.host.deliverResult = { status: "failed", code: "BRIDGE_ERR_HANDLER", message: "handler threw" };
    const before = inbox.length;
    await publish(device, "devices/dev-1/up/state", getCodec("cbor").encodeUp("state", { v: 0, s: { led: "on" } }));
    await waitUntil(() => inbox.length > before);
    tb.host.deliverResult = { status: "committed" };
    assert.equal(refusals().length, 2);
    const { obj } = refusals()[1]!;
    assert.equal(obj.device, "dev-1");
    assert.equal(obj.topic, "devices/dev-1/up/state");
    assert.deepEqual(obj.frame, { code: "BRIDGE_ERR_HANDLER", msg: "handler threw" });
  });

  test("an error frame the agent sends itself (a stale state patch) is logged with its code, message and v", async () => {
    const transport = [...tb.host.transports.values()].at(-1)!;
    const before = inbox.length;
    transport.send(
      { channel: "error", frame: { code: "BRIDGE_ERR_STALE_VERSION", msg: "reported version is 1, not 0", v: 1 } },
      { qos: 0 },
    );
    await waitUntil(() => inbox.length > before);
    assert.equal(refusals().length, 3);
    assert.deepEqual(refusals()[2]!.obj, {
      device: "dev-1",
      frame: { code: "BRIDGE_ERR_STALE_VERSION", msg: "reported version is 1, not 0", v: 1 },
    });
  });

  test("other down frames are not logged", async () => {
    const transport = [...tb.host.transports.values()].at(-1)!;
    const before = inbox.length;
    transport.send({ channel: "cmd", frame: { id: "c-1", n: "reboot" } }, { qos: 1 });
    await waitUntil(() => inbox.length > before);
    assert.equal(refusals().length, 3);
  });
});

test("a message its agent could not store (the session ends unacknowledged) is logged like any other error frame", async () => {
  const logger = new DebugLogger();
  const tb = await startTestBroker({ logger });
  try {
    const secret = await tb.addDevice("full-1", "cbor");
    const device = await connectDevice(tb.url, { clientId: "full-1", username: "full-1", password: secret });
    const inbox = collect(device);
    await subscribe(device, "devices/full-1/down/#");
    tb.host.deliverResult = { status: "failed", code: "BRIDGE_ERR_STORAGE_FULL", message: "database is full" };
    device.publish(
      "devices/full-1/up/telemetry",
      Buffer.from(getCodec("cbor").encodeUp("telemetry", { r: { t: 1 } })),
      {
        qos: 1,
      },
    );
    await waitUntil(() => inbox.length > 0);
    await endClient(device, true);
    const lines = logger.lines.filter((l) => l.level === "debug" && l.msg === "error frame to device");
    assert.deepEqual(
      lines.map((l) => l.obj),
      [
        {
          device: "full-1",
          topic: "devices/full-1/up/telemetry",
          codec: undefined,
          frame: { code: "BRIDGE_ERR_STORAGE_FULL", msg: "database is full" },
        },
      ],
    );
  } finally {
    await tb.close();
  }
});
