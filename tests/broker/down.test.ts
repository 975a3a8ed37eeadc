import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { DownMessage, Value } from "../../codecs/frames.ts";
import { CODEC_NAMES, getCodec } from "../../codecs/index.ts";
import { isWellFormedText } from "../../codecs/text-utf8.ts";
import { ManualClock } from "../support/manual-clock.ts";
import {
  collect,
  connectDevice,
  endClient,
  startTestBroker,
  subscribe,
  type TestBroker,
  waitUntil,
} from "./helpers.ts";

const frames: Array<{ message: DownMessage; qos: 0 | 1 }> = [
  { message: { channel: "cmd", frame: { id: "c1", n: "reboot", a: { delay: 5 }, exp: 1_700_000_100_000 } }, qos: 1 },
  { message: { channel: "rpc", frame: { id: "r1", ok: true, res: [1, "two"] } }, qos: 1 },
  { message: { channel: "reason", frame: { id: "q1", seq: 0, text: "Hel" } }, qos: 0 },
  { message: { channel: "reason", frame: { id: "q1", seq: 1, fin: true, fr: "stop", u: { p: 10, c: 2 } } }, qos: 1 },
  { message: { channel: "error", frame: { code: "BRIDGE_ERR_X", msg: "nope", id: "r2" } }, qos: 0 },
  { message: { channel: "state", frame: { v: 3, d: { led: "on" } } }, qos: 0 },
];

describe("broker down frames", () => {
  let tb: TestBroker;

  before(async () => {
    // No grace period: a frame for an unsubscribed topic is dropped at once (the grace is tested below).
    tb = await startTestBroker({ subscribeGraceMs: 0 });
  });
  after(() => tb.close());

  for (const codecName of CODEC_NAMES) {
    test(`a ${codecName} device receives every down frame in ${codecName} with the QoS of its channel`, async () => {
      const id = `down-${codecName}`;
      const secret = await tb.addDevice(id, codecName);
      const client = await connectDevice(tb.url, { clientId: id, username: id, password: secret });
      try {
        const received = collect(client);
        await subscribe(client, `devices/${id}/down/#`);
        const codec = getCodec(codecName);
        const transport = tb.host.transportOf(id);
        for (const { message } of frames) transport.send(message, { qos: 0 });
        transport.sendProtocol({
          type: "identity",
          name: "DeviceAgent",
          agent: id,
          protocolVersion: 1,
          serverTime: 42,
        });
        transport.sendProtocol({ type: "state", state: { mode: "eco" } });
        await waitUntil(() => received.length === frames.length + 2);
        frames.forEach(({ message, qos }, i) => {
          const got = received[i];
          assert.equal(got.topic, `devices/${id}/down/${message.channel}`);
          assert.equal(got.qos, qos, `${message.channel} QoS`);
          assert.deepEqual(codec.decodeDown(message.channel, got.payload), { ok: true, frame: message.frame });
        });
        const identity = received[frames.length];
        assert.equal(identity.topic, `devices/${id}/down/identity`);
        assert.deepEqual(codec.decodeDown("identity", identity.payload), {
          ok: true,
          frame: { name: "DeviceAgent", id, pv: 1, t: 42 },
        });
        const state = received[frames.length + 1];
        assert.equal(state.topic, `devices/${id}/down/state`);
        assert.deepEqual(codec.decodeDown("state", state.payload), {
          ok: true,
          frame: { v: 0, d: { mode: "eco" }, full: true },
        });
        if (codec.binary) {
          for (const m of received) assert.notEqual(m.payload[0], 0x7b, "a binary device never receives JSON text");
        }
      } finally {
        await endClient(client);
      }
    });
  }

  test("a down frame reaches only a session subscribed to it, with the granted QoS", async () => {
    const secret = await tb.addDevice("partial");
    const client = await connectDevice(tb.url, { clientId: "partial", username: "partial", password: secret });
    try {
      const received = collect(client);
      await subscribe(client, "devices/partial/down/cmd", 0);
      const transport = tb.host.transportOf("partial");
      const dropped = tb.broker.stats().downDropped;
      transport.send({ channel: "rpc", frame: { id: "r", ok: true } }, { qos: 1 });
      transport.send({ channel: "cmd", frame: { id: "c", n: "x" } }, { qos: 1 });
      await waitUntil(() => received.length === 1);
      assert.equal(received[0].topic, "devices/partial/down/cmd");
      assert.equal(received[0].qos, 0);
      assert.equal(tb.broker.stats().downDropped, dropped + 1);
    } finally {
      await endClient(client);
    }
  });

  test("an rpc result the device's codec cannot carry is answered with ok false and the reason, not dropped", async () => {
    const secret = await tb.addDevice("deep");
    const client = await connectDevice(tb.url, { clientId: "deep", username: "deep", password: secret });
    try {
      const received = collect(client);
      await subscribe(client, "devices/deep/down/rpc", 1);
      let deep: Value = "leaf";
      for (let i = 0; i < 64; i++) deep = { d: deep };
      const transport = tb.host.transportOf("deep");
      transport.send({ channel: "rpc", frame: { id: "r1", ok: true, res: deep } }, { qos: 1 });
      await waitUntil(() => received.length === 1);
      const decoded = getCodec("cbor").decodeDown("rpc", received[0].payload);
      assert.ok(decoded.ok, "the answer decodes as an rpc frame");
      const answer = decoded.frame as { id: string; ok: boolean; err: string };
      assert.equal(answer.id, "r1");
      assert.equal(answer.ok, false);
      assert.match(answer.err, /^result does not encode: /);
    } finally {
      await endClient(client);
    }
  });

  test("the reason of an unencodable rpc result is cut short without splitting a character", async () => {
    const secret = await tb.addDevice("cut");
    const client = await connectDevice(tb.url, { clientId: "cut", username: "cut", password: secret });
    try {
      const received = collect(client);
      await subscribe(client, "devices/cut/down/rpc", 1);
      // The reason names the key path: 60 characters of prefix and 139 of key put the 200-character cut between
      // the two halves of the first emoji.
      const key = `${"k".repeat(139)}${"\u{1F600}".repeat(30)}`;
      const transport = tb.host.transportOf("cut");
      transport.send({ channel: "rpc", frame: { id: "r2", ok: true, res: { [key]: "\ud800" } } }, { qos: 1 });
      await waitUntil(() => received.length === 1);
      const decoded = getCodec("cbor").decodeDown("rpc", received[0].payload);
      assert.ok(decoded.ok, "the answer decodes as an rpc frame");
      const answer = decoded.frame as { id: string; ok: boolean; err: string };
      assert.equal(answer.id, "r2");
      assert.equal(answer.ok, false);
      assert.equal(answer.err.length, 199);
      assert.ok(isWellFormedText(answer.err));
    } finally {
      await endClient(client);
    }
  });

  test("frames sent after the session closed are dropped and counted, never thrown", async () => {
    const secret = await tb.addDevice("gone");
    const client = await connectDevice(tb.url, { clientId: "gone", username: "gone", password: secret });
    const transport = tb.host.transportOf("gone");
    await endClient(client);
    await tb.host.waitFor(() => tb.host.closes("gone").length === 1);
    const dropped = tb.broker.stats().downDropped;
    transport.send({ channel: "cmd", frame: { id: "c", n: "x" } }, { qos: 1 });
    assert.equal(tb.broker.stats().downDropped, dropped + 1);
  });
});

describe("broker down frames before the device subscribed", () => {
  test("frames the agent sent before the device subscribed arrive after its SUBSCRIBE, in order", async () => {
    const clock = new ManualClock();
    const tb = await startTestBroker({ clock, subscribeGraceMs: 5000 });
    try {
      const secret = await tb.addDevice("early", "json");
      // The agent greets the device as the session opens (identity), as the runtime does for JSON connections.
      tb.host.onOpen = (init) =>
        init.transport.sendProtocol({
          type: "identity",
          name: "DeviceAgent",
          agent: "early",
          protocolVersion: 1,
          serverTime: 7,
        });
      const client = await connectDevice(tb.url, { clientId: "early", username: "early", password: secret });
      tb.host.onOpen = undefined;
      try {
        const inbox = collect(client);
        const transport = tb.host.transportOf("early");
        transport.send({ channel: "cmd", frame: { id: "c0", n: "first" } }, { qos: 1 });
        await new Promise((resolve) => setTimeout(resolve, 50));
        assert.equal(inbox.length, 0, "nothing is sent before the device subscribed");
        await subscribe(client, "devices/early/down/#");
        await waitUntil(() => inbox.length === 2);
        assert.deepEqual(
          inbox.map((m) => [m.topic, JSON.parse(m.payload.toString("utf8"))]),
          [
            ["devices/early/down/identity", { name: "DeviceAgent", id: "early", pv: 1, t: 7 }],
            ["devices/early/down/cmd", { id: "c0", n: "first" }],
          ],
        );
      } finally {
        await endClient(client);
      }
    } finally {
      await tb.close();
    }
  });

  test("frames held for a topic the device never subscribes to are dropped and counted when the grace period ends", async () => {
    const clock = new ManualClock();
    const tb = await startTestBroker({ clock, subscribeGraceMs: 5000 });
    try {
      const secret = await tb.addDevice("partial-sub", "cbor");
      const client = await connectDevice(tb.url, {
        clientId: "partial-sub",
        username: "partial-sub",
        password: secret,
      });
      try {
        const inbox = collect(client);
        const transport = tb.host.transportOf("partial-sub");
        const dropped = tb.broker.stats().downDropped;
        transport.send({ channel: "rpc", frame: { id: "r", ok: true } }, { qos: 1 });
        await subscribe(client, "devices/partial-sub/down/cmd");
        assert.equal(tb.broker.stats().downDropped, dropped, "held, not yet dropped");
        clock.advanceSync(5000);
        assert.equal(tb.broker.stats().downDropped, dropped + 1);
        // After the grace period an unsubscribed frame is dropped at once.
        transport.send({ channel: "rpc", frame: { id: "r2", ok: true } }, { qos: 1 });
        assert.equal(tb.broker.stats().downDropped, dropped + 2);
        transport.send({ channel: "cmd", frame: { id: "c", n: "x" } }, { qos: 1 });
        await waitUntil(() => inbox.length === 1);
        assert.equal(inbox[0].topic, "devices/partial-sub/down/cmd");
      } finally {
        await endClient(client);
      }
    } finally {
      await tb.close();
    }
  });
});
