/**
 * start() and the runtime.db rows of agents whose database file is gone. A destroy whose delete runtime.db refused
 * keeps the rows for a later retry (alarm-rows.ts); when the process ends before the retry lands, they survive. The
 * next start woke each such agent (its alarm, its pending mark), which made a fresh empty database for an agent that
 * was destroyed, and listed its directory entries for the fleet. Start now drops those rows without waking anyone,
 * logs it once with a count, and leaves agents whose file exists alone.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, describe, test } from "node:test";
import Database from "better-sqlite3";
import { Agent, type Value } from "../../agents/index.ts";
import type { BridgeError } from "../../errors/index.ts";
import { encodeValue } from "../../agents/value-codec.ts";
import { capturingLogger } from "../support/capturing-logger.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { tempDir, testRuntime } from "./helpers.ts";
import { deleteAgentFault } from "./runtime-db-fault.ts";

/** Schedules and queue items that ran, by agent id. */
const ran: string[] = [];

class Keeper extends Agent {
  /** An alarm row (the schedule) and a directory entry in runtime.db. */
  keep(seconds: number): void {
    this.schedule(seconds, "tick", "schedule");
    this.env.directory.put("fleet", this.id, this.id);
  }
  /** A pending mark in runtime.db: a task still running keeps it (and the agent in memory). */
  hold(): void {
    this.startTask("forever", null, () => new Promise<Value>(() => {}));
  }
  tick(what: string): void {
    ran.push(`${this.id}:${what}`);
  }
}

function agentFile(dataDir: string, id: string): string {
  return path.join(dataDir, "agents", `${id}.db`);
}

/** The agents with a row in each table of runtime.db (read with the runtime shut down). */
function rowsOf(dataDir: string): { alarms: string[]; pending: string[]; directory: string[] } {
  const db = new Database(path.join(dataDir, "runtime.db"), { readonly: true });
  try {
    const ids = (sql: string) => (db.prepare(sql).all() as Array<{ agent_id: string }>).map((r) => r.agent_id).sort();
    return {
      alarms: ids("SELECT agent_id FROM alarms"),
      pending: ids("SELECT agent_id FROM pending"),
      directory: ids("SELECT agent_id FROM directory"),
    };
  } finally {
    db.close();
  }
}

const DROPPED = "dropped without waking them";

describe("start() drops the runtime.db rows of agents whose database is gone", () => {
  const t = tempDir();
  after(() => t.remove());

  for (const asleep of [false, true]) {
    test(`an agent destroyed ${asleep ? "while hibernated" : "in memory"} before a crash is not made again`, async () => {
      ran.length = 0;
      const dataDir = path.join(t.dir, asleep ? "asleep" : "awake");
      const clock = new ManualClock();
      const first = testRuntime(dataDir, Keeper, 1, { clock, idleTimeoutMs: 1_000 });
      const fault = deleteAgentFault();
      try {
        await first.start();
        for (const id of ["gone", "kept"]) assert.equal((await first.call(id, "keep", [60])).ok, true);
        if (!asleep) assert.equal((await first.call("gone", "hold", [])).ok, true);
        if (asleep) await clock.advance(2_000);
        assert.equal(first.stats().active, asleep ? 0 : 2);
        // runtime.db refuses the delete, and still does at the shutdown's last try: the process ends with the rows
        // of the destroyed agent in runtime.db, as a crash before the retry would leave them.
        fault.failing = true;
        assert.equal(await first.destroyAgent("gone"), true);
        await first.shutdown();
      } finally {
        fault.restore();
      }
      assert.equal(fs.existsSync(agentFile(dataDir, "gone")), false);
      const before = rowsOf(dataDir);
      assert.ok(before.alarms.includes("gone"), "the destroyed agent's alarm row survived");
      assert.ok(before.directory.includes("gone"), "and its directory entry");
      if (!asleep) assert.ok(before.pending.includes("gone"), "and its pending mark");

      ran.length = 0;
      const clock2 = new ManualClock(clock.now());
      const { logger, lines } = capturingLogger("warn");
      const second = testRuntime(dataDir, Keeper, 2, { clock: clock2, logger });
      try {
        await second.start();
        assert.deepEqual(
          second.directory.list("fleet").map((e) => e.agentId),
          ["kept"],
          "the fleet directory lists no destroyed agent",
        );
        await clock2.advance(120_000);
        assert.equal(fs.existsSync(agentFile(dataDir, "gone")), false, "the destroyed agent was not made again");
        assert.deepEqual(ran, ["kept:schedule"], "the other agent's schedule fired as usual");
        const dropped = lines.filter((l) => String(l.msg).includes(DROPPED));
        assert.equal(dropped.length, 1, "logged once");
        assert.equal(dropped[0].agents, 1);
        assert.deepEqual(dropped[0].ids, ["gone"]);
      } finally {
        await second.shutdown();
      }
      const rows = rowsOf(dataDir);
      assert.equal(rows.alarms.includes("gone") || rows.pending.includes("gone"), false, "its rows are gone");
      assert.deepEqual(rows.directory, ["kept"]);
    });
  }

  test("a delete runtime.db refuses at start wakes nobody meanwhile and lands at the retry", async () => {
    ran.length = 0;
    const dataDir = path.join(t.dir, "refused-at-start");
    const clock = new ManualClock();
    const first = testRuntime(dataDir, Keeper, 7, { clock });
    await first.start();
    // A second agent, which keeps its file: one missing of two is within the share start drops on its own.
    for (const id of ["gone", "kept"]) assert.equal((await first.call(id, "keep", [5])).ok, true);
    await first.shutdown();
    fs.rmSync(agentFile(dataDir, "gone"));

    const clock2 = new ManualClock(clock.now());
    const second = testRuntime(dataDir, Keeper, 8, { clock: clock2 });
    const fault = deleteAgentFault();
    try {
      fault.failing = true;
      await second.start();
      await clock2.advance(10_000);
      assert.equal(fs.existsSync(agentFile(dataDir, "gone")), false, "its alarm did not wake it");
      fault.failing = false;
      await clock2.advance(120_000);
      assert.deepEqual(fault.deleted, ["gone"], "the rows were deleted at a retry");
    } finally {
      fault.restore();
      await second.shutdown();
    }
    assert.deepEqual(ran, ["kept:schedule"]);
    assert.deepEqual(rowsOf(dataDir), { alarms: [], pending: [], directory: ["kept"] });
  });

  test("rows written by hand for agents without a database are dropped; a restart after that logs nothing", async () => {
    ran.length = 0;
    const dataDir = path.join(t.dir, "by-hand");
    const clock = new ManualClock();
    const first = testRuntime(dataDir, Keeper, 3, { clock });
    await first.start();
    // Two ghosts among five agents: within the share start drops without being told to (see the guard's tests).
    for (const id of ["real", "real-2", "real-3"]) assert.equal((await first.call(id, "keep", [30])).ok, true);
    await first.shutdown();
    const db = new Database(path.join(dataDir, "runtime.db"));
    const at = clock.now() + 5_000;
    for (const id of ["ghost-1", "ghost-2", "../escape"]) {
      db.prepare("INSERT INTO alarms (agent_id, at) VALUES (?, ?)").run(id, at);
      db.prepare("INSERT INTO pending (agent_id) VALUES (?)").run(id);
      db.prepare("INSERT INTO directory (kind, agent_id, key, value) VALUES ('fleet', ?, ?, ?)").run(
        id,
        id,
        encodeValue(id),
      );
    }
    db.close();

    ran.length = 0;
    for (const round of [1, 2]) {
      const { logger, lines } = capturingLogger("warn");
      const clock2 = new ManualClock(clock.now());
      const rt = testRuntime(dataDir, Keeper, 3 + round, { clock: clock2, logger });
      try {
        await rt.start();
        await clock2.advance(60_000);
        assert.deepEqual(
          rt.directory.list("fleet").map((e) => e.agentId),
          ["real", "real-2", "real-3"],
        );
        const dropped = lines.filter((l) => String(l.msg).includes(DROPPED));
        if (round === 1) {
          assert.equal(dropped.length, 1);
          assert.equal(dropped[0].agents, 3);
        } else assert.equal(dropped.length, 0, "nothing left to drop");
      } finally {
        await rt.shutdown();
      }
    }
    assert.deepEqual(
      fs.readdirSync(path.join(dataDir, "agents")).sort(),
      ["real-2.db", "real-3.db", "real.db"],
      "no database was made for a ghost",
    );
    assert.deepEqual(
      ran.sort(),
      ["real-2:schedule", "real-3:schedule", "real:schedule"],
      "the real agents' schedules fired",
    );
    assert.deepEqual(rowsOf(dataDir).directory, ["real", "real-2", "real-3"]);
  });
});

/**
 * An agents folder that holds few or none of the agents runtime.db lists is more likely not the agents folder at all
 * than a fleet destroyed in one go: a volume not mounted yet (an SD card, a network share slow at boot) leaves an empty
 * folder at the mount point, and a wrong data dir copy or restore leaves another. Dropping every row then lost each
 * agent's alarm, pending mark and directory entries for good: once the volume was back, their schedules waited for
 * some other event to wake them, and queue items left at the stop for the device's next message. Start now refuses
 * (BRIDGE_ERR_STORAGE naming the folder) when more than half the agents it lists have no database, changes nothing,
 * and drops them only when told to (`dropMissingAgentRows`).
 */
describe("start() refuses to drop the rows of most of the fleet", () => {
  const t = tempDir();
  after(() => t.remove());

  /** Three agents, each with an alarm and a directory entry; the runtime shut down. */
  async function fleetOf3(dataDir: string, clock: ManualClock): Promise<void> {
    const rt = testRuntime(dataDir, Keeper, 11, { clock });
    await rt.start();
    for (const id of ["a", "b", "c"]) assert.equal((await rt.call(id, "keep", [60])).ok, true);
    await rt.shutdown();
  }

  test("an empty agents folder (its volume not mounted) refuses start, changes nothing, and the fleet runs once it is back", async () => {
    ran.length = 0;
    const dataDir = path.join(t.dir, "unmounted");
    const agentsDir = path.join(dataDir, "agents");
    const clock = new ManualClock();
    await fleetOf3(dataDir, clock);
    const before = rowsOf(dataDir);
    // The volume is not mounted: its mount point is an empty folder.
    fs.renameSync(agentsDir, path.join(dataDir, "volume"));
    fs.mkdirSync(agentsDir);

    const { logger, lines } = capturingLogger("warn");
    const clock2 = new ManualClock(clock.now());
    const second = testRuntime(dataDir, Keeper, 12, { clock: clock2, logger });
    try {
      await assert.rejects(second.start(), (err: unknown) => {
        const e = err as BridgeError;
        assert.equal(e.code, "BRIDGE_ERR_STORAGE");
        assert.equal(e.details.path, agentsDir);
        assert.equal(e.details.agents, 3);
        assert.equal(e.details.missing, 3);
        assert.match(e.message, /3 of the 3 agents runtime\.db lists have no database in/);
        assert.match(e.message, /dropMissingAgentRows/);
        return true;
      });
      await clock2.advance(120_000);
      assert.deepEqual(fs.readdirSync(agentsDir), [], "no agent was made in the empty folder");
      assert.equal(lines.filter((l) => String(l.msg).includes(DROPPED)).length, 0);
    } finally {
      await second.shutdown();
    }
    assert.deepEqual(rowsOf(dataDir), before, "runtime.db is as it was");

    // Mounted again: every agent's schedule fires.
    fs.rmdirSync(agentsDir);
    fs.renameSync(path.join(dataDir, "volume"), agentsDir);
    const clock3 = new ManualClock(clock.now());
    const third = testRuntime(dataDir, Keeper, 13, { clock: clock3 });
    try {
      await third.start();
      await clock3.advance(120_000);
    } finally {
      await third.shutdown();
    }
    assert.deepEqual(ran.sort(), ["a:schedule", "b:schedule", "c:schedule"]);
  });

  test("more than half the agents missing refuses start; half or fewer are dropped as before", async () => {
    const dataDir = path.join(t.dir, "share");
    const clock = new ManualClock();
    await fleetOf3(dataDir, clock);
    fs.rmSync(agentFile(dataDir, "a"));
    fs.rmSync(agentFile(dataDir, "b"));
    const refused = testRuntime(dataDir, Keeper, 14, { clock: new ManualClock(clock.now()) });
    try {
      await assert.rejects(refused.start(), { code: "BRIDGE_ERR_STORAGE" });
    } finally {
      await refused.shutdown();
    }
    assert.deepEqual(rowsOf(dataDir).alarms, ["a", "b", "c"]);

    // One of three: within the share.
    const dataDir2 = path.join(t.dir, "share-2");
    await fleetOf3(dataDir2, clock);
    fs.rmSync(agentFile(dataDir2, "a"));
    const dropped = testRuntime(dataDir2, Keeper, 15, { clock: new ManualClock(clock.now()) });
    try {
      await dropped.start();
    } finally {
      await dropped.shutdown();
    }
    assert.deepEqual(rowsOf(dataDir2).alarms, ["b", "c"]);
  });

  test("dropMissingAgentRows drops them all, once the operator says the agents are gone", async () => {
    ran.length = 0;
    const dataDir = path.join(t.dir, "told");
    const clock = new ManualClock();
    await fleetOf3(dataDir, clock);
    for (const id of ["a", "b", "c"]) fs.rmSync(agentFile(dataDir, id));
    const { logger, lines } = capturingLogger("warn");
    const clock2 = new ManualClock(clock.now());
    const rt = testRuntime(dataDir, Keeper, 16, { clock: clock2, logger, dropMissingAgentRows: true });
    try {
      await rt.start();
      await clock2.advance(120_000);
      const dropped = lines.filter((l) => String(l.msg).includes(DROPPED));
      assert.equal(dropped.length, 1);
      assert.equal(dropped[0].agents, 3);
    } finally {
      await rt.shutdown();
    }
    assert.deepEqual(rowsOf(dataDir), { alarms: [], pending: [], directory: [] });
    assert.deepEqual(fs.readdirSync(path.join(dataDir, "agents")), [], "no agent was made again");
    assert.deepEqual(ran, []);
  });

  test("dropMissingAgentRows must be a boolean", () => {
    assert.throws(
      () =>
        testRuntime(path.join(t.dir, "bad-option"), Keeper, 17, { dropMissingAgentRows: "yes" as unknown as boolean }),
      { code: "BRIDGE_ERR_INVALID_OPTION" },
    );
  });
});
