import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import type { DeviceConnection } from "../../broker/connection.ts";
import { createDeviceRegistry, type DeviceRegistry } from "../../broker/index.ts";
import { silentLogger } from "../../broker/options.ts";
import { KeptSessions } from "../../broker/kept-sessions.ts";
import { RegistryWatch } from "../../broker/registry-watch.ts";
import type { SessionManager } from "../../broker/sessions.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { connectDevice, endClient, startTestBroker } from "./helpers.ts";

const cheap = { N: 1024, r: 8, p: 1 };

/** The parts of a session the watch reads; a registered one was verified against `registry`'s record of it. */
function session(deviceId: string, registry?: DeviceRegistry): DeviceConnection {
  const recordId = registry?.get(deviceId)?.recordId;
  return {
    deviceId,
    registered: registry !== undefined,
    recordId,
    closed: false,
  } as unknown as DeviceConnection;
}

/**
 * A watch on `registry` over the sessions in `live` (those not `finished`; an ended one stays until the test marks it
 * so, as a session does until its end is done) and the persistent sessions noted in `kept`, looking every 500 ms of
 * `clock`; `ended` lists the sessions it ended, `dropped` the kept sessions it dropped.
 */
function startWatch(
  registry: DeviceRegistry,
  live: Array<DeviceConnection & { finished?: boolean }>,
  clock: ManualClock,
  kept = new KeptSessions(),
) {
  const ended: string[] = [];
  const dropped: string[] = [];
  const watch = new RegistryWatch({
    registry,
    sessions: { liveSessions: () => live.filter((c) => c.finished !== true) } as unknown as SessionManager,
    clock,
    intervalMs: 500,
    logger: silentLogger,
    endSession: (c) => {
      ended.push(c.deviceId);
      c.closed = true;
    },
    kept,
    dropKept: (deviceId) => {
      dropped.push(deviceId);
      kept.forget(deviceId);
    },
  });
  watch.start();
  return { watch, ended, dropped };
}

/** Notes a persistent session of `deviceId` verified against `registry`'s record of it, as the broker does. */
function keep(kept: KeptSessions, deviceId: string, registry: DeviceRegistry): void {
  kept.opened({ deviceId, clean: false, recordId: registry.get(deviceId)?.recordId });
}

describe("registry watch: devices another process removes lose their session", () => {
  let dir: string;
  let file: string;
  /** The bridge's registry. */
  let bridge: DeviceRegistry;
  /** Another process's (the CLI's) connection to the same file. */
  let cli: DeviceRegistry;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "broker-registry-watch-"));
    file = path.join(dir, "registry.db");
    bridge = createDeviceRegistry({ path: file, scrypt: cheap });
    // Time stands still for the CLI: a device it removes and adds again gets the same createdAt, as a script doing
    // both within one millisecond would, so nothing here can tell the two records apart by their creation time.
    cli = createDeviceRegistry({ path: file, scrypt: cheap, clock: new ManualClock() });
    const ids = [
      "kept-1",
      "gone-1",
      "gone-2",
      "own-1",
      "again-1",
      "offline-kept-1",
      "offline-gone-1",
      "offline-again-1",
    ];
    for (const id of [...ids, "ending-1"]) await cli.add(id);
  });
  after(() => {
    bridge.close();
    cli.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test("externalVersion moves with another connection's commits, not with the registry's own", () => {
    const v0 = bridge.externalVersion();
    bridge.setFirmware("kept-1", "1.0.0");
    bridge.touch("kept-1", 1);
    bridge.flush();
    assert.equal(bridge.externalVersion(), v0, "own writes");
    cli.setFirmware("kept-1", "1.0.1");
    assert.notEqual(bridge.externalVersion(), v0, "another connection's commit");
  });

  test("on a change, registered sessions whose record is gone end, within one interval; others stay", async () => {
    const clock = new ManualClock();
    const live = [session("kept-1", bridge), session("gone-1", bridge), session("gone-2", bridge), session("anon-1")];
    const { watch, ended } = startWatch(bridge, live, clock);
    try {
      await clock.advance(500);
      assert.deepEqual(ended, [], "nothing changed");
      cli.remove("gone-1");
      cli.remove("gone-2");
      await clock.advance(499);
      assert.deepEqual(ended, [], "not before the next look");
      await clock.advance(1);
      assert.deepEqual(ended, ["gone-1", "gone-2"]);
      // The bridge's own removal (the operator API ends the session itself) does not trigger a look.
      bridge.remove("own-1");
      live.push(session("own-1", bridge));
      await clock.advance(1_000);
      assert.deepEqual(ended, ["gone-1", "gone-2"]);
    } finally {
      watch.stop();
    }
  });

  test("a device removed while its CONNECT was being verified is refused, although the look meanwhile found no session to end", async () => {
    const clock = new ManualClock();
    const added = await cli.add("racing-1");
    assert.equal(added.status, "created");
    const secret = added.status === "created" ? added.secret : "";
    // The CLI removes the device while scrypt runs for its CONNECT, and the broker's look falls in the same window:
    // the version moved, but the device has no session yet, so that look ends nothing (and the next sees no change).
    const registry: DeviceRegistry = {
      ...bridge,
      async verify(id, given) {
        const verdict = await bridge.verify(id, given);
        cli.remove(id);
        clock.advanceSync(500);
        return verdict;
      },
    };
    const tb = await startTestBroker({ registry, clock, registryCheckMs: 500 });
    try {
      const attempt = await connectDevice(tb.url, {
        clientId: "racing-1",
        username: "racing-1",
        password: secret,
      }).then(
        (client) => ({ client, code: 0 }),
        (err: { code?: unknown }) => ({ client: undefined, code: err.code }),
      );
      try {
        await clock.advance(1_000);
        assert.equal(tb.broker.isOnline("racing-1"), false, "the removed device keeps no session");
        assert.equal(attempt.code, 4, "refused as an unknown device is");
        assert.equal(tb.host.opens("racing-1").length, 0, "its agent never heard of it");
      } finally {
        if (attempt.client !== undefined) await endClient(attempt.client, true);
      }
    } finally {
      await tb.close();
    }
  });

  test("a CONNECT whose record another process replaced (removed and added again, within one millisecond) while its secret was checked is refused", async () => {
    const clock = new ManualClock();
    const added = await cli.add("replaced-1");
    assert.equal(added.status, "created");
    const oldSecret = added.status === "created" ? added.secret : "";
    const oldCreatedAt = bridge.get("replaced-1")?.createdAt;
    // The old secret verifies against the old record; meanwhile the operator re-provisions the device (a leaked
    // secret): the record exists again when the CONNECT reads it, but under a new secret.
    const registry: DeviceRegistry = {
      ...bridge,
      async verify(id, given) {
        const verdict = await bridge.verify(id, given);
        cli.remove(id);
        await cli.add(id);
        return verdict;
      },
    };
    const tb = await startTestBroker({ registry, clock, registryCheckMs: 500 });
    try {
      const attempt = await connectDevice(tb.url, {
        clientId: "replaced-1",
        username: "replaced-1",
        password: oldSecret,
      }).then(
        (client) => ({ client, code: 0 }),
        (err: { code?: unknown }) => ({ client: undefined, code: err.code }),
      );
      try {
        assert.equal(bridge.get("replaced-1")?.createdAt, oldCreatedAt, "replaced within the same millisecond");
        // The watch would not end such a session later: the session would remember the new record.
        await clock.advance(1_000);
        assert.equal(attempt.code, 4, "the old secret is refused as a wrong one is");
        assert.equal(tb.broker.isOnline("replaced-1"), false, "no session under the old secret");
        assert.equal(tb.host.opens("replaced-1").length, 0, "its agent never heard of it");
      } finally {
        if (attempt.client !== undefined) await endClient(attempt.client, true);
      }
    } finally {
      await tb.close();
    }
  });

  test("a device removed and added again by another process (a new secret, within one millisecond) loses the session of the old one", async () => {
    const clock = new ManualClock();
    const live = [session("again-1", bridge)];
    const { watch, ended } = startWatch(bridge, live, clock);
    try {
      // Within one interval, as an operator re-provisioning a device whose secret leaked would.
      const before = bridge.get("again-1");
      cli.remove("again-1");
      await cli.add("again-1");
      assert.equal(bridge.get("again-1")?.createdAt, before?.createdAt, "registered again within the same millisecond");
      await clock.advance(500);
      assert.deepEqual(ended, ["again-1"], "the session verified against the old record ends");
    } finally {
      watch.stop();
    }
  });

  test("on a change, the kept sessions of offline devices whose record is gone or replaced are dropped; others stay", async () => {
    const clock = new ManualClock();
    const kept = new KeptSessions();
    for (const id of ["offline-kept-1", "offline-gone-1", "offline-again-1"]) keep(kept, id, bridge);
    const { watch, ended, dropped } = startWatch(bridge, [], clock, kept);
    try {
      await clock.advance(500);
      assert.deepEqual(dropped, [], "nothing changed");
      cli.remove("offline-gone-1");
      cli.remove("offline-again-1");
      await cli.add("offline-again-1");
      await clock.advance(500);
      assert.deepEqual(dropped, ["offline-gone-1", "offline-again-1"]);
      assert.deepEqual(ended, [], "no live session to end");
      assert.deepEqual(
        kept.list().map((k) => k.deviceId),
        ["offline-kept-1"],
        "the dropped ones are forgotten: the list stays bounded",
      );
      cli.setFirmware("offline-kept-1", "1.0.0");
      await clock.advance(500);
      assert.deepEqual(dropped, ["offline-gone-1", "offline-again-1"], "looked again: nothing more to drop");
    } finally {
      watch.stop();
    }
  });

  test("a kept session of a device whose session is still ending is dropped at a later look, with no further change", async () => {
    const clock = new ManualClock();
    const kept = new KeptSessions();
    keep(kept, "ending-1", bridge);
    // Its device disconnected and the session is still ending (it may yet add frames to the store): not the watch's to
    // end, and not to drop under it.
    const ending = Object.assign(session("ending-1", bridge), { closed: true, finished: false });
    const { watch, ended, dropped } = startWatch(bridge, [ending], clock, kept);
    try {
      cli.remove("ending-1");
      await clock.advance(500);
      assert.deepEqual([ended, dropped], [[], []]);
      ending.finished = true;
      await clock.advance(500);
      assert.deepEqual(dropped, ["ending-1"], "the registry did not change again, and it looked all the same");
    } finally {
      watch.stop();
    }
  });

  test("interval 0 never looks", async () => {
    const clock = new ManualClock();
    const watch = new RegistryWatch({
      registry: bridge,
      sessions: {
        liveSessions: () => assert.fail("looked although turned off"),
      } as unknown as SessionManager,
      clock,
      intervalMs: 0,
      logger: silentLogger,
      endSession: () => assert.fail("ended a session although turned off"),
      kept: { list: () => assert.fail("looked although turned off") },
      dropKept: () => assert.fail("dropped a session although turned off"),
    });
    watch.start();
    cli.setFirmware("kept-1", "2.0.0");
    await clock.advance(10_000);
    watch.stop();
  });
});
