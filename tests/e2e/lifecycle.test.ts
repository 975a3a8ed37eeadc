import assert from "node:assert/strict";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { after, describe, test } from "node:test";
import { loopbackStartArgs, makeTempDir, runCli, startBridgeProcess } from "./support/bridge-process.ts";
import { rawStatusLine } from "./support/raw-http.ts";

const dataDir = makeTempDir("bridge-lifecycle-");
after(() => fs.rmSync(dataDir, { recursive: true, force: true }));

describe("bridge lifecycle", () => {
  test("start reports real ports in its log line and /readyz, and SIGTERM exits 0 after a graceful stop", async () => {
    const engineKey = "sk-e2e-engine-key-never-logged";
    const bridge = await startBridgeProcess({
      dataDir,
      // An engine nobody listens on: the client must not need it to start, and its key must never be logged.
      args: ["--engine-url", "http://127.0.0.1:9"],
      env: { BRIDGE_ENGINE_API_KEY: engineKey },
    });
    try {
      assert.ok(bridge.mqttPort > 0, "MQTT port 0 resolves to a real port");
      assert.ok(bridge.httpPort > 0, "HTTP port 0 resolves to a real port");

      const health = await fetch(`http://127.0.0.1:${bridge.httpPort}/healthz`);
      assert.equal(health.status, 200);
      const ready = await fetch(`http://127.0.0.1:${bridge.httpPort}/readyz`);
      assert.equal(ready.status, 200);
      const body = (await ready.json()) as { status: string; listeners: Record<string, { port: number }> };
      assert.equal(body.status, "ready");
      assert.equal(body.listeners.mqtt.port, bridge.mqttPort);
      assert.equal(body.listeners.http.port, bridge.httpPort);

      const unauthorized = await fetch(`http://127.0.0.1:${bridge.httpPort}/api/devices`);
      assert.equal(unauthorized.status, 401, "the operator API needs its token");
      const devices = await bridge.api("GET", "/api/devices");
      assert.equal(devices.status, 200);
    } finally {
      const code = await bridge.stop("SIGTERM");
      assert.equal(code, 0, `exit code after SIGTERM; stderr: ${bridge.stderr()}`);
    }
    assert.ok(bridge.logs.some((l) => l.msg === "stopped"));
    const text = JSON.stringify(bridge.logs) + bridge.stderr();
    assert.ok(!text.includes("sk-e2e-engine-key-never-logged"), "the engine key never reaches a log line");
    assert.ok(fs.existsSync(path.join(dataDir, "registry.db")));
  });

  test("a second start on the same data directory works after a graceful stop", async () => {
    const bridge = await startBridgeProcess({ dataDir });
    assert.equal(await bridge.stop("SIGINT"), 0, bridge.stderr());
  });

  test("without a configured token one is generated into the data directory and never logged (only printed once outside the log)", async () => {
    const dir = makeTempDir("bridge-token-");
    try {
      const bridge = await startBridgeProcess({ dataDir: dir, env: { BRIDGE_API_TOKEN: "" } });
      try {
        const token = fs.readFileSync(path.join(dir, "api-token"), "utf8").trim();
        assert.ok(token.length >= 16);
        assert.equal(fs.statSync(path.join(dir, "api-token")).mode & 0o077, 0, "only the owner may read it");
        const response = await fetch(`http://127.0.0.1:${bridge.httpPort}/api/devices`, {
          headers: { authorization: `Bearer ${token}` },
        });
        assert.equal(response.status, 200);
        // Plain stdout lines (level 0 here) are the one-time token print (api-token.test.ts); the JSON log lines and
        // stderr must never hold it.
        const logLines = bridge.logs.filter((l) => l.level !== 0);
        assert.ok(!(JSON.stringify(logLines) + bridge.stderr()).includes(token), "the token is not in the logs");
      } finally {
        assert.equal(await bridge.stop(), 0);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a port already in use stops start with exit code 1 and a log line naming the address", async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const result = runCli(loopbackStartArgs(dataDir, port));
      assert.equal(result.status, 1);
      assert.match(result.stdout, new RegExp(`cannot listen for MQTT over tcp on 127\\.0\\.0\\.1:${port}`));
      assert.match(result.stdout, /"msg":"bridge failed to start"/);
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });

  test("a first start that fails after generating the API token still shows the token once", async () => {
    // Otherwise the token was "shown once" never: every later start finds the file and prints only where it is.
    const fresh = makeTempDir("bridge-lifecycle-token-");
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const result = runCli(loopbackStartArgs(fresh, port));
      assert.equal(result.status, 1);
      const file = path.join(fresh, "api-token");
      const token = fs.readFileSync(file, "utf8").trim();
      assert.ok(result.stdout.includes(`operator API token (shown once; kept in ${file}): ${token}\n`), result.stdout);
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
      fs.rmSync(fresh, { recursive: true, force: true });
    }
  });

  test("an operator HTTP port already in use is named as the operator HTTP server's, with its code", async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const args = [...loopbackStartArgs(dataDir).slice(0, -1), String(port)];
      const result = runCli(args);
      assert.equal(result.status, 1);
      const failure = /"msg":"bridge failed to start"/;
      assert.match(result.stdout, failure);
      const line = result.stdout.split("\n").find((l) => failure.test(l)) ?? "";
      const err = (JSON.parse(line) as { err: { code: string; message: string } }).err;
      assert.equal(err.code, "BRIDGE_ERR_HTTP_LISTEN");
      assert.match(err.message, new RegExp(`^cannot listen for the operator HTTP server on 127\\.0\\.0\\.1:${port} `));
      assert.match(err.message, /\(http\.host, http\.port\): listen EADDRINUSE/);
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });

  test("an upgrade on an unknown path is refused with 404 and the server keeps serving", async () => {
    const bridge = await startBridgeProcess({ dataDir });
    try {
      const status = await rawUpgrade(bridge.httpPort, "/nowhere");
      assert.match(status, /^HTTP\/1\.1 404/);
      const noToken = await rawUpgrade(bridge.httpPort, "/agents/some-device");
      assert.match(noToken, /^HTTP\/1\.1 401/, "the agent socket needs the operator token");
      const health = await fetch(`http://127.0.0.1:${bridge.httpPort}/healthz`);
      assert.equal(health.status, 200);
    } finally {
      assert.equal(await bridge.stop(), 0, bridge.stderr());
    }
  });
});

/** Sends a WebSocket upgrade request on a raw socket and resolves with the status line of the answer. */
function rawUpgrade(port: number, urlPath: string): Promise<string> {
  return rawStatusLine(
    port,
    `GET ${urlPath} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
      "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
  );
}
