import assert from "node:assert/strict";
import path from "node:path";
import { after, describe, test } from "node:test";
import { Agent, type CallResult } from "../../agents/index.ts";
import { tempDir, testRuntime } from "./helpers.ts";

const ran: string[] = [];

/** Synchronous and async methods, each writing one row; the `fail` ones throw after their write. */
class Mixed extends Agent<{ n: number }> {
  override initialState = { n: 0 };
  override onStart(): void {
    this.sql`CREATE TABLE IF NOT EXISTS rows (n TEXT NOT NULL)`;
  }
  put(n: string): string {
    this.sql`INSERT INTO rows (n) VALUES (${n})`;
    ran.push(n);
    return n;
  }
  async putLater(n: string): Promise<string> {
    await Promise.resolve();
    this.sql`INSERT INTO rows (n) VALUES (${n})`;
    ran.push(n);
    return n;
  }
  failNow(n: string): never {
    this.sql`INSERT INTO rows (n) VALUES (${n})`;
    ran.push(n);
    throw new Error(`sync ${n}`);
  }
  async failLater(n: string): Promise<never> {
    await Promise.resolve();
    this.sql`INSERT INTO rows (n) VALUES (${n})`;
    ran.push(n);
    throw new Error(`async ${n}`);
  }
  bump(n: string): number {
    ran.push(n);
    this.setState({ n: this.state.n + 1 });
    return this.state.n;
  }
  rows(): string[] {
    return this.sql<{ n: string }>`SELECT n FROM rows ORDER BY rowid`.map((r) => r.n);
  }
}

describe("batches mixing synchronous and async handlers", () => {
  const t = tempDir();
  after(() => t.remove());

  test("events of one batch run in arrival order whether their handlers are sync or async, commit once, and only the failing ones roll back", async () => {
    ran.length = 0;
    const commits: number[] = [];
    const rt = testRuntime(path.join(t.dir, "mixed"), Mixed, 1, {
      observer: { onCommit: (c) => commits.push(c.events) },
    });
    try {
      assert.deepEqual(await rt.call("m", "rows", []), { ok: true, value: [] });
      commits.length = 0;
      // Delivered in one tick: one batch, with a savepoint per event.
      const calls: Array<[string, string]> = [
        ["put", "a"],
        ["putLater", "b"],
        ["failNow", "c"],
        ["put", "d"],
        ["failLater", "e"],
        ["bump", "s"],
        ["put", "f"],
      ];
      const results: CallResult[] = await Promise.all(calls.map(([m, n]) => rt.call("m", m, [n])));
      assert.deepEqual(
        results.map((r) => r.ok),
        [true, true, false, true, false, true, true],
      );
      assert.deepEqual(results[5], { ok: true, value: 1 });
      assert.deepEqual(ran, ["a", "b", "c", "d", "e", "s", "f"], "arrival order, sync and async alike");
      assert.deepEqual(commits, [7], "the seven events committed together");
      assert.deepEqual(await rt.call("m", "rows", []), { ok: true, value: ["a", "b", "d", "f"] });
      assert.deepEqual(await rt.call("m", "bump", ["t"]), { ok: true, value: 2 }, "the state change was kept");
    } finally {
      await rt.shutdown();
    }
  });

  test("a synchronous event right after an async batch still waits for that batch to commit", async () => {
    ran.length = 0;
    const commits: number[] = [];
    const rt = testRuntime(path.join(t.dir, "after-async"), Mixed, 2, {
      observer: { onCommit: (c) => commits.push(c.events) },
    });
    try {
      await rt.call("m", "rows", []);
      commits.length = 0;
      const first = rt.call("m", "putLater", ["x"]);
      await Promise.resolve();
      // Arrives while the async handler is awaiting: runs in the next batch, after x committed.
      const second = rt.call("m", "put", ["y"]);
      assert.deepEqual(await Promise.all([first, second]), [
        { ok: true, value: "x" },
        { ok: true, value: "y" },
      ]);
      assert.deepEqual(ran, ["x", "y"]);
      assert.deepEqual(commits, [1, 1], "two batches, the second after the first committed");
      assert.deepEqual(await rt.call("m", "rows", []), { ok: true, value: ["x", "y"] });
    } finally {
      await rt.shutdown();
    }
  });
});
