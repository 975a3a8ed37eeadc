import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { pino } from "pino";
import type { AgentHost, ConnectionInit } from "../../agents/host.ts";
import type { DownMessage } from "../../codecs/frames.ts";
import { tapHost } from "../../app/bridge/tap.ts";
import { createHttpServer, type HttpServer, type Readiness, type ReadinessCheck } from "../../app/http/index.ts";
import { rawStatusLine } from "./support/raw-http.ts";

const logger = pino({ level: "silent" });
const servers: HttpServer[] = [];
after(async () => {
  for (const s of servers) await s.close();
});

function upgrade(port: number, urlPath: string): Promise<string> {
  return rawStatusLine(port, `GET ${urlPath} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`);
}

describe("operator HTTP server (in process)", () => {
  // A caching proxy or load balancer between an orchestrator and the bridge must not serve a stale "ready" or "ok".
  test("readiness answers 503 with the phase until ready, then 200 with the listeners, neither to be cached", async () => {
    let state: Readiness = { ready: false, phase: "starting", listeners: {} };
    const server = createHttpServer({ host: "127.0.0.1", port: 0, logger, readiness: () => state, upgradeRoutes: [] });
    servers.push(server);
    const { port } = await server.listen();
    const before = await fetch(`http://127.0.0.1:${port}/readyz`);
    assert.equal(before.status, 503);
    assert.equal(before.headers.get("cache-control"), "no-store");
    assert.deepEqual(await before.json(), { status: "starting", listeners: {} });
    state = { ready: true, phase: "ready", listeners: { http: { host: "127.0.0.1", port } } };
    const afterReady = await fetch(`http://127.0.0.1:${port}/readyz`);
    assert.equal(afterReady.status, 200);
    assert.equal(afterReady.headers.get("cache-control"), "no-store");
    assert.deepEqual(await afterReady.json(), { status: "ready", listeners: { http: { host: "127.0.0.1", port } } });
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    assert.equal(health.status, 200);
    assert.equal(health.headers.get("cache-control"), "no-store");
  });

  test("upgrades go to the route matching their path; a declined, unknown or failing route gets a status", async () => {
    const seen: string[] = [];
    const server = createHttpServer({
      host: "127.0.0.1",
      port: 0,
      logger,
      readiness: () => ({ ready: true, phase: "ready", listeners: {} }),
      upgradeRoutes: [
        {
          name: "ok",
          match: (p) => p === "/ok",
          handle: (_req, socket) => {
            seen.push("ok");
            socket.end("HTTP/1.1 101 Switching Protocols\r\n\r\n");
          },
        },
        { name: "declines", match: (p) => p === "/declines", handle: () => false },
        {
          name: "throws",
          match: (p) => p === "/throws",
          handle: () => {
            throw new Error("handler bug");
          },
        },
      ],
    });
    servers.push(server);
    const { port } = await server.listen();
    assert.match(await upgrade(port, "/ok?x=1"), /^HTTP\/1\.1 101/);
    assert.deepEqual(seen, ["ok"]);
    assert.match(await upgrade(port, "/declines"), /^HTTP\/1\.1 404/);
    assert.match(await upgrade(port, "/elsewhere"), /^HTTP\/1\.1 404/);
    assert.match(await upgrade(port, "/throws"), /^HTTP\/1\.1 500/);
    server.stopAccepting();
    assert.match(await upgrade(port, "/ok"), /^HTTP\/1\.1 503/, "no new sockets once stopping");
    assert.deepEqual(seen, ["ok"]);
  });

  test("a named check's full answer needs the operator token; any other Authorization header is a 401, as on /api", async () => {
    const token = "readiness-access-token-0123456789";
    const check: ReadinessCheck = async () => ({
      ready: true,
      body: { status: "ok", replicas: [{ url: "http://engine.internal:8000", state: "healthy", healthy: true }] },
      publicBody: { status: "ok", replicas: [{ index: 0, state: "healthy", healthy: true }] },
    });
    const server = createHttpServer({
      host: "127.0.0.1",
      port: 0,
      logger,
      readiness: () => ({ ready: true, phase: "ready", listeners: {} }),
      upgradeRoutes: [],
      readinessChecks: { engine: check },
      apiToken: token,
    });
    servers.push(server);
    const { port } = await server.listen();
    const get = (headers: Record<string, string>) => fetch(`http://127.0.0.1:${port}/readyz/engine`, { headers });

    const probe = await get({});
    assert.equal(probe.status, 200);
    assert.deepEqual(await probe.json(), { status: "ok", replicas: [{ index: 0, state: "healthy", healthy: true }] });
    const full = await get({ authorization: `Bearer ${token}` });
    assert.equal(full.status, 200);
    assert.equal(
      ((await full.json()) as { replicas: Array<{ url: string }> }).replicas[0]?.url,
      "http://engine.internal:8000",
    );

    // An operator whose token is wrong, empty (an unset shell variable) or mangled learns of it, as /api tells them,
    // instead of taking the short answer for all there is.
    const refused = [
      "Bearer not-the-token-0123456789",
      "Bearer",
      `Bearer ${token} ${token}`,
      `Basic ${Buffer.from(`operator:${token}`).toString("base64")}`,
      `Token ${token}`,
    ];
    for (const authorization of refused) {
      const answer = await get({ authorization });
      assert.equal(answer.status, 401, `${authorization} is refused`);
      assert.equal(answer.headers.get("www-authenticate"), 'Bearer realm="agent-bridge"');
      assert.equal(((await answer.json()) as { error: { code: string } }).error.code, "BRIDGE_ERR_API_UNAUTHORIZED");
    }
  });
});

describe("traffic tap", () => {
  test("sees inbound messages and down frames without changing them, and survives a throwing observer", async () => {
    const sent: DownMessage[] = [];
    let opened: ConnectionInit | undefined;
    const host: AgentHost & { extra(): string } = {
      open: async (_id, connection) => {
        opened = connection;
        return { status: "committed" };
      },
      deliver: () => ({ accepted: true, done: Promise.resolve({ status: "committed" }) }),
      close: async () => ({ status: "committed" }),
      extra: () => "still reachable",
    };
    const ups: string[] = [];
    const downs: string[] = [];
    const tapped = tapHost(host, {
      up: (id, m) => {
        ups.push(`${id}:${m.channel}`);
        throw new Error("observer bug");
      },
      down: (id, m) => {
        downs.push(`${id}:${m.channel}`);
        throw new Error("observer bug");
      },
    });
    await tapped.open("d-1", {
      id: "c-1",
      kind: "internal",
      codec: "cbor",
      transport: { send: (m) => sent.push(m), sendProtocol: () => {}, close: () => {} },
    });
    const result = tapped.deliver("d-1", "c-1", { channel: "telemetry", frame: { r: { t: 1 } } });
    assert.equal(result.accepted, true);
    const frame: DownMessage = { channel: "rpc", frame: { id: "1", ok: true } };
    opened?.transport.send(frame, { qos: 1 });
    assert.deepEqual(ups, ["d-1:telemetry"]);
    assert.deepEqual(downs, ["d-1:rpc"]);
    assert.deepEqual(sent, [frame], "the frame still reached the transport");
    assert.equal(tapped.extra(), "still reachable");
  });
});
