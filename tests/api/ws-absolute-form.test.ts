/**
 * WebSocket upgrades on the operator HTTP port with the request target in absolute form
 * (`GET http://host:port/mqtt HTTP/1.1`), as some forward proxies send it: RFC 9112 section 3.2.2 says a server MUST
 * accept it, so `/mqtt` and `/agents/{id}` are matched on the target's path, whatever its form.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import type { Bridge } from "../../app/bridge.ts";
import { createLoopbackBridge } from "../support/in-process-bridge.ts";

const TOKEN = "ws-absolute-form-token-0123456789";

/** Sends a WebSocket upgrade for `target` on a raw socket; resolves with the answer's status line, then closes. */
function upgradeStatusLine(port: number, target: string, protocol?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1", () =>
      socket.write(
        `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n` +
          `${protocol === undefined ? "" : `Sec-WebSocket-Protocol: ${protocol}\r\n`}\r\n`,
      ),
    );
    let text = "";
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      text += chunk;
      if (!text.includes("\r\n")) return;
      socket.destroy();
      resolve(text.slice(0, text.indexOf("\r\n")));
    });
    socket.on("close", () => resolve(text.split("\r\n")[0] ?? ""));
    socket.on("error", reject);
  });
}

describe("WebSocket upgrades whose request target is in absolute form", () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "ws-absolute-form-"));
  let bridge: Bridge;
  let port = 0;

  before(async () => {
    bridge = await createLoopbackBridge({ dataDir, apiToken: TOKEN });
    port = (await bridge.start()).http?.port ?? 0;
    const added = await bridge.registry.add("absolute-1", { codec: "json" });
    assert.equal(added.status, "created");
  });

  after(async () => {
    await bridge?.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test("MQTT over WebSocket: GET http://host:port/mqtt answers 101", async () => {
    const status = await upgradeStatusLine(port, `http://127.0.0.1:${port}/mqtt`, "mqtt");
    assert.match(status, /^HTTP\/1\.1 101 /);
  });

  test("an agent's WebSocket: GET http://host:port/agents/{id}?token=... answers 101", async () => {
    const status = await upgradeStatusLine(port, `http://127.0.0.1:${port}/agents/absolute-1?token=${TOKEN}`);
    assert.match(status, /^HTTP\/1\.1 101 /);
  });

  test("an absolute-form target naming no endpoint still answers 404", async () => {
    const status = await upgradeStatusLine(port, `http://127.0.0.1:${port}/elsewhere`);
    assert.match(status, /^HTTP\/1\.1 404 /);
  });
});
