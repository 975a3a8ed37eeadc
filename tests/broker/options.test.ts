import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, test } from "node:test";
import { BROKER_DEFAULTS, type BrokerOptions, createBroker, startBroker } from "../../broker/index.ts";
import { connectDevice, endClient, RecordingHost, startTestBroker } from "./helpers.ts";
import { thrownField } from "../support/thrown-field.ts";

describe("broker options and start", () => {
  test("defaults are documented in one object", () => {
    assert.deepEqual(BROKER_DEFAULTS.tcp, { host: "0.0.0.0", port: 1883 });
    assert.deepEqual(BROKER_DEFAULTS.tls, { host: "0.0.0.0", port: 8883 });
    assert.equal(BROKER_DEFAULTS.anonymous, false);
    assert.equal(BROKER_DEFAULTS.defaultCodec, "cbor");
    assert.equal(BROKER_DEFAULTS.limits.maxPayloadBytes, 65536);
  });

  test("a broker without a host, or with neither registry nor dataDir, is refused naming the field", () => {
    assert.equal(
      thrownField(() => createBroker({ dataDir: "x" } as never)),
      "host",
    );
    assert.equal(
      thrownField(() => createBroker({ host: new RecordingHost() })),
      "registry",
    );
    assert.equal(
      thrownField(() => createBroker({ host: new RecordingHost(), dataDir: "x", defaultCodec: "xml" as "json" })),
      "defaultCodec",
    );
    assert.equal(
      thrownField(() => createBroker({ host: new RecordingHost(), dataDir: "x", tls: { key: "k" } })),
      "tls.cert",
    );
    assert.equal(
      thrownField(() => createBroker({ host: new RecordingHost(), dataDir: "x", websocket: { path: "mqtt" } })),
      "websocket.path",
    );
    assert.equal(
      thrownField(() => createBroker({ host: new RecordingHost(), dataDir: "x", websocket: { closeGraceMs: -1 } })),
      "websocket.closeGraceMs",
    );
    for (const maxUnackedDownPerDevice of [0, 65_536]) {
      assert.equal(
        thrownField(() =>
          createBroker({ host: new RecordingHost(), dataDir: "x", limits: { maxUnackedDownPerDevice } }),
        ),
        "limits.maxUnackedDownPerDevice",
      );
    }
  });

  test("a listener's proxyProtocol is refused naming the field: no balancer, an entry that is no address, a bad timeout", () => {
    const field = (options: Partial<BrokerOptions>): unknown => {
      try {
        createBroker({ host: new RecordingHost(), dataDir: "x", ...options });
      } catch (err) {
        return (err as { details?: { field?: string } }).details?.field;
      }
      return undefined;
    };
    const tls = { cert: "c", key: "k" };
    assert.equal(field({ tcp: { proxyProtocol: { trustedSources: [] } } }), "tcp.proxyProtocol.trustedSources");
    assert.equal(field({ tcp: { proxyProtocol: { trustedSources: ["lb.lan"] } } }), "tcp.proxyProtocol.trustedSources");
    assert.equal(field({ tcp: { proxyProtocol: "10.0.0.1" as never } }), "tcp.proxyProtocol");
    assert.equal(
      field({ tls: { ...tls, proxyProtocol: { trustedSources: ["10.0.0.0/8"], headerTimeoutMs: 0 } } }),
      "tls.proxyProtocol.headerTimeoutMs",
    );
  });

  test("a port already in use fails start with BRIDGE_ERR_BROKER_LISTEN and its cause", async () => {
    const first = await startTestBroker();
    try {
      await assert.rejects(
        startTestBroker({ tcp: { host: "127.0.0.1", port: first.port } }),
        (err: { code?: string; cause?: { code?: string } }) =>
          err.code === "BRIDGE_ERR_BROKER_LISTEN" && err.cause?.code === "EADDRINUSE",
      );
    } finally {
      await first.close();
    }
  });

  test("with dataDir the broker opens registry.db there and closes it with itself", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "broker-datadir-"));
    const dataDir = path.join(dir, "not-yet-there");
    const broker = await startBroker({ host: new RecordingHost(), dataDir, tcp: { host: "127.0.0.1", port: 0 } });
    try {
      assert.ok(fs.existsSync(path.join(dataDir, "registry.db")));
      const added = await broker.registry.add("dd-1");
      assert.equal(added.status, "created");
      if (added.status !== "created") return;
      const port = broker.addresses().tcp?.port;
      const client = await connectDevice(`mqtt://127.0.0.1:${port}`, {
        clientId: "dd-1",
        username: "dd-1",
        password: added.secret,
      });
      await endClient(client);
    } finally {
      await broker.close();
      assert.throws(
        () => broker.registry.get("dd-1"),
        (err: { code?: string }) => err.code === "BRIDGE_ERR_REGISTRY",
      );
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("start twice is refused, and close is idempotent", async () => {
    const tb = await startTestBroker();
    await assert.rejects(tb.broker.start(), (err: { code?: string }) => err.code === "BRIDGE_ERR_BROKER_CLOSED");
    await tb.broker.close();
    await tb.broker.close();
    await tb.close();
  });
});
