/**
 * A persistent session (clean: false) whose device never acknowledges its QoS 1 down frames: aedes keeps each in its
 * store until the PUBACK, so the broker hands it at most `limits.maxUnackedDownPerDevice` unacknowledged ones, keeps at
 * most MAX_QUEUED_DOWN_PER_DEVICE more waiting, and refuses the rest (broker/down-hand-over.ts). A device that
 * acknowledges, and every other device, sees no difference.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { IPublishPacket } from "mqtt-packet";
import type { DownMessage } from "../../codecs/frames.ts";
import { DOWN_QUEUE_FULL_LINE } from "../../broker/down-hand-over.ts";
import { MAX_QUEUED_DOWN_PER_DEVICE } from "../../broker/offline-down-queue.ts";
import {
  collect,
  connectDevice,
  connectRaw,
  endClient,
  type RawDevice,
  startTestBroker,
  subscribe,
  type TestBroker,
  waitUntil,
  warned,
} from "./helpers.ts";

const WINDOW = 4;
const command = (id: string): DownMessage => ({ channel: "cmd", frame: { id, n: "blink" } });
const commands = (prefix: string, count: number): DownMessage[] =>
  Array.from({ length: count }, (_, i) => command(`${prefix}${i}`));
const idOf = (payload: Buffer): string => (JSON.parse(payload.toString("utf8")) as { id: string }).id;
const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function publishes(device: RawDevice): IPublishPacket[] {
  return device.packets.filter((p): p is IPublishPacket => p.cmd === "publish");
}

/** Connects a provisioned device over raw MQTT (it acknowledges nothing by itself), subscribed to its down topics. */
async function rawDevice(tb: TestBroker, id: string, secret: string, clean = false): Promise<RawDevice> {
  const device = await connectRaw(tb.port, { clientId: id, username: id, password: Buffer.from(secret), clean });
  device.burst([{ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: `devices/${id}/down/#`, qos: 1 }] }]);
  await waitUntil(() => device.packets.some((p) => p.cmd === "suback"));
  await waitUntil(() => tb.broker.isOnline(id));
  return device;
}

/** Acknowledges every frame as it comes until `count` arrived; resolves with their ids, in order. */
async function ackUntil(device: RawDevice, count: number): Promise<string[]> {
  let acked = 0;
  while (acked < count) {
    await waitUntil(() => publishes(device).length > acked);
    const got = publishes(device);
    device.burst(got.slice(acked).map((p) => ({ cmd: "puback", messageId: p.messageId })));
    acked = got.length;
  }
  return publishes(device).map((p) => idOf(p.payload as Buffer));
}

function send(tb: TestBroker, id: string, messages: DownMessage[]): void {
  const transport = tb.host.transportOf(id);
  for (const message of messages) transport.send(message, { qos: 1 });
}

/** A persistent mqtt.js session (it acknowledges every frame at once), subscribed to its down topics. */
async function ackingDevice(tb: TestBroker, id: string) {
  const secret = await tb.addDevice(id, "json");
  const client = await connectDevice(tb.url, { clientId: id, username: id, password: secret, clean: false });
  const inbox = collect(client);
  await subscribe(client, `devices/${id}/down/#`);
  await waitUntil(() => tb.broker.isOnline(id));
  return { client, inbox, ids: () => inbox.map((m) => idOf(m.payload)) };
}

describe("a persistent session that does not acknowledge its down frames", () => {
  let tb: TestBroker;
  before(async () => {
    tb = await startTestBroker({ limits: { maxUnackedDownPerDevice: WINDOW } });
  });
  after(() => tb.close());

  test("holds the window and the bound, refuses the rest; once it acks, every held frame comes, in order", async () => {
    const id = "never-acks";
    const device = await rawDevice(tb, id, await tb.addDevice(id, "json"));
    try {
      const over = 10;
      const sent = commands("c", WINDOW + MAX_QUEUED_DOWN_PER_DEVICE + over);
      const before = tb.broker.stats();
      send(tb, id, sent);
      await waitUntil(() => publishes(device).length === WINDOW);
      await pause(100);
      assert.equal(publishes(device).length, WINDOW, "no more than the window is handed to the device");
      const after = tb.broker.stats();
      assert.equal(after.messagesOut - before.messagesOut, WINDOW);
      assert.equal(after.downDropped - before.downDropped, over, "only what is past the bound is refused");
      assert.equal(after.limitBreaches.BRIDGE_ERR_DOWN_QUEUE_FULL, over);
      const lines = warned(tb, DOWN_QUEUE_FULL_LINE);
      assert.equal(lines.length, 1, "one line per device and interval, not one per refused frame");
      assert.equal(lines[0]?.device, id);
      // In one burst the QoS 1 frames go to aedes one at a time: most were still waiting when the rest was refused.
      assert.equal(Number(lines[0]?.waiting) + Number(lines[0]?.unacked), WINDOW + MAX_QUEUED_DOWN_PER_DEVICE);

      const held = sent.slice(0, WINDOW + MAX_QUEUED_DOWN_PER_DEVICE).map((m) => (m.frame as { id: string }).id);
      assert.deepEqual(await ackUntil(device, held.length), held, "every held frame, in order, once");
      await pause(100);
      assert.equal(publishes(device).length, held.length, "none twice");
      // Acknowledged, the window has room again: a new frame leaves at once.
      const out = tb.broker.stats().messagesOut;
      send(tb, id, [command("next")]);
      assert.equal(tb.broker.stats().messagesOut, out + 1);
      assert.equal(tb.broker.stats().limitBreaches.BRIDGE_ERR_DOWN_QUEUE_FULL, over);
    } finally {
      device.socket.destroy();
    }
  });

  test("does not hold up another device", async () => {
    const stuck = "stuck-neighbour";
    const device = await rawDevice(tb, stuck, await tb.addDevice(stuck, "json"));
    const other = await ackingDevice(tb, "acking-neighbour");
    try {
      send(tb, stuck, commands("s", WINDOW + MAX_QUEUED_DOWN_PER_DEVICE + 5));
      await waitUntil(() => publishes(device).length === WINDOW);
      const sent = commands("o", 50);
      const out = tb.broker.stats().messagesOut;
      send(tb, "acking-neighbour", sent.slice(0, 1));
      assert.equal(tb.broker.stats().messagesOut, out + 1, "handed over at once");
      send(tb, "acking-neighbour", sent.slice(1));
      await waitUntil(() => other.inbox.length === sent.length);
      assert.deepEqual(
        other.ids(),
        sent.map((m) => (m.frame as { id: string }).id),
      );
    } finally {
      device.socket.destroy();
      await endClient(other.client);
    }
  });

  test("a frame that waited and is written at QoS 0 after a resubscription does not stay in the window", async () => {
    // aedes writes a frame at the QoS of the session's filter equal to its topic at the time it writes it: a QoS 1
    // frame that waited while the device resubscribed at QoS 0 would never be acknowledged, its place in the window
    // taken for the rest of the session.
    const id = "resubscribes-qos0";
    const cmdTopic = `devices/${id}/down/cmd`;
    const device = await connectRaw(tb.port, {
      clientId: id,
      username: id,
      password: Buffer.from(await tb.addDevice(id, "json")),
      clean: false,
    });
    const subacks = (): number => device.packets.filter((p) => p.cmd === "suback").length;
    try {
      device.burst([{ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: cmdTopic, qos: 1 }] }]);
      await waitUntil(() => subacks() === 1 && tb.broker.isOnline(id));
      send(tb, id, commands("w", WINDOW * 2));
      await waitUntil(() => publishes(device).length === WINDOW);
      device.burst([{ cmd: "subscribe", messageId: 2, subscriptions: [{ topic: cmdTopic, qos: 0 }] }]);
      await waitUntil(() => subacks() === 2);
      device.burst(publishes(device).map((p) => ({ cmd: "puback", messageId: p.messageId })));
      await waitUntil(() => publishes(device).length === WINDOW * 2);
      assert.ok(
        publishes(device)
          .slice(WINDOW)
          .every((p) => p.qos === 0),
        "the waiting frames are written at QoS 0",
      );
      device.burst([{ cmd: "subscribe", messageId: 3, subscriptions: [{ topic: cmdTopic, qos: 1 }] }]);
      await waitUntil(() => subacks() === 3);
      send(tb, id, [command("after")]);
      await waitUntil(() => publishes(device).length === WINDOW * 2 + 1);
      assert.equal(idOf(publishes(device)[WINDOW * 2]?.payload as Buffer), "after");
    } finally {
      device.socket.destroy();
    }
  });

  test("counts the frames aedes resends at its next session against the window", async () => {
    // Otherwise each session of a device that never acknowledges would leave a window's worth more in aedes' store.
    const id = "never-acks-again";
    const secret = await tb.addDevice(id, "json");
    const first = await rawDevice(tb, id, secret);
    send(tb, id, commands("a", WINDOW));
    await waitUntil(() => publishes(first).length === WINDOW);
    first.socket.destroy();
    await waitUntil(() => !tb.broker.isOnline(id));
    const second = await rawDevice(tb, id, secret);
    try {
      await waitUntil(() => publishes(second).length === WINDOW);
      send(tb, id, [command("b0")]);
      await pause(100);
      assert.deepEqual(
        publishes(second).map((p) => idOf(p.payload as Buffer)),
        ["a0", "a1", "a2", "a3"],
        "the new frame waits: the window is full of resent ones",
      );
      second.burst([{ cmd: "puback", messageId: publishes(second)[0]?.messageId }]);
      await waitUntil(() => publishes(second).length === WINDOW + 1);
      assert.equal(idOf(publishes(second)[WINDOW]?.payload as Buffer), "b0");
    } finally {
      second.socket.destroy();
    }
  });
});

describe("the window of unacknowledged down frames", () => {
  let tb: TestBroker;
  before(async () => {
    tb = await startTestBroker({ limits: { maxUnackedDownPerDevice: WINDOW } });
  });
  after(() => tb.close());

  test("lets a device that acknowledges have a burst of window and bound at once, in order, none refused", async () => {
    const device = await ackingDevice(tb, "acks");
    try {
      const before = tb.broker.stats();
      const sent = commands("c", WINDOW + MAX_QUEUED_DOWN_PER_DEVICE);
      send(tb, "acks", sent.slice(0, 1));
      assert.equal(tb.broker.stats().messagesOut, before.messagesOut + 1, "the first frame is handed over at once");
      send(tb, "acks", sent.slice(1));
      await waitUntil(() => device.inbox.length === sent.length);
      await pause(50);
      assert.deepEqual(
        device.ids(),
        sent.map((m) => (m.frame as { id: string }).id),
      );
      assert.equal(tb.broker.stats().downDropped, before.downDropped);
      assert.equal(tb.broker.stats().limitBreaches.BRIDGE_ERR_DOWN_QUEUE_FULL, undefined);
    } finally {
      await endClient(device.client);
    }
  });

  test("does not apply to a clean session: aedes keeps none of its frames once written", async () => {
    const id = "clean-never-acks";
    const device = await rawDevice(tb, id, await tb.addDevice(id, "json"), true);
    try {
      send(tb, id, commands("c", WINDOW * 3));
      await waitUntil(() => publishes(device).length === WINDOW * 3);
    } finally {
      device.socket.destroy();
    }
  });
});
