import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Client } from "aedes";
import { DeviceConnection } from "../../broker/connection.ts";
import { DeviceCodecs } from "../../broker/device-codecs.ts";
import type { DeviceRegistry } from "../../broker/index.ts";
import { TokenBucket } from "../../broker/token-bucket.ts";
import type { CodecName } from "../../codecs/frames.ts";
import { getCodec, negotiateCodec } from "../../codecs/index.ts";
import { ManualClock } from "../support/manual-clock.ts";
import {
  collect,
  connectDevice,
  endClient,
  publish,
  startTestBroker,
  subscribe,
  type TestBroker,
  waitUntil,
} from "./helpers.ts";

const pb = getCodec("pb");
const cbor = getCodec("cbor");

function connection(shared: ReturnType<DeviceCodecs["acquire"]>, registryCodec?: CodecName): DeviceConnection {
  return new DeviceConnection(
    {
      connectionId: `c-${Math.random()}`,
      deviceId: "d1",
      transport: "tcp",
      remoteAddress: "",
      registryCodec,
      defaultCodec: "cbor",
      shared,
      client: {} as unknown as Client,
      clean: true,
      registered: true,
    },
    new TokenBucket(10, 10, new ManualClock()),
  );
}

describe("the codec a device session is addressed in", () => {
  test("is this session's hello, else the device's last hello in another session, else the registry record, else the suffix of its latest message, else the default", () => {
    const codecs = new DeviceCodecs();
    const old = connection(codecs.acquire("d1"), "cbor");
    const twin = connection(codecs.acquire("d1"), "cbor");
    assert.deepEqual([twin.codec, twin.codecSource], ["cbor", "registry"]);
    for (const suffix of ["json", "pb"] as const) {
      twin.topicCodec = suffix;
      assert.deepEqual([twin.codec, twin.codecSource], ["cbor", "registry"], `a /${suffix} message leaves the record`);
      assert.deepEqual(twin.upCodec(), { codec: "cbor", source: "registry" }, "a suffix names its own message's codec");
    }
    twin.topicCodec = undefined;
    // The old session's hello was read after the twin's CONNECT: the twin follows it at once.
    old.noteHello("pb");
    assert.deepEqual([twin.codec, twin.codecSource], ["pb", "hello"]);
    twin.topicCodec = "json";
    assert.equal(twin.codec, "pb", "a hello beats a suffix");
    twin.noteHello("json");
    assert.equal(twin.codec, "json");
    assert.equal(old.codec, "pb", "a session's own hello beats another session's");

    const fresh = new DeviceCodecs();
    const helloless = connection(fresh.acquire("d1"));
    assert.deepEqual([helloless.codec, helloless.codecSource], ["cbor", "default"]);
    helloless.topicCodec = "pb";
    assert.deepEqual([helloless.codec, helloless.codecSource], ["pb", "topic"]);
    assert.deepEqual(
      helloless.upCodec(),
      { codec: "cbor", source: "default" },
      "a suffix names its own message's codec",
    );
  });

  test("negotiateCodec ranks the latest message's suffix below a hello and the registry record, above the default", () => {
    assert.deepEqual(negotiateCodec({ registryCodec: "cbor", latestTopicCodec: "json" }), {
      codec: "cbor",
      source: "registry",
    });
    assert.deepEqual(negotiateCodec({ helloCodec: "pb", latestTopicCodec: "json" }), { codec: "pb", source: "hello" });
    assert.deepEqual(negotiateCodec({ latestTopicCodec: "json", defaultCodec: "cbor" }), {
      codec: "json",
      source: "topic",
    });
    assert.deepEqual(negotiateCodec({ topicCodec: "json", registryCodec: "cbor" }), { codec: "json", source: "topic" });
  });

  test("device codecs are shared by a device's sessions and forgotten with the last one", () => {
    const codecs = new DeviceCodecs();
    const a = codecs.acquire("d1");
    assert.equal(codecs.acquire("d1"), a);
    a.hello = "pb";
    codecs.release("d1");
    assert.equal(codecs.size, 1);
    codecs.release("d1");
    assert.equal(codecs.size, 0);
    assert.equal(codecs.acquire("d1").hello, undefined);
  });
});

describe("broker: down frames in the device's codec", () => {
  let tb: TestBroker;
  before(async () => {
    tb = await startTestBroker({ anonymous: true });
  });
  after(async () => {
    await tb.close();
  });

  test("a device that never says hello and publishes with a /pb suffix receives its commands in pb when nothing else names its codec", async () => {
    const secret = await tb.addDevice("silent-nocodec");
    for (const [id, password] of [
      ["silent-pb", undefined],
      ["silent-nocodec", secret],
    ] as const) {
      const client = await connectDevice(
        tb.url,
        password ? { clientId: id, username: id, password } : { clientId: id },
      );
      const received = collect(client);
      try {
        await subscribe(client, `devices/${id}/down/#`);
        await publish(client, `devices/${id}/up/telemetry/pb`, pb.encodeUp("telemetry", { r: { t: 1 } }));
        tb.host.transportOf(id).send({ channel: "cmd", frame: { id: "c1", n: "blink" } }, { qos: 1 });
        await waitUntil(() => received.some((m) => m.topic.endsWith("/down/cmd")));
        const cmd = received.find((m) => m.topic.endsWith("/down/cmd"))!;
        assert.deepEqual(pb.decodeDown("cmd", cmd.payload), { ok: true, frame: { id: "c1", n: "blink" } }, id);
      } finally {
        await endClient(client, true);
      }
    }
  });

  test("a suffix on a message that does not decode does not change the codec of the device's frames", async () => {
    const client = await connectDevice(tb.url, { clientId: "garbage-pb" });
    const received = collect(client);
    try {
      await subscribe(client, "devices/garbage-pb/down/#");
      await publish(client, "devices/garbage-pb/up/telemetry/pb", Buffer.from([0xff, 0xff, 0xff]));
      await waitUntil(() => received.some((m) => m.topic.endsWith("/down/error")));
      const error = received.find((m) => m.topic.endsWith("/down/error"))!;
      assert.equal(cbor.decodeDown("error", error.payload).ok, true, "still the default codec");
    } finally {
      await endClient(client, true);
    }
  });

  test("a session accepted while another session's hello changed the device's codec uses the new codec", async () => {
    const secret = await tb.addDevice("racer", "cbor");
    // The hello of the device's other session lands while this CONNECT's secret is being checked.
    const raceRegistry = Object.create(tb.registry) as DeviceRegistry;
    const race = await startTestBroker({
      registry: Object.assign(raceRegistry, {
        verify: async (id: string, s: string) => {
          const verdict = await tb.registry.verify(id, s);
          tb.registry.setCodec(id, "pb");
          return verdict;
        },
      }),
    });
    const client = await connectDevice(race.url, { clientId: "racer", username: "racer", password: secret });
    const received = collect(client);
    try {
      await subscribe(client, "devices/racer/down/#");
      race.host.transportOf("racer").send({ channel: "cmd", frame: { id: "c2", n: "blink" } }, { qos: 1 });
      await waitUntil(() => received.some((m) => m.topic.endsWith("/down/cmd")));
      const cmd = received.find((m) => m.topic.endsWith("/down/cmd"))!;
      assert.deepEqual(pb.decodeDown("cmd", cmd.payload), { ok: true, frame: { id: "c2", n: "blink" } });
    } finally {
      await endClient(client, true);
      await race.close();
    }
  });
});
