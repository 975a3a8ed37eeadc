/**
 * [MQTT-2.3.1-2]: a new PUBLISH must use a packet id no unacknowledged PUBLISH of the session uses. A persistent
 * session's next connection gets its stored frames again with their old packet ids, and aedes starts each connection's
 * counter at a random id: a new frame could take the id of a resent one (the device drops it as a repeat, and its
 * PUBACK clears the resent frame instead). A connection that resends stored frames numbers its new ones from the id
 * after theirs (broker/session-packet-ids.ts). aedes' random start is pinned through Math.random, so the worst case
 * (the new connection starts at the resent frame's id) happens every run.
 */
import assert from "node:assert/strict";
import { after, before, describe, type TestContext, test } from "node:test";
import vm from "node:vm";
import v8 from "node:v8";
import { Aedes } from "aedes";
import type { IPublishPacket, Packet } from "mqtt-packet";
import type { DownMessage } from "../../codecs/frames.ts";
import {
  connectRaw,
  connectRecording,
  endClient,
  type RawDevice,
  startTestBroker,
  type TestBroker,
  waitUntil,
} from "./helpers.ts";

// V8's own test of an object's properties: a client turned into a dictionary costs ~1.4 KB more, and aedes' reads.
v8.setFlagsFromString("--allow-natives-syntax");
const hasFastProperties = vm.runInThisContext("(object) => %HasFastProperties(object)") as (object: object) => boolean;

/** One unacknowledged frame at a time: the next one waits, and joins the offline queue when the session ends. */
const WINDOW = 1;
const command = (id: string): DownMessage => ({ channel: "cmd", frame: { id, n: "blink" } });

/** What a device saw of a PUBLISH: the command it carried, its packet id, its DUP flag. */
type Seen = [command: string, messageId: number | undefined, dup: boolean];

function seen(packets: Packet[]): Seen[] {
  return packets
    .filter((p): p is IPublishPacket => p.cmd === "publish")
    .map((p) => [(JSON.parse(Buffer.from(p.payload).toString("utf8")) as { id: string }).id, p.messageId, p.dup]);
}

/**
 * The next aedes client starts its packet id counter at `id`: aedes draws it as Math.ceil(Math.random() * 65535) when
 * the socket comes (lib/client.js). Only while the device connects.
 */
async function withCounterAt<T>(t: TestContext, id: number, connect: () => Promise<T>): Promise<T> {
  const random = t.mock.method(Math, "random", () => (id - 0.5) / 65_535);
  try {
    return await connect();
  } finally {
    random.mock.restore();
  }
}

/** An mqtt.js device, with a persistent session unless `clean`; with `withhold` it acknowledges nothing. */
function mqttDevice(tb: TestBroker, id: string, secret: string, withhold: boolean, clean = false) {
  return connectRecording(tb.url, { clientId: id, username: id, password: secret, clean }, withhold);
}

/** A persistent-session device over raw MQTT: it acknowledges only what the test writes. */
function rawDevice(tb: TestBroker, id: string, secret: string): Promise<RawDevice> {
  return connectRaw(tb.port, { clientId: id, username: id, password: Buffer.from(secret), clean: false });
}

describe("packet ids of a resumed persistent session", () => {
  let tb: TestBroker;
  before(async () => {
    tb = await startTestBroker({ limits: { maxUnackedDownPerDevice: WINDOW } });
  });
  after(() => tb.close());

  const send = (id: string, name: string): void => void tb.host.transportOf(id).send(command(name), { qos: 1 });
  const sessionsEnded = (id: string, count: number): Promise<void> =>
    tb.host.waitFor(() => tb.host.closes(id).length === count);

  test("a new frame never takes the id of a resent one: it is numbered from the id after theirs", async (t) => {
    const id = "pktid-mqttjs";
    const secret = await tb.addDevice(id, "json");
    // At the top of the range, so the counter also wraps (65535 is followed by 1, never 0).
    const first = await withCounterAt(t, 65_535, () => mqttDevice(tb, id, secret, true));
    await first.client.subscribeAsync(`devices/${id}/down/#`, { qos: 1 });
    await waitUntil(() => tb.broker.isOnline(id));
    send(id, "c1");
    send(id, "c2");
    await waitUntil(() => seen(first.publishes).length === 1);
    await endClient(first.client, true);
    await sessionsEnded(id, 1);
    assert.deepEqual(seen(first.publishes), [["c1", 65_535, false]]);

    // aedes' new counter starts on c1's id: the worst case.
    const second = await withCounterAt(t, 65_535, () => mqttDevice(tb, id, secret, false));
    await waitUntil(() => seen(second.publishes).length === 2);
    send(id, "c3");
    await waitUntil(() => seen(second.publishes).length === 3);
    assert.deepEqual(
      seen(second.publishes),
      [
        ["c1", 65_535, true],
        ["c2", 1, false],
        ["c3", 2, false],
      ],
      "c2 (queued while offline) and c3 (sent live) take the ids after resent c1's",
    );
    await endClient(second.client);
    await sessionsEnded(id, 2);

    // All acknowledged: nothing is resent, and aedes' own start stays.
    const third = await withCounterAt(t, 7, () => mqttDevice(tb, id, secret, false));
    send(id, "c4");
    await waitUntil(() => seen(third.publishes).length === 1);
    assert.deepEqual(seen(third.publishes), [["c4", 7, false]]);
    await endClient(third.client);
    await sessionsEnded(id, 3);
  });

  // mqtt.js handles one packet at a time: it cannot leave one frame unacknowledged and acknowledge the next.
  test("the PUBACK of a new frame clears that frame, not the resent one it would have shared an id with", async (t) => {
    const id = "pktid-raw";
    const secret = await tb.addDevice(id, "json");
    const first = await withCounterAt(t, 100, () => rawDevice(tb, id, secret));
    first.burst([{ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: `devices/${id}/down/#`, qos: 1 }] }]);
    await waitUntil(() => tb.broker.isOnline(id) && first.packets.some((p) => p.cmd === "suback"));
    send(id, "c1");
    send(id, "c2");
    await waitUntil(() => seen(first.packets).length === 1);
    first.socket.destroy();
    await sessionsEnded(id, 1);
    assert.deepEqual(seen(first.packets), [["c1", 100, false]]);

    // The device runs c2, the new command, and acknowledges it; c1 it leaves for later.
    const second = await withCounterAt(t, 100, () => rawDevice(tb, id, secret));
    await waitUntil(() => seen(second.packets).length === 2);
    const c2 = second.packets.filter((p): p is IPublishPacket => p.cmd === "publish")[1];
    assert.deepEqual(seen(second.packets), [
      ["c1", 100, true],
      ["c2", 101, false],
    ]);
    second.burst([{ cmd: "puback", messageId: c2?.messageId }]);
    second.burst([{ cmd: "disconnect" }]);
    await sessionsEnded(id, 2);

    // c1 comes again, and only c1: c2's PUBACK cleared c2. Acknowledged now, it makes room for c3, numbered after c1.
    const third = await withCounterAt(t, 100, () => rawDevice(tb, id, secret));
    await waitUntil(() => seen(third.packets).length === 1);
    assert.deepEqual(seen(third.packets), [["c1", 100, true]]);
    send(id, "c3");
    third.burst([{ cmd: "puback", messageId: 100 }]);
    await waitUntil(() => seen(third.packets).length === 2);
    assert.deepEqual(seen(third.packets)[1], ["c3", 101, false]);
    third.burst([{ cmd: "puback", messageId: 101 }, { cmd: "disconnect" }]);
    await sessionsEnded(id, 3);
  });

  test("with nothing to resend, a connection keeps aedes' own start: nothing of a session is kept", async (t) => {
    const id = "pktid-nothing-stored";
    const secret = await tb.addDevice(id, "json");
    let ended = 0;
    /** Connects (aedes' counter starting at `start`), subscribes, sends one command: its packet id. */
    const oneCommand = async (start: number, clean = false): Promise<number | undefined> => {
      const device = await withCounterAt(t, start, () => mqttDevice(tb, id, secret, false, clean));
      await device.client.subscribeAsync(`devices/${id}/down/#`, { qos: 1 });
      await waitUntil(() => tb.broker.isOnline(id));
      send(id, "c");
      await waitUntil(() => seen(device.publishes).length === 1);
      await endClient(device.client);
      await sessionsEnded(id, ++ended);
      return seen(device.publishes)[0]?.[1];
    };
    assert.equal(await oneCommand(200), 200);
    assert.equal(await oneCommand(900), 900, "the frame was acknowledged: the next connection numbers from its own");
    assert.equal(await oneCommand(300, true), 300, "and so does a clean session");
  });

  test("a renumbered client keeps aedes' plain field and V8's fast properties", async (t) => {
    const id = "pktid-fast";
    const secret = await tb.addDevice(id, "json");
    const first = await withCounterAt(t, 500, () => mqttDevice(tb, id, secret, true));
    await first.client.subscribeAsync(`devices/${id}/down/#`, { qos: 1 });
    await waitUntil(() => tb.broker.isOnline(id));
    send(id, "c1");
    await waitUntil(() => seen(first.publishes).length === 1);
    await endClient(first.client, true);
    await sessionsEnded(id, 1);

    // aedes registers the client after the broker renumbered it, before its CONNACK (a method its types leave out).
    const aedes = Aedes.prototype as unknown as { registerClient(client: object): void };
    const registered = t.mock.method(aedes, "registerClient");
    const second = await withCounterAt(t, 500, () => mqttDevice(tb, id, secret, false));
    await waitUntil(() => seen(second.publishes).length === 1);
    assert.deepEqual(seen(second.publishes), [["c1", 500, true]]);
    const client: unknown = registered.mock.calls.at(-1)?.arguments[0];
    assert.ok(typeof client === "object" && client !== null);
    assert.deepEqual(
      Object.getOwnPropertyDescriptor(client, "_nextId"),
      { value: 501, writable: true, enumerable: true, configurable: true },
      "a data property, moved past resent c1",
    );
    assert.equal(hasFastProperties(client), true, "not turned into a dictionary");
    await endClient(second.client);
    await sessionsEnded(id, 2);
  });
});
