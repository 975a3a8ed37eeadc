import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { authenticateDevice } from "../../broker/auth.ts";
import type { DeviceRegistry } from "../../broker/index.ts";
import { connackCode, connectDevice, endClient, startTestBroker, type TestBroker } from "./helpers.ts";

describe("broker authentication", () => {
  let tb: TestBroker;
  let secret: string;

  before(async () => {
    tb = await startTestBroker();
    secret = await tb.addDevice("sensor-1");
  });
  after(() => tb.close());

  test("a device with its id and secret is accepted and its agent connection opens", async () => {
    const client = await connectDevice(tb.url, { clientId: "sensor-1", username: "sensor-1", password: secret });
    try {
      const open = tb.host.opens("sensor-1").at(-1);
      assert.ok(open);
      assert.equal(open.init.kind, "mqtt");
      assert.equal(open.init.codec, "cbor");
      assert.equal(open.init.context?.remoteAddress, "127.0.0.1");
      assert.equal(open.init.context?.clean, true);
      assert.equal(tb.broker.isOnline("sensor-1"), true);
      assert.deepEqual(tb.broker.connectedDevices(), ["sensor-1"]);
    } finally {
      await endClient(client);
    }
    await tb.host.waitFor(() => tb.host.closes("sensor-1").length === 1);
    assert.equal(tb.host.closes("sensor-1")[0].reason, "disconnect");
    assert.equal(tb.broker.isOnline("sensor-1"), false);
  });

  test("a wrong password gets CONNACK 4 (bad user name or password) and opens nothing", async () => {
    const opensBefore = tb.host.opens().length;
    assert.equal(await connackCode(tb.url, { clientId: "sensor-1", username: "sensor-1", password: "wrong" }), 4);
    assert.equal(tb.host.opens().length, opensBefore);
    assert.ok((tb.broker.stats().authFailures["bad-credentials"] ?? 0) >= 1);
  });

  test("missing credentials for a registered device get CONNACK 4", async () => {
    assert.equal(await connackCode(tb.url, { clientId: "sensor-1" }), 4);
    assert.equal(await connackCode(tb.url, { clientId: "sensor-1", username: "sensor-1" }), 4);
  });

  test("an unknown device gets CONNACK 4, the same answer as a wrong secret, so device ids cannot be probed", async () => {
    assert.equal(await connackCode(tb.url, { clientId: "ghost", username: "ghost", password: "x" }), 4);
    assert.equal(await connackCode(tb.url, { clientId: "ghost" }), 4);
    assert.ok((tb.broker.stats().authFailures["unknown-device"] ?? 0) >= 2, "operators still see the reason");
  });

  test("a client id that differs from the username, or is not a device id, gets CONNACK 2", async () => {
    assert.equal(await connackCode(tb.url, { clientId: "other", username: "sensor-1", password: secret }), 2);
    assert.equal(await connackCode(tb.url, { clientId: "bad/id", username: "bad/id", password: secret }), 2);
    assert.equal(await connackCode(tb.url, { clientId: "..", username: "..", password: secret }), 2);
    assert.equal(await connackCode(tb.url, { clientId: "", username: "sensor-1", password: secret, clean: true }), 2);
    assert.ok((tb.broker.stats().authFailures["client-id"] ?? 0) >= 4);
  });

  test("a client id of 64 characters is accepted (aedes' default limit of 23 was raised)", async () => {
    const longId = `d${"x".repeat(63)}`;
    const longSecret = await tb.addDevice(longId);
    assert.equal(await connackCode(tb.url, { clientId: longId, username: longId, password: longSecret }), 0);
  });

  test("a last will outside the device's up namespace gets CONNACK 5", async () => {
    const code = await connackCode(tb.url, {
      clientId: "sensor-1",
      username: "sensor-1",
      password: secret,
      will: { topic: "devices/other/up/telemetry", payload: Buffer.from("x"), qos: 0, retain: false },
    });
    assert.equal(code, 5);
  });
});

describe("broker anonymous mode", () => {
  let tb: TestBroker;
  let secret: string;

  before(async () => {
    tb = await startTestBroker({ anonymous: true });
    secret = await tb.addDevice("known");
  });
  after(() => tb.close());

  test("anonymous mode warns loudly at start", () => {
    const warning = tb.logger.lines.find((l) => l.level === "warn" && l.msg.includes("ANONYMOUS MODE"));
    assert.ok(warning);
  });

  test("an unregistered device connects without credentials in anonymous mode", async () => {
    const client = await connectDevice(tb.url, { clientId: "stranger" });
    try {
      assert.equal(tb.broker.isOnline("stranger"), true);
    } finally {
      await endClient(client);
    }
  });

  test("a registered device still needs its secret in anonymous mode", async () => {
    assert.equal(await connackCode(tb.url, { clientId: "known", username: "known", password: "nope" }), 4);
    assert.equal(await connackCode(tb.url, { clientId: "known", username: "known", password: secret }), 0);
  });
});

describe("authenticateDevice", () => {
  let tb: TestBroker;
  let secret: string;
  before(async () => {
    tb = await startTestBroker();
    secret = await tb.addDevice("known-1");
  });
  after(() => tb.close());

  test("an unknown device, a wrong secret and missing credentials each cost exactly one secret verification and get CONNACK 4", async () => {
    let verifications = 0;
    const registry = Object.assign(Object.create(tb.registry) as DeviceRegistry, {
      verify: (id: string, s: string) => {
        verifications++;
        return tb.registry.verify(id, s);
      },
    });
    const policy = { registry, anonymous: false };
    const cases = [
      { clientId: "ghost-1", username: "ghost-1", password: Buffer.from("x") },
      { clientId: "ghost-1", username: undefined, password: undefined },
      { clientId: "known-1", username: "known-1", password: Buffer.from("wrong") },
      { clientId: "known-1", username: undefined, password: undefined },
    ];
    for (const creds of cases) {
      const before = verifications;
      const decision = await authenticateDevice(policy, { ...creds, willTopic: undefined });
      assert.equal(decision.status, "refused", creds.clientId);
      if (decision.status === "refused") assert.equal(decision.returnCode, 4, creds.clientId);
      assert.equal(verifications - before, 1, `${creds.clientId} spends one verification`);
    }
    const ok = await authenticateDevice(policy, {
      clientId: "known-1",
      username: "known-1",
      password: Buffer.from(secret),
      willTopic: undefined,
    });
    assert.equal(ok.status, "accepted");
  });

  test("a last will outside the device's topics is refused with CONNACK 5 whether or not the device exists", async () => {
    for (const clientId of ["known-1", "ghost-2"]) {
      const decision = await authenticateDevice(
        { registry: tb.registry, anonymous: false },
        { clientId, username: clientId, password: Buffer.from("x"), willTopic: "devices/other/up/x" },
      );
      assert.equal(decision.status === "refused" && decision.returnCode, 5);
    }
  });
});
