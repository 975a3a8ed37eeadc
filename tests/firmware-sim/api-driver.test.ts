import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createManualClock, seededRandom, startApiDriver, TickScheduler } from "../../firmware-sim/index.ts";
import { CommandBook } from "../../firmware-sim/device/command-book.ts";
import { handleCommand } from "../../firmware-sim/handlers/cmd.ts";
import type { DeviceContext } from "../../firmware-sim/handlers/context.ts";
import { getProfile } from "../../firmware-sim/profiles/index.ts";
import { FleetMetrics } from "../../firmware-sim/stats.ts";
import { verifyCommands } from "../../firmware-sim/fleet/verify-run.ts";
import { simApiToken } from "../../firmware-sim/api-token.ts";
import { stalledFetch, within } from "./helpers/stalled-fetch.ts";

type Call = { method: string; url: string; body: unknown };

/** A fake operator API: records calls, answers 201/200, refuses one device, reports a delta for another. */
function fakeApi(calls: Call[]): typeof fetch {
  return (async (input: string | URL | Request, init?: RequestInit) => {
    const url = String(input);
    const method = init?.method ?? "GET";
    calls.push({ method, url, body: init?.body === undefined ? undefined : JSON.parse(String(init.body)) });
    if (url.includes("/devices/gone/")) return new Response('{"error":{"code":"X"}}', { status: 404 });
    if (method === "GET") {
      const delta = url.includes("/devices/lag/") ? { target: 19 } : {};
      return Response.json({ desired: {}, reported: {}, delta });
    }
    return Response.json({ id: "c1" }, { status: method === "POST" ? 201 : 200 });
  }) as typeof fetch;
}

const flush = () => new Promise((r) => setImmediate(r));

describe("the API driver", () => {
  it("sends commands to online devices and desired changes to online shadow devices at the per-minute rates", async () => {
    const clock = createManualClock(1_000_000);
    const scheduler = new TickScheduler(clock);
    const calls: Call[] = [];
    const found: string[] = [];
    let offlineOnline = false;
    const driver = startApiDriver(
      { apiUrl: "http://api.test/", token: "tok", commandsPerMin: 6, desiredPerMin: 3, fetch: fakeApi(calls) },
      [
        { deviceId: "sensor-1", hasShadow: false, online: () => true },
        { deviceId: "thermo-1", hasShadow: true, online: () => true },
        { deviceId: "asleep", hasShadow: true, online: () => offlineOnline },
      ],
      scheduler,
      seededRandom(7),
      (kind, id, message) => found.push(`${kind} ${id} ${message}`),
    );
    clock.advance(60_000);
    await flush();
    await driver.stop();
    const commands = calls.filter((c) => c.method === "POST");
    const desired = calls.filter((c) => c.method === "PUT");
    assert.equal(commands.filter((c) => c.url.includes("/sensor-1/")).length, 6);
    assert.equal(commands.filter((c) => c.url.includes("/thermo-1/")).length, 6);
    assert.equal(desired.filter((c) => c.url === "http://api.test/api/devices/thermo-1/shadow/desired").length, 3);
    assert.equal(desired.filter((c) => c.url.includes("/sensor-1/")).length, 0, "no desired state for a sensor");
    assert.equal(calls.filter((c) => c.url.includes("/asleep/")).length, 0, "nothing for an offline device");
    for (const c of commands) {
      const body = c.body as { name: string };
      assert.ok(["ping", "echo", "selftest"].includes(body.name), body.name);
    }
    for (const c of desired) assert.equal(typeof (c.body as { state: { target: number } }).state.target, "number");
    assert.deepEqual(found, []);
    // Stopped: time passing sends nothing more.
    const before = calls.length;
    offlineOnline = true;
    clock.advance(60_000);
    await flush();
    assert.equal(calls.length, before);
    const result = driver.result();
    assert.equal(result.commandsIssued, 12);
    assert.equal(result.desiredIssued, 3);
    assert.equal(result.refused, 0);
  });

  it("reports refused requests and shadows still holding a delta as violations", async () => {
    const clock = createManualClock(0);
    const scheduler = new TickScheduler(clock);
    const calls: Call[] = [];
    const found: string[] = [];
    const driver = startApiDriver(
      { apiUrl: "http://api.test", commandsPerMin: 60, desiredPerMin: 60, fetch: fakeApi(calls) },
      [
        { deviceId: "gone", hasShadow: true, online: () => true },
        { deviceId: "lag", hasShadow: true, online: () => true },
        { deviceId: "fine", hasShadow: true, online: () => true },
      ],
      scheduler,
      seededRandom(1),
      (kind, id) => found.push(`${kind} ${id}`),
    );
    clock.advance(1000);
    await flush();
    await driver.stop();
    await driver.checkConvergence();
    assert.ok(found.includes("api-request-failed gone"));
    assert.ok(found.includes("state-not-converged lag"));
    assert.ok(!found.some((f) => f.endsWith(" fine")));
    const result = driver.result();
    assert.equal(result.shadowsChecked, 2, "only shadows whose desired change was accepted are read back");
    assert.equal(result.notConverged, 1);
    assert.ok(result.refused >= 2);
  });

  it("gives up on a request the API never answers after requestTimeoutMs, so stop() does not wait on it", async () => {
    const clock = createManualClock(0);
    const found: string[] = [];
    const driver = startApiDriver(
      { apiUrl: "http://api.test", commandsPerMin: 60, desiredPerMin: 60, fetch: stalledFetch(), requestTimeoutMs: 50 },
      [{ deviceId: "thermo-1", hasShadow: true, online: () => true }],
      new TickScheduler(clock),
      seededRandom(2),
      (kind, id, message) => found.push(`${kind} ${id} ${message}`),
    );
    clock.advance(1000);
    await flush();
    await within(2000, driver.stop());
    const result = driver.result();
    assert.equal(result.refused, 2);
    assert.equal(found.length, 2);
    for (const line of found) assert.match(line, /^api-request-failed thermo-1 .*no answer within 50 ms/);
  });

  it("drops the queued requests that have not started at stop, counting them as not sent, and waits only for those in flight", async () => {
    const clock = createManualClock(0);
    const calls: Call[] = [];
    const answers: (() => void)[] = [];
    // An API that answers only when the test says so: one request in flight, the rest queued behind it.
    const slow = (async (input: string | URL | Request, init?: RequestInit) => {
      calls.push({ method: init?.method ?? "GET", url: String(input), body: undefined });
      await new Promise<void>((resolve) => answers.push(resolve));
      return Response.json({ id: "c1" }, { status: 201 });
    }) as typeof fetch;
    const driver = startApiDriver(
      { apiUrl: "http://api.test", commandsPerMin: 600, concurrency: 1, fetch: slow },
      Array.from({ length: 5 }, (_, i) => ({ deviceId: `d${i}`, hasShadow: false, online: () => true })),
      new TickScheduler(clock),
      seededRandom(3),
      () => {},
    );
    clock.advance(1000);
    await flush();
    assert.equal(calls.length, 1, "one request in flight");
    const issued = driver.result().commandsIssued;
    assert.ok(issued >= 40, `commands issued: ${issued}`);
    const stopped = driver.stop();
    answers.shift()?.();
    await within(2000, stopped);
    await flush();
    assert.equal(calls.length, 1, "no queued request starts after stop");
    const result = driver.result();
    assert.equal(result.unsentAtStop, issued - 1);
    assert.equal(result.refused, 0);
  });

  it("refuses a negative rate naming the field", () => {
    const clock = createManualClock(0);
    assert.throws(
      () =>
        startApiDriver({ apiUrl: "http://x", commandsPerMin: -1 }, [], new TickScheduler(clock), Math.random, () => {}),
      /driveApi\.commandsPerMin/,
    );
  });
});

describe("the command invariant", () => {
  function context(found: string[], brokerSetsDup = true): DeviceContext {
    return {
      deviceId: "d1",
      profile: getProfile("sensor"),
      metrics: new FleetMetrics(),
      commands: new CommandBook(brokerSetsDup),
      reasons: undefined as never,
      shadow: undefined,
      aliases: { aliasesUnknown: () => {} },
      nowMs: () => 0,
      deviceNowMs: () => undefined,
      send: () => {},
      violation: (kind, message) => found.push(`${kind}: ${message}`),
      reasonDone: () => {},
    };
  }

  it("flags a command delivered again after its ack was acknowledged, but not a DUP retransmission or an earlier redelivery", () => {
    const found: string[] = [];
    const ctx = context(found);
    handleCommand(ctx, { id: "c1", n: "ping" }, { dup: false, packetId: 1 });
    handleCommand(ctx, { id: "c1", n: "ping" }, { dup: false, packetId: 2 });
    assert.deepEqual(found, [], "a redelivery before the ack was stored is allowed");
    ctx.commands.confirm("c1");
    handleCommand(ctx, { id: "c1", n: "ping" }, { dup: true, packetId: 2 });
    assert.deepEqual(found, [], "an MQTT DUP retransmission is allowed");
    // A broker that sets DUP sends a new PUBLISH without it, whatever packet id it gets.
    handleCommand(ctx, { id: "c1", n: "ping" }, { dup: false, packetId: 2 });
    assert.equal(found.length, 1);
    assert.match(found[0] ?? "", /^command-redelivered-after-ack: command c1/);
  });

  it("from a broker that resends without DUP, takes a repeat with the last packet id for its resend", () => {
    const found: string[] = [];
    const ctx = context(found, false);
    handleCommand(ctx, { id: "c1", n: "ping" }, { dup: false, packetId: 7 });
    ctx.commands.confirm("c1");
    handleCommand(ctx, { id: "c1", n: "ping" }, { dup: false, packetId: 7 });
    handleCommand(ctx, { id: "c1", n: "ping" }, { dup: true, packetId: 3 });
    assert.deepEqual(found, [], "the resend of packet 7, then a resend that says so");
    handleCommand(ctx, { id: "c1", n: "ping" }, { dup: false, packetId: 9 });
    assert.equal(found.length, 1, "another packet id without DUP: a new PUBLISH");
    assert.equal(ctx.metrics.counters.commandsRedelivered, 3);
    assert.equal(ctx.metrics.counters.acksSent, 4, "every delivery is answered with the first ack");
  });

  it("counts a mismatched outcome and a 404 as violations of their own kinds", async () => {
    const kinds: string[] = [];
    const result = await verifyCommands(
      async () => ({
        status: "read",
        unrecorded: [],
        mismatched: [{ id: "a", state: "FAILED", expected: "SUCCEEDED" }],
        missing: ["b"],
      }),
      new Map([
        [
          "d1",
          [
            { id: "a", ok: true },
            { id: "b", ok: true },
            { id: "c", ok: false },
          ],
        ],
      ]),
      2,
      (v) => kinds.push(v.kind),
    );
    assert.deepEqual(kinds, ["command-outcome-mismatch", "command-missing"]);
    assert.deepEqual(result, {
      status: "checked",
      devices: 1,
      commands: 3,
      unrecorded: 0,
      mismatched: 1,
      missing: 1,
      unavailableDevices: 0,
    });
  });
});

describe("the simulator's API token", () => {
  it("comes from the flag, else BRIDGE_API_TOKEN, else the older AGENT_BRIDGE_API_TOKEN", () => {
    assert.equal(simApiToken("flag", { BRIDGE_API_TOKEN: "new", AGENT_BRIDGE_API_TOKEN: "old" }), "flag");
    assert.equal(simApiToken(undefined, { BRIDGE_API_TOKEN: "new", AGENT_BRIDGE_API_TOKEN: "old" }), "new");
    assert.equal(simApiToken(undefined, { AGENT_BRIDGE_API_TOKEN: "old" }), "old");
    assert.equal(simApiToken(undefined, { BRIDGE_API_TOKEN: "", AGENT_BRIDGE_API_TOKEN: "old" }), "old");
    assert.equal(simApiToken(undefined, {}), undefined);
  });
});
