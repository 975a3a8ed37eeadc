import assert from "node:assert/strict";
import net, { type AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import type { Client } from "aedes";
import { type Clock, systemClock } from "../../broker/clock.ts";
import { keepaliveWarning, pacerOf, paceReads, type ReadPacer } from "../../broker/read-pacer.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { MemoryLogger } from "./helpers.ts";

/**
 * The server side of a real loopback connection, paced as the broker paces a device's socket; the keepalive refresh on
 * `keepaliveClock` (the broker gives the wall clock).
 */
async function pacedSocket(
  warn: () => void,
  keepaliveClock: Clock = systemClock,
): Promise<{ pacer: ReadPacer; socket: net.Socket; close(): void }> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const accepted = new Promise<net.Socket>((resolve) => server.once("connection", resolve));
  const device = net.connect((server.address() as AddressInfo).port, "127.0.0.1");
  const socket = await accepted;
  paceReads(socket, keepaliveClock, 4, warn);
  const pacer = pacerOf(socket);
  assert.ok(pacer);
  return {
    pacer,
    socket,
    close() {
      device.destroy();
      socket.destroy();
      server.close();
    },
  };
}

/** An aedes client as far as the pacer sees it: its keepalive fields, in the shape a given aedes version has. */
const client = (fields: Record<string, unknown>): Client => ({ closed: false, ...fields }) as unknown as Client;

describe("the read pacer and aedes' keepalive timer, whose fields are not in aedes' typings", () => {
  const logger = new MemoryLogger();
  const warn = keepaliveWarning(logger);
  let paced: Awaited<ReturnType<typeof pacedSocket>>;
  before(async () => {
    paced = await pacedSocket(warn);
  });
  after(() => paced.close());

  test("a timer in the known shape is refreshed on hold and release, and nothing is logged", () => {
    let refreshed = 0;
    const known = client({ _keepaliveInterval: 45_001, _keepaliveTimer: { refresh: () => refreshed++ } });
    paced.pacer.update(true, 0, known);
    paced.pacer.update(false, 4, known);
    assert.equal(refreshed, 2);
    assert.equal(logger.lines.length, 0);
  });

  test("a keepalive of 0 (no timer) is left alone, and nothing is logged", () => {
    const none = client({ _keepaliveInterval: -1, _keepaliveTimer: null });
    paced.pacer.update(true, 0, none);
    paced.pacer.update(false, 4, none);
    assert.equal(logger.lines.length, 0);
  });

  test("a timer of another shape (an older aedes' retimer) neither throws in the up path nor goes unnoticed: one warning", () => {
    const other = client({ _keepaliveInterval: 45_001, _keepaliveTimer: { reschedule: () => {} } });
    const renamed = client({ keepaliveTimer: { refresh: () => {} } });
    for (const c of [other, renamed, other]) {
      assert.doesNotThrow(() => paced.pacer.update(true, 0, c));
      assert.doesNotThrow(() => paced.pacer.update(false, 4, c));
    }
    assert.equal(logger.lines.filter((l) => l.level === "warn").length, 1);
  });
});

describe("the keepalive refresh of a held session", () => {
  test("runs every half of aedes' period on the clock it is given, and ends with the connection even while still held", async () => {
    const clock = new ManualClock();
    const paced = await pacedSocket(() => {}, clock);
    try {
      let refreshed = 0;
      const held = client({ _keepaliveInterval: 1000, _keepaliveTimer: { refresh: () => refreshed++ } });
      paced.pacer.update(true, 0, held);
      assert.equal(refreshed, 1, "refreshed when the hold begins");
      assert.equal(clock.pending, 1);
      clock.advanceSync(500);
      assert.equal(refreshed, 2, "and again half a period later");
      const closed = new Promise((resolve) => paced.socket.once("close", resolve));
      paced.socket.destroy();
      await closed;
      assert.equal(clock.pending, 0, "no refresh timer (holding the stream and client) outlives the connection");
      clock.advanceSync(5000);
      assert.equal(refreshed, 2);
    } finally {
      paced.close();
    }
  });
});
