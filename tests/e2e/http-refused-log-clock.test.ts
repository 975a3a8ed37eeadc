/**
 * The operator HTTP server's refused-connection log is rate limited on a clock that never steps: a wall clock set back
 * (NTP, an operator) must not silence it for as long as the step, as the broker's own throttles are not silenced.
 */
import assert from "node:assert/strict";
import net from "node:net";
import { after, test } from "node:test";
import { createHttpServer, type HttpServer } from "../../app/http/index.ts";
import { capturingLogger } from "../support/capturing-logger.ts";

const servers: HttpServer[] = [];
const sockets: net.Socket[] = [];
after(async () => {
  for (const s of sockets) s.destroy();
  for (const s of servers) await s.close();
});

/** Opens a raw connection; resolves once connected, with a promise of its close. */
async function connect(port: number): Promise<{ closed: Promise<void> }> {
  const socket = net.connect(port, "127.0.0.1");
  sockets.push(socket);
  socket.on("error", () => {});
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  return { closed };
}

test("a wall clock stepped back does not silence the refused-connection log past its interval", async (t) => {
  const { logger, lines } = capturingLogger<{ refused?: number }>("warn");
  const server = createHttpServer({
    host: "127.0.0.1",
    port: 0,
    logger,
    readiness: () => ({ ready: true, phase: "ready", listeners: {} }),
    upgradeRoutes: [],
    maxConnections: 1,
  });
  servers.push(server);
  const { port } = await server.listen();
  await connect(port);
  await (await connect(port)).closed;
  assert.equal(lines.filter((l) => l.refused !== undefined).length, 1, "the first refused connection is logged");

  // The wall clock goes back an hour while ten seconds pass (the log's interval is ten seconds).
  const wallNow = Date.now.bind(Date);
  const monotonicNow = performance.now.bind(performance);
  t.mock.method(Date, "now", () => wallNow() - 3_600_000);
  t.mock.method(performance, "now", () => monotonicNow() + 10_001);
  await (await connect(port)).closed;
  const refused = lines.filter((l) => l.refused !== undefined);
  assert.equal(refused.length, 2, "the next refusal after the interval is logged");
  assert.equal(refused[1]?.refused, 1);
});
