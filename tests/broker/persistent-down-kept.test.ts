/**
 * A persistent session (clean: false) that ends while QoS 1 down frames wait behind the one aedes is storing: aedes
 * resends the stored one at the device's next session ([MQTT-4.4.0-1]), and the ones behind it must follow it there,
 * in order, rather than be lost (broker/offline-down-queue.ts). QoS 0 frames are not resent; a clean session and a
 * removed device keep nothing, and what is kept has a bound per device.
 */
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import mqtt, { type MqttClient } from "mqtt";
import type { DownMessage } from "../../codecs/frames.ts";
import { createDeviceRegistry } from "../../broker/index.ts";
import { MAX_QUEUED_DOWN_PER_DEVICE } from "../../broker/offline-down-queue.ts";
import { ManualClock } from "../support/manual-clock.ts";
import {
  collect,
  connectRaw,
  endClient,
  type RawDevice,
  startTestBroker,
  type TestBroker,
  waitUntil,
  warned,
} from "./helpers.ts";

const command = (id: string): DownMessage => ({ channel: "cmd", frame: { id, n: "blink" } });
const chunk = (id: string, seq: number, text = `t${seq}`): DownMessage => ({
  channel: "reason",
  frame: { id, seq, text },
});
const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Connects a provisioned device over raw MQTT with a session, subscribes to its down topics at QoS 1 and stops reading;
 * then fills its socket with QoS 0 chunks, so that aedes writes `c1` and waits for a drain that does not come, and
 * sends `behind` after it: those wait in the session's queue behind `c1`.
 */
async function stallBehindCommand(
  tb: TestBroker,
  id: string,
  secret: string,
  behind: DownMessage[],
  clean = false,
): Promise<RawDevice> {
  const device = await connectRaw(tb.port, { clientId: id, username: id, password: Buffer.from(secret), clean });
  device.burst([{ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: `devices/${id}/down/#`, qos: 1 }] }]);
  await waitUntil(() => device.packets.some((p) => p.cmd === "suback"));
  await waitUntil(() => tb.broker.isOnline(id));
  device.socket.pause();
  const transport = tb.host.transportOf(id);
  const out = tb.broker.stats().messagesOut;
  const big = "x".repeat(60_000);
  for (let seq = 0; seq < 400; seq++) transport.send(chunk("big", seq, big), { qos: 0 });
  transport.send(command("c1"), { qos: 1 });
  for (const message of behind) transport.send(message, { qos: message.channel === "cmd" ? 1 : 0 });
  // aedes writes the chunks it took and the command on later ticks; what is behind the command stays behind it.
  await waitUntil(() => tb.broker.stats().messagesOut >= out + 401);
  await pause(50);
  if (!clean) assert.equal(tb.broker.stats().messagesOut, out + 401, "the frames behind the command wait");
  return device;
}

/** Connects with mqtt.js, collecting from the first packet on: the resent frames come right behind the CONNACK. */
async function reconnect(
  tb: TestBroker,
  id: string,
  secret: string,
  clean = false,
): Promise<{ client: MqttClient; inbox: ReturnType<typeof collect> }> {
  const client = mqtt.connect(tb.url, {
    clientId: id,
    username: id,
    password: secret,
    clean,
    reconnectPeriod: 0,
    protocolVersion: 4,
  });
  const inbox = collect(client);
  await new Promise<void>((resolve, reject) => {
    client.once("connect", () => resolve());
    client.once("error", reject);
  });
  return { client, inbox };
}

/** The `down/cmd` ids a device received, in order. */
function commandIds(inbox: ReturnType<typeof collect>): string[] {
  return inbox
    .filter((m) => m.topic.endsWith("/down/cmd"))
    .map((m) => (JSON.parse(m.payload.toString("utf8")) as { id: string }).id);
}

describe("QoS 1 frames waiting behind a stored one when a persistent session ends", () => {
  let tb: TestBroker;
  before(async () => {
    tb = await startTestBroker();
  });
  after(() => tb.close());

  test("reach the device's next session after the stored one, in order; QoS 0 ones are dropped", async () => {
    const id = "kept-next";
    const secret = await tb.addDevice(id, "json");
    const dropped = tb.broker.stats().downDropped;
    const device = await stallBehindCommand(tb, id, secret, [command("c2"), chunk("behind", 0), command("c3")]);
    device.socket.destroy();
    await tb.host.waitFor(() => tb.host.closes(id).length === 1);
    const { client, inbox } = await reconnect(tb, id, secret);
    try {
      await waitUntil(() => commandIds(inbox).length >= 3);
      await pause(50);
      assert.deepEqual(commandIds(inbox), ["c1", "c2", "c3"]);
      assert.equal(inbox.filter((m) => m.topic.endsWith("/down/reason")).length, 0, "QoS 0 frames are not resent");
      assert.deepEqual(
        inbox.map((m) => m.qos),
        [1, 1, 1],
      );
      // aedes had written c1 before the session ended ([MQTT-3.3.1-1]); c2 and c3 reach the device for the first time.
      assert.deepEqual(
        inbox.map((m) => m.dup),
        [true, false, false],
      );
      assert.equal(tb.broker.stats().downDropped, dropped + 1, "only the QoS 0 frame behind is dropped");
    } finally {
      await endClient(client);
    }
    // Acknowledged, they leave the queue (aedes finds each by the id it wrote it with): the next session gets none.
    const next = await reconnect(tb, id, secret);
    try {
      await pause(100);
      assert.deepEqual(commandIds(next.inbox), []);
    } finally {
      await endClient(next.client);
    }
  });

  test("reach the session that took the old one over, in order", async () => {
    const id = "kept-takeover";
    const secret = await tb.addDevice(id, "json");
    const device = await stallBehindCommand(tb, id, secret, [command("c2"), command("c3")]);
    try {
      // The old connection stays open: the new CONNECT takes its session over.
      const { client, inbox } = await reconnect(tb, id, secret);
      try {
        await waitUntil(() => commandIds(inbox).length >= 3);
        await pause(50);
        assert.deepEqual(commandIds(inbox), ["c1", "c2", "c3"]);
        assert.deepEqual(
          tb.host.closes(id).map((c) => c.reason),
          ["takeover"],
        );
        // A frame the agent sends the new session comes after them.
        tb.host.transportOf(id).send(command("c4"), { qos: 1 });
        await waitUntil(() => commandIds(inbox).length === 4);
        assert.deepEqual(commandIds(inbox), ["c1", "c2", "c3", "c4"]);
      } finally {
        await endClient(client);
      }
    } finally {
      device.socket.destroy();
    }
  });

  test("are discarded when the device comes back with a clean session", async () => {
    const id = "kept-then-clean";
    const secret = await tb.addDevice(id, "json");
    const device = await stallBehindCommand(tb, id, secret, [command("c2"), command("c3")]);
    device.socket.destroy();
    await tb.host.waitFor(() => tb.host.closes(id).length === 1);
    const { client, inbox } = await reconnect(tb, id, secret, true);
    try {
      await pause(100);
      assert.deepEqual(commandIds(inbox), [], "[MQTT-3.1.2-6]: a clean session starts without the old one's state");
    } finally {
      await endClient(client);
    }
  });

  test("a clean session keeps nothing for the next one", async () => {
    const id = "clean-kept";
    const secret = await tb.addDevice(id, "json");
    const device = await stallBehindCommand(tb, id, secret, [command("c2"), command("c3")], true);
    device.socket.destroy();
    await tb.host.waitFor(() => tb.host.closes(id).length === 1);
    const { client, inbox } = await reconnect(tb, id, secret);
    try {
      await pause(100);
      assert.deepEqual(commandIds(inbox), []);
    } finally {
      await endClient(client);
    }
  });

  test("a removed device's frames do not reach a device provisioned again under its id", async () => {
    const id = "kept-removed";
    const secret = await tb.addDevice(id, "json");
    const dropped = tb.broker.stats().downDropped;
    const device = await stallBehindCommand(tb, id, secret, [command("c2"), command("c3")]);
    assert.equal(tb.broker.endSessions(id, "removed"), 1);
    await tb.host.waitFor(() => tb.host.closes(id).length === 1);
    await waitUntil(() => tb.broker.stats().downDropped === dropped + 2);
    device.socket.destroy();
    assert.equal(tb.registry.remove(id), true);
    const again = await tb.addDevice(id, "json");
    const { client, inbox } = await reconnect(tb, id, again);
    try {
      await pause(100);
      assert.deepEqual(commandIds(inbox), [], "neither the stored command nor those behind it");
    } finally {
      await endClient(client);
    }
  });

  test("a device removed while offline loses what its offline queue held", async () => {
    const id = "kept-removed-offline";
    const secret = await tb.addDevice(id, "json");
    const device = await stallBehindCommand(tb, id, secret, [command("c2"), command("c3")]);
    device.socket.destroy();
    await tb.host.waitFor(() => tb.host.closes(id).length === 1);
    await waitUntil(() => !tb.broker.isOnline(id));
    assert.equal(tb.broker.endSessions(id, "removed"), 0, "no session to end");
    assert.equal(tb.registry.remove(id), true);
    const again = await tb.addDevice(id, "json");
    const { client, inbox } = await reconnect(tb, id, again);
    try {
      await pause(100);
      assert.deepEqual(commandIds(inbox), []);
    } finally {
      await endClient(client);
    }
  });

  test(`at most ${MAX_QUEUED_DOWN_PER_DEVICE} frames kept per device; the rest dropped, counted, warned`, async () => {
    const id = "kept-bound";
    const secret = await tb.addDevice(id, "json");
    const over = 5;
    const behind = Array.from({ length: MAX_QUEUED_DOWN_PER_DEVICE + over - 1 }, (_, i) => command(`b${i}`));
    const dropped = tb.broker.stats().downDropped;
    const device = await stallBehindCommand(tb, id, secret, behind);
    device.socket.destroy();
    await tb.host.waitFor(() => tb.host.closes(id).length === 1);
    await waitUntil(() => tb.broker.stats().downDropped === dropped + over);
    const { client, inbox } = await reconnect(tb, id, secret);
    try {
      await waitUntil(() => commandIds(inbox).length >= MAX_QUEUED_DOWN_PER_DEVICE);
      await pause(50);
      // The stored command counts: it is in the device's queue already. The earliest frames are kept.
      assert.deepEqual(commandIds(inbox), [
        "c1",
        ...behind.slice(0, MAX_QUEUED_DOWN_PER_DEVICE - 1).map((m) => (m.frame as { id: string }).id),
      ]);
      const lines = warned(tb, "device's offline queue is full; down frames dropped");
      assert.equal(lines.length, 1);
      assert.equal(lines[0]?.device, id);
      assert.equal(lines[0]?.dropped, over);
      assert.equal(lines[0]?.max, MAX_QUEUED_DOWN_PER_DEVICE);
      assert.equal(tb.broker.stats().limitBreaches.BRIDGE_ERR_DOWN_QUEUE_FULL, over, "every refused frame counted");
    } finally {
      await endClient(client);
    }
  });
});

describe("a device removed by another process", () => {
  test("loses the frames of the session the registry watch ended, and its offline queue", async () => {
    const clock = new ManualClock();
    const tb = await startTestBroker({ clock, registryCheckMs: 500 });
    // Another process (the CLI) on the same registry file.
    const cli = createDeviceRegistry({ path: path.join(tb.dir, "registry.db"), scrypt: { N: 1024, r: 8, p: 1 } });
    try {
      const id = "kept-cli-removed";
      const secret = await tb.addDevice(id, "json");
      const dropped = tb.broker.stats().downDropped;
      const device = await stallBehindCommand(tb, id, secret, [command("c2"), command("c3")]);
      // Removed and provisioned again (a leaked secret): the watch ends the old session as `removed`.
      assert.equal(cli.remove(id), true);
      const added = await cli.add(id, { codec: "json" });
      assert.equal(added.status, "created");
      await clock.advance(500);
      await tb.host.waitFor(() => tb.host.closes(id).length === 1);
      assert.equal(tb.host.closes(id)[0]?.reason, "removed");
      await waitUntil(() => tb.broker.stats().downDropped === dropped + 2);
      device.socket.destroy();
      const { client, inbox } = await reconnect(tb, id, added.status === "created" ? added.secret : "");
      try {
        await pause(100);
        assert.deepEqual(commandIds(inbox), []);
      } finally {
        await endClient(client);
      }
    } finally {
      cli.close();
      await tb.close();
    }
  });
});
