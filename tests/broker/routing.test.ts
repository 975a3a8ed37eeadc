import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import mqtt, { type MqttClient } from "mqtt";
import { getCodec } from "../../codecs/index.ts";
import {
  collect,
  connectDevice,
  connectRaw,
  endClient,
  publish,
  publishPacket,
  startTestBroker,
  subscribe,
  type TestBroker,
  waitUntil,
} from "./helpers.ts";

const cbor = getCodec("cbor");
const json = getCodec("json");

describe("broker routing of up messages", () => {
  let tb: TestBroker;
  let client: MqttClient;
  let received: ReturnType<typeof collect>;

  before(async () => {
    tb = await startTestBroker();
    const secret = await tb.addDevice("dev-a");
    client = await connectDevice(tb.url, { clientId: "dev-a", username: "dev-a", password: secret });
    received = collect(client);
    await subscribe(client, "devices/dev-a/down/#");
  });
  after(async () => {
    await endClient(client, true);
    await tb.close();
  });

  test("an up telemetry frame is decoded in the device's codec and delivered on its connection", async () => {
    await publish(client, "devices/dev-a/up/telemetry", cbor.encodeUp("telemetry", { ts: 5, r: { t: 21.5 } }));
    const last = tb.host.deliveries("dev-a").at(-1);
    assert.ok(last);
    assert.deepEqual(last.message, { channel: "telemetry", frame: { ts: 5, r: { t: 21.5 } } });
    assert.equal(last.connectionId, tb.host.opens("dev-a").at(-1)?.connectionId);
  });

  test("a codec suffix on the topic decodes that one message in the named codec", async () => {
    await publish(client, "devices/dev-a/up/telemetry/json", json.encodeUp("telemetry", { r: { h: 40 } }));
    assert.deepEqual(tb.host.deliveries("dev-a").at(-1)?.message, { channel: "telemetry", frame: { r: { h: 40 } } });
  });

  test("the PUBACK of a QoS 1 message is sent only after the host's done resolved", async () => {
    tb.host.hold = true;
    const before = tb.host.deliveries("dev-a").length;
    let acked = false;
    const pubacks: number[] = [];
    const onPacket = (packet: { cmd: string; messageId?: number }): void => {
      if (packet.cmd === "puback") pubacks.push(packet.messageId ?? -1);
    };
    client.on("packetreceive", onPacket);
    try {
      const sent = publish(client, "devices/dev-a/up/telemetry", cbor.encodeUp("telemetry", { r: { n: 1 } })).then(
        () => {
          acked = true;
        },
      );
      await tb.host.waitFor(() => tb.host.deliveries("dev-a").length === before + 1);
      // The event is in the agent's hands but not committed: no PUBACK may arrive, however long we wait.
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.equal(acked, false);
      assert.deepEqual(pubacks, []);
      tb.host.release();
      await sent;
      assert.equal(acked, true);
      assert.equal(pubacks.length, 1);
    } finally {
      client.off("packetreceive", onPacket);
      tb.host.release();
    }
  });

  test("a full mailbox holds the PUBACK and retries after ready, keeping arrival order", async () => {
    tb.host.setMailboxFull(true);
    const before = tb.host.deliveries("dev-a").length;
    const refusalsBefore = tb.host.fullRefusals;
    let acked = 0;
    const sends = [1, 2, 3].map((n) =>
      publish(client, "devices/dev-a/up/telemetry", cbor.encodeUp("telemetry", { r: { n } })).then(() => {
        acked++;
      }),
    );
    try {
      await waitUntil(() => tb.host.fullRefusals > refusalsBefore);
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(acked, 0);
      assert.equal(tb.host.deliveries("dev-a").length, before);
    } finally {
      tb.host.setMailboxFull(false);
    }
    await Promise.all(sends);
    const delivered = tb.host.deliveries("dev-a").slice(before);
    assert.deepEqual(
      delivered.map((d) => d.message.frame),
      [1, 2, 3].map((n) => ({ r: { n } })),
    );
  });

  test("up messages are consumed by the bridge and never relayed to subscribers", async () => {
    const count = received.length;
    await publish(client, "devices/dev-a/up/telemetry", cbor.encodeUp("telemetry", { r: { x: 1 } }));
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(received.filter((m) => m.topic.includes("/up/")).length, 0);
    assert.equal(received.length, count);
  });

  test("a hello's codec becomes the connection's codec and is stored with the firmware", async () => {
    await publish(client, "devices/dev-a/up/hello", cbor.encodeUp("hello", { fw: "2.0.1", codec: "json" }));
    assert.equal(tb.registry.get("dev-a")?.codec, "json");
    assert.equal(tb.registry.get("dev-a")?.firmware, "2.0.1");
    // Up frames without a suffix are now read as JSON, and down frames are JSON.
    await publish(client, "devices/dev-a/up/telemetry", json.encodeUp("telemetry", { r: { j: true } }));
    assert.deepEqual(tb.host.deliveries("dev-a").at(-1)?.message.frame, { r: { j: true } });
    tb.host.transportOf("dev-a").send({ channel: "cmd", frame: { id: "c1", n: "blink" } }, { qos: 1 });
    await waitUntil(() => received.some((m) => m.topic === "devices/dev-a/down/cmd"));
    const cmd = received.find((m) => m.topic === "devices/dev-a/down/cmd")!;
    assert.deepEqual(JSON.parse(cmd.payload.toString("utf8")), { id: "c1", n: "blink" });
    assert.equal(cmd.qos, 1);
    // Back to CBOR for the other tests.
    await publish(client, "devices/dev-a/up/hello", json.encodeUp("hello", { fw: "2.0.1", codec: "cbor" }));
    assert.equal(tb.registry.get("dev-a")?.codec, "cbor");
  });

  test("an event the agent failed to apply is acknowledged and answered with an error frame", async () => {
    tb.host.deliverResult = { status: "failed", code: "BRIDGE_ERR_AGENT_HANDLER", message: "boom" };
    try {
      const count = received.length;
      await publish(client, "devices/dev-a/up/rpc", cbor.encodeUp("rpc", { id: "r9", m: "explode" }));
      await waitUntil(() => received.length > count);
      const err = received.at(-1)!;
      assert.equal(err.topic, "devices/dev-a/down/error");
      assert.deepEqual(cbor.decodeDown("error", err.payload), {
        ok: true,
        frame: { code: "BRIDGE_ERR_AGENT_HANDLER", msg: "boom", id: "r9" },
      });
    } finally {
      tb.host.deliverResult = { status: "committed" };
    }
  });

  test("an event the runtime could not apply (shutting down) is not acknowledged and ends the session", async () => {
    const secret = await tb.addDevice("dev-late");
    const raw = await connectRaw(tb.port, {
      clientId: "dev-late",
      username: "dev-late",
      password: Buffer.from(secret),
    });
    tb.host.deliverResult = {
      status: "failed",
      code: "BRIDGE_ERR_RUNTIME_CLOSED",
      message: "runtime is shutting down",
    };
    try {
      raw.burst([publishPacket("devices/dev-late/up/telemetry", cbor.encodeUp("telemetry", { r: { n: 1 } }), 7)]);
      await raw.closed;
      assert.ok(!raw.packets.some((p) => p.cmd === "puback"), "a message that was not stored is never acknowledged");
    } finally {
      tb.host.deliverResult = { status: "committed" };
    }
  });

  test("an event whose agent was destroyed is not acknowledged: the device is told why and the session ends", async () => {
    const secret = await tb.addDevice("dev-gone");
    const raw = await connectRaw(tb.port, {
      clientId: "dev-gone",
      username: "dev-gone",
      password: Buffer.from(secret),
    });
    raw.burst([{ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: "devices/dev-gone/down/#", qos: 1 }] }]);
    await waitUntil(() => raw.packets.some((p) => p.cmd === "suback"));
    tb.host.deliverResult = { status: "failed", code: "BRIDGE_ERR_AGENT_DESTROYED", message: "agent destroyed" };
    try {
      raw.burst([publishPacket("devices/dev-gone/up/rpc", cbor.encodeUp("rpc", { id: "r1", m: "ping" }), 7)]);
      await raw.closed;
      assert.ok(!raw.packets.some((p) => p.cmd === "puback"), "a message its agent never stored is not acknowledged");
      const errors = raw.packets.flatMap((p) =>
        p.cmd === "publish" && p.topic === "devices/dev-gone/down/error"
          ? [cbor.decodeDown("error", p.payload as Buffer)]
          : [],
      );
      assert.deepEqual(errors, [
        { ok: true, frame: { code: "BRIDGE_ERR_AGENT_DESTROYED", msg: "agent destroyed", id: "r1" } },
      ]);
    } finally {
      tb.host.deliverResult = { status: "committed" };
    }
  });

  test("an event whose agent cannot start is not acknowledged: the device is told why and resends it later", async () => {
    const secret = await tb.addDevice("dev-stuck");
    const raw = await connectRaw(tb.port, {
      clientId: "dev-stuck",
      username: "dev-stuck",
      password: Buffer.from(secret),
    });
    raw.burst([{ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: "devices/dev-stuck/down/#", qos: 1 }] }]);
    await waitUntil(() => raw.packets.some((p) => p.cmd === "suback"));
    const message =
      "agent dev-stuck is not started: its onStart did not settle within callbackTimeoutMs 2 times in a row";
    tb.host.deliverResult = { status: "failed", code: "BRIDGE_ERR_AGENT_START_TIMEOUT", message };
    try {
      raw.burst([publishPacket("devices/dev-stuck/up/telemetry", cbor.encodeUp("telemetry", { r: { n: 1 } }), 7)]);
      await raw.closed;
      assert.ok(!raw.packets.some((p) => p.cmd === "puback"), "a message its agent never ran is not acknowledged");
      const errors = raw.packets.flatMap((p) =>
        p.cmd === "publish" && p.topic === "devices/dev-stuck/down/error"
          ? [cbor.decodeDown("error", p.payload as Buffer)]
          : [],
      );
      assert.deepEqual(errors, [{ ok: true, frame: { code: "BRIDGE_ERR_AGENT_START_TIMEOUT", msg: message } }]);
    } finally {
      tb.host.deliverResult = { status: "committed" };
    }
  });

  test("QoS 0 and QoS 2 up messages are delivered too; QoS 2 completes its handshake after the commit", async () => {
    const before = tb.host.deliveries("dev-a").length;
    await publish(client, "devices/dev-a/up/telemetry", cbor.encodeUp("telemetry", { r: { q: 0 } }), 0);
    await new Promise<void>((resolve, reject) =>
      client.publish(
        "devices/dev-a/up/telemetry",
        Buffer.from(cbor.encodeUp("telemetry", { r: { q: 2 } })),
        { qos: 2 },
        (err) => (err ? reject(err) : resolve()),
      ),
    );
    await waitUntil(() => tb.host.deliveries("dev-a").length === before + 2);
    assert.deepEqual(
      tb.host
        .deliveries("dev-a")
        .slice(before)
        .map((d) => d.message.frame),
      [{ r: { q: 0 } }, { r: { q: 2 } }],
    );
  });

  test("frames the agent sends while the CONNECT is in progress arrive after the CONNACK, exactly once", async () => {
    const secret = await tb.addDevice("dev-p");
    const opts = { clientId: "dev-p", username: "dev-p", password: secret, clean: false };
    const first = await connectDevice(tb.url, opts);
    assert.equal(tb.host.opens("dev-p").at(-1)?.init.context?.clean, false);
    await subscribe(first, "devices/dev-p/down/#");
    await endClient(first);
    // The agent sends a command from onConnect; the persistent session restores the subscription by itself.
    tb.host.onOpen = (init) => init.transport.send({ channel: "cmd", frame: { id: "p", n: "x" } }, { qos: 1 });
    const seen: string[] = [];
    const second = mqtt.connect(tb.url, { ...opts, reconnectPeriod: 0, protocolVersion: 4 });
    second.on("packetreceive", (p) => seen.push(p.cmd));
    try {
      await waitUntil(() => seen.includes("publish"));
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.deepEqual(seen, ["connack", "publish"]);
    } finally {
      tb.host.onOpen = undefined;
      await endClient(second);
    }
  });
});

describe("QoS 2 retransmissions", () => {
  test("a QoS 2 message resent after a reconnect is delivered once, and later messages keep their order", async () => {
    const tb = await startTestBroker();
    try {
      const secret = await tb.addDevice("dev-q2");
      const creds = { clientId: "dev-q2", username: "dev-q2", password: Buffer.from(secret), clean: false };
      const frame = (n: number) => cbor.encodeUp("telemetry", { r: { n } });
      const qos2 = (n: number, messageId: number, dup: boolean) => ({
        ...publishPacket("devices/dev-q2/up/telemetry", frame(n), messageId),
        qos: 2 as const,
        dup,
      });
      const first = await connectRaw(tb.port, creds);
      first.burst([qos2(1, 9, false)]);
      await waitUntil(() => first.packets.some((p) => p.cmd === "pubrec"));
      // The PUBREC was lost with the connection: the device sends the message again, DUP set ([MQTT-4.3.3]).
      first.socket.destroy();
      await tb.host.waitFor(() => tb.host.closes("dev-q2").length === 1);

      const second = await connectRaw(tb.port, creds);
      try {
        second.burst([
          qos2(1, 9, true),
          publishPacket("devices/dev-q2/up/telemetry", frame(2), 10),
          // DUP set, but its first copy never arrived: it is new to the broker and must be delivered.
          qos2(3, 11, true),
        ]);
        await waitUntil(() => second.packets.filter((p) => p.cmd === "pubrec" || p.cmd === "puback").length === 3);
        assert.deepEqual(
          tb.host.deliveries("dev-q2").map((d) => d.message.frame),
          [{ r: { n: 1 } }, { r: { n: 2 } }, { r: { n: 3 } }],
        );
        assert.deepEqual(
          second.packets.filter((p) => p.cmd !== "connack").map((p) => [p.cmd, p.messageId]),
          [
            ["pubrec", 9],
            ["puback", 10],
            ["pubrec", 11],
          ],
        );
      } finally {
        second.socket.destroy();
      }
    } finally {
      await tb.close();
    }
  });
});
