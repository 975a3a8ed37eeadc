/**
 * [MQTT-3.3.1-1]: a PUBLISH the broker delivers again (a persistent session's unacknowledged QoS 1 frame, resent at the
 * device's next connection) carries DUP 1, with its packet id and payload; a first delivery, and any QoS 0 frame,
 * carries DUP 0 (broker/redelivery-dup.ts). mosquitto, run the same way when it is installed, is the reference.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import mqtt, { type IClientOptions } from "mqtt";
import type { IPublishPacket } from "mqtt-packet";
import { isRedelivery, markRedeliveries, type QueuedFrame } from "../../broker/redelivery-dup.ts";
import type { DownMessage } from "../../codecs/frames.ts";
import { missingDebianPackage } from "../support/debian-package.ts";
import { startMosquitto } from "../firmware-sim/helpers/mosquitto.ts";
import {
  connectRecording,
  endClient,
  type RecordingDevice,
  startTestBroker,
  type TestBroker,
  waitUntil,
} from "./helpers.ts";

/** What the scenario needs of a broker: where to connect as the device, and a way to send it a frame. */
interface Target {
  url: string;
  device: IClientOptions;
  subscribe(session: RecordingDevice): Promise<void>;
  send(payload: string, qos: 0 | 1): void;
  /** The text `send` was given, read back from a frame. */
  textOf(packet: IPublishPacket | undefined): string;
  /** Resolves once the broker has seen the device's connection end. */
  gone(): Promise<void>;
}

function utf8(packet: IPublishPacket | undefined): string {
  return Buffer.from(packet?.payload ?? "").toString("utf8");
}

/**
 * A QoS 0 frame, then a QoS 1 frame the device does not acknowledge; the device drops its connection and connects
 * again: the QoS 1 frame comes again with DUP set, its packet id and its payload. A frame sent then is a first
 * delivery.
 */
async function resendAfterReconnect(target: Target): Promise<void> {
  const text = (packet: IPublishPacket | undefined): string => target.textOf(packet);
  const first = await connectRecording(target.url, target.device, true);
  try {
    await target.subscribe(first);
    target.send("zero", 0);
    target.send("one", 1);
    await waitUntil(() => first.publishes.length === 2);
  } finally {
    await endClient(first.client, true);
  }
  await target.gone();
  const [zero, one] = first.publishes;
  assert.deepEqual([text(zero), zero?.qos, zero?.dup], ["zero", 0, false], "a QoS 0 frame is never DUP");
  assert.deepEqual([text(one), one?.qos, one?.dup], ["one", 1, false], "a first delivery is not DUP");
  const second = await connectRecording(target.url, target.device, false);
  try {
    await waitUntil(() => second.publishes.length === 1);
    const again = second.publishes[0];
    assert.deepEqual(
      [text(again), again?.qos, again?.dup, again?.messageId],
      ["one", 1, true, one?.messageId],
      "[MQTT-3.3.1-1]: the resent frame has DUP set, its packet id and its payload",
    );
    target.send("two", 1);
    target.send("zero again", 0);
    await waitUntil(() => second.publishes.length === 3);
    assert.deepEqual(
      second.publishes.slice(1).map((p) => [text(p), p.qos, p.dup]),
      [
        ["two", 1, false],
        ["zero again", 0, false],
      ],
    );
  } finally {
    await endClient(second.client);
  }
  await target.gone();
  // Acknowledged in the second session: nothing is resent in a third.
  const third = await connectRecording(target.url, target.device, false);
  try {
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.deepEqual(third.publishes, []);
  } finally {
    await endClient(third.client);
  }
}

describe("DUP on a persistent session's resent frames", () => {
  let tb: TestBroker;
  before(async () => {
    tb = await startTestBroker();
  });
  after(() => tb.close());

  test("the bridge's broker sets DUP on the resent QoS 1 frame only", async () => {
    const id = "dup-resend";
    const secret = await tb.addDevice(id, "json");
    let ended = 0;
    const frame = (payload: string): DownMessage => ({ channel: "error", frame: { code: "X", msg: payload } });
    await resendAfterReconnect({
      url: tb.url,
      device: { clientId: id, username: id, password: secret },
      async subscribe(session) {
        await session.client.subscribeAsync(`devices/${id}/down/#`, { qos: 1 });
        await waitUntil(() => tb.broker.isOnline(id));
      },
      send(payload, qos) {
        tb.host.transportOf(id).send(frame(payload), { qos });
      },
      textOf: (packet) => (JSON.parse(utf8(packet)) as { msg: string }).msg,
      async gone() {
        ended++;
        await tb.host.waitFor(() => tb.host.closes(id).length === ended);
      },
    });
  });

  test("mosquitto, the reference, does the same", async (t) => {
    const missing = missingDebianPackage("mosquitto", "mosquitto");
    if (missing) {
      t.skip(missing);
      return;
    }
    const mosquitto = await startMosquitto();
    const sender = await mqtt.connectAsync(mosquitto.url, { reconnectPeriod: 0, protocolVersion: 4 });
    try {
      const topic = "devices/ref/down/error";
      await resendAfterReconnect({
        url: mosquitto.url,
        device: { clientId: "ref" },
        async subscribe(session) {
          await session.client.subscribeAsync(topic, { qos: 1 });
        },
        send(payload, qos) {
          sender.publish(topic, payload, { qos });
        },
        textOf: utf8,
        // mosquitto takes a new connection of the client id over whether or not it has seen the old one end.
        gone: () => new Promise((resolve) => setTimeout(resolve, 50)),
      });
    } finally {
      await endClient(sender);
      await mosquitto.close();
    }
  });
});

describe("which queued frames are redeliveries", () => {
  test("a PUBLISH of QoS 1 or 2 with a packet id; not one never written, a QoS 0 one or a PUBREL", async () => {
    const queued: QueuedFrame[] = [
      { cmd: "publish", qos: 1, messageId: 3, dup: false },
      { cmd: "publish", qos: 2, messageId: 4, dup: false },
      { cmd: "publish", qos: 1, dup: false },
      { cmd: "publish", qos: 0, dup: false },
      { cmd: "pubrel", messageId: 5 },
    ];
    assert.deepEqual(queued.map(isRedelivery), [true, true, false, false, false]);
    const store = {
      outgoingStream: (_client: { id: string }): AsyncIterable<QueuedFrame> =>
        (async function* () {
          yield* queued;
        })(),
    };
    markRedeliveries(store);
    const read: QueuedFrame[] = [];
    for await (const frame of store.outgoingStream({ id: "d" })) read.push(frame);
    assert.deepEqual(
      read.map((f) => f.dup),
      [true, true, false, false, undefined],
    );
    assert.deepEqual(queued[0], { cmd: "publish", qos: 1, messageId: 3, dup: false }, "the stored frame is unchanged");
  });
});
