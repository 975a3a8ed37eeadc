import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, describe, test } from "node:test";
import Database from "better-sqlite3";
import { Agent, type RuntimeObserver } from "../../agents/index.ts";
import { tempDir, testRuntime } from "./helpers.ts";

let gate: Promise<void> = Promise.resolve();

class Tally extends Agent<{ n: number }> {
  static override callable = ["bump", "slowBump"];
  override initialState = { n: 0 };
  bump(): number {
    this.setState({ n: this.state.n + 1 });
    return this.state.n;
  }
  /** Holds its event (and its transaction) open until the test opens the gate. */
  async slowBump(): Promise<number> {
    this.setState({ n: this.state.n + 1 });
    await gate;
    return this.state.n;
  }
}

/** The state a copied agent database holds, read as a restored runtime would: by waking it there. */
async function stateIn(dataDir: string, id: string): Promise<unknown> {
  const rt = testRuntime(dataDir, Tally, 9);
  try {
    return await rt.call(id, "bump", []);
  } finally {
    await rt.shutdown();
  }
}

function integrity(file: string): string {
  const db = new Database(file, { readonly: true });
  try {
    return db.pragma("integrity_check", { simple: true }) as string;
  } finally {
    db.close();
  }
}

describe("runtime backup", () => {
  const t = tempDir("runtime-backup-");
  after(() => t.remove());

  test("copies agents in memory and hibernated ones, without waking the hibernated", async () => {
    const wakes: string[] = [];
    const observer: RuntimeObserver = { onWake: (i) => wakes.push(i.agentId) };
    const live = path.join(t.dir, "live");
    const rt = testRuntime(live, Tally, 1, { maxActiveAgents: 2, observer });
    const out = path.join(t.dir, "copy");
    try {
      for (const id of ["a", "b", "c", "d"]) await rt.call(id, "bump", []);
      await rt.call("a", "bump", []);
      assert.equal(rt.stats().hibernated, 2, "two agents are on disk only");
      wakes.length = 0;
      const result = await rt.backup(out, { concurrency: 2 });
      assert.equal(result.agents, 4);
      assert.deepEqual(wakes, [], "no agent woke for the backup");
      const files = ["runtime.db", ...["a", "b", "c", "d"].map((id) => path.join("agents", `${id}.db`))];
      let bytes = 0;
      for (const f of files) {
        assert.equal(integrity(path.join(out, f)), "ok", f);
        bytes += fs.statSync(path.join(out, f)).size;
      }
      assert.equal(result.bytes, bytes);
    } finally {
      await rt.shutdown();
    }
    assert.deepEqual(await stateIn(out, "a"), { ok: true, value: 3 });
    assert.deepEqual(await stateIn(out, "c"), { ok: true, value: 2 });
  });

  test("copies go one per turn of the event loop, agents in memory included, so other work runs between them", async () => {
    const rt = testRuntime(path.join(t.dir, "turns"), Tally, 3, { maxActiveAgents: 64 });
    const out = path.join(t.dir, "turns-copy");
    const ids = Array.from({ length: 12 }, (_, i) => `t${String(i).padStart(2, "0")}`);
    let turn = 0;
    let ticking = true;
    const tick = (): void => {
      turn++;
      if (ticking) setImmediate(tick);
    };
    try {
      for (const id of ids) await rt.call(id, "bump", []);
      assert.equal(rt.stats().hibernated, 0, "every agent is in memory");
      const turnsOfCopies: number[] = [];
      setImmediate(tick);
      await rt.backup(out, { concurrency: 4, onAgent: () => turnsOfCopies.push(turn) });
      assert.equal(turnsOfCopies.length, ids.length);
      assert.equal(new Set(turnsOfCopies).size, ids.length, `one copy per turn: ${turnsOfCopies.join(", ")}`);
    } finally {
      ticking = false;
      await rt.shutdown();
    }
  });

  test("an agent's copy lands between its events: after the one running, before the ones behind it", async () => {
    const rt = testRuntime(path.join(t.dir, "boundary"), Tally, 2);
    const out = path.join(t.dir, "boundary-copy");
    let open = (): void => {};
    gate = new Promise((resolve) => {
      open = resolve;
    });
    try {
      await rt.call("x", "bump", []);
      const slow = rt.call("x", "slowBump", []);
      await new Promise((resolve) => setImmediate(resolve));
      const backup = rt.backup(out);
      await new Promise((resolve) => setImmediate(resolve));
      const behind = rt.call("x", "bump", []);
      open();
      assert.deepEqual(await slow, { ok: true, value: 2 });
      assert.deepEqual(await behind, { ok: true, value: 3 });
      assert.equal((await backup).agents, 1);
    } finally {
      gate = Promise.resolve();
      await rt.shutdown();
    }
    // The copy holds the slow event's write (committed before it) and not the one queued behind it.
    assert.deepEqual(await stateIn(out, "x"), { ok: true, value: 3 });
  });

  test("events for hibernated agents keep running while the backup copies them", async () => {
    const rt = testRuntime(path.join(t.dir, "busy"), Tally, 3, { maxActiveAgents: 1 });
    const ids = Array.from({ length: 20 }, (_, i) => `dev-${i}`);
    try {
      for (const id of ids) await rt.call(id, "bump", []);
      const backup = rt.backup(path.join(t.dir, "busy-copy"));
      const calls = await Promise.all(ids.map((id) => rt.call(id, "bump", [])));
      assert.deepEqual(
        calls.map((c) => c.ok),
        ids.map(() => true),
      );
      assert.equal((await backup).agents, ids.length);
    } finally {
      await rt.shutdown();
    }
  });

  test("refuses a target file that exists, and any backup once the runtime shut down", async () => {
    const rt = testRuntime(path.join(t.dir, "refusals"), Tally, 4);
    const out = path.join(t.dir, "refusals-copy");
    await rt.call("r", "bump", []);
    fs.mkdirSync(path.join(out, "agents"), { recursive: true });
    fs.writeFileSync(path.join(out, "agents", "r.db"), "taken");
    await assert.rejects(rt.backup(out), { code: "BRIDGE_ERR_STORAGE" });
    assert.equal(fs.readFileSync(path.join(out, "agents", "r.db"), "utf8"), "taken", "left as it was");
    assert.deepEqual(await rt.call("r", "bump", []), { ok: true, value: 2 }, "the agent runs on");
    await rt.shutdown();
    await assert.rejects(rt.backup(path.join(t.dir, "after-shutdown")), { code: "BRIDGE_ERR_RUNTIME_CLOSED" });
  });

  test("a runtime never started copies everything from the closed files", async () => {
    const dir = path.join(t.dir, "offline");
    const first = testRuntime(dir, Tally, 5);
    await first.call("o", "bump", []);
    await first.shutdown();
    const rt = testRuntime(dir, Tally, 6);
    try {
      assert.equal((await rt.backup(path.join(t.dir, "offline-copy"))).agents, 1);
    } finally {
      await rt.shutdown();
    }
    assert.deepEqual(await stateIn(path.join(t.dir, "offline-copy"), "o"), { ok: true, value: 2 });
  });
});
