import assert from "node:assert/strict";
import path from "node:path";
import { after, describe, test } from "node:test";
import { SqlRunner } from "../../agents/sql-runner.ts";
import { openAgentDatabase, type StorageSettings } from "../../agents/storage.ts";
import {
  WAL_CHECKPOINT_MIN_PAGES,
  WAL_CHECKPOINT_SPREAD_PAGES,
  walAutocheckpointPages,
} from "../../agents/wal-tuning.ts";
import { tempDir } from "./helpers.ts";

const settings: StorageSettings = {
  maxDatabaseBytes: 1024 ** 3,
  synchronous: "NORMAL",
  lockingMode: "EXCLUSIVE",
  cacheSizeKiB: 2048,
  pageSizeBytes: 4096,
};
// SQLite's synchronous pragma reads back as a number: 1 NORMAL, 2 FULL.
const SYNC_LEVEL = { NORMAL: 1, FULL: 2 } as const;

describe("WAL tuning of agent databases", () => {
  const t = tempDir("wal-tuning-");
  after(() => t.remove());

  test("checkpoint thresholds are stable per file and spread over the range so agents do not checkpoint together", () => {
    const files = Array.from({ length: 200 }, (_, i) => path.join("data", "agents", `dev-${i}.db`));
    const pages = files.map((f) => walAutocheckpointPages(f));
    assert.deepEqual(
      files.map((f) => walAutocheckpointPages(f)),
      pages,
      "the same file always gets the same threshold",
    );
    for (const p of pages) {
      assert.ok(p >= WAL_CHECKPOINT_MIN_PAGES && p < WAL_CHECKPOINT_MIN_PAGES + WAL_CHECKPOINT_SPREAD_PAGES, `${p}`);
    }
    assert.ok(new Set(pages).size > 150, `distinct thresholds: ${new Set(pages).size}`);
    assert.deepEqual(
      files.map((f) => walAutocheckpointPages(path.join("elsewhere", path.basename(f)))),
      pages,
      "an agent's threshold follows its file name, not the data directory",
    );
    // Spread over the range, not bunched: each quarter of it holds some of the 200 databases.
    const quarters = [0, 0, 0, 0];
    for (const p of pages) quarters[Math.floor(((p - WAL_CHECKPOINT_MIN_PAGES) / WAL_CHECKPOINT_SPREAD_PAGES) * 4)]++;
    for (const q of quarters) assert.ok(q >= 20, `quarters: ${quarters.join(" ")}`);
  });

  for (const synchronous of ["NORMAL", "FULL"] as const) {
    test(`a new database is created in WAL mode with its tables and left at synchronous ${synchronous}`, () => {
      const file = path.join(t.dir, `new-${synchronous}.db`);
      const db = openAgentDatabase(file, { ...settings, synchronous });
      try {
        assert.equal(db.pragma("journal_mode", { simple: true }), "wal");
        assert.equal(db.pragma("synchronous", { simple: true }), SYNC_LEVEL[synchronous]);
        assert.equal(db.pragma("wal_autocheckpoint", { simple: true }), walAutocheckpointPages(file));
        assert.equal(db.pragma("user_version", { simple: true }), 1);
        const tables = db
          .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE '_bridge_%'")
          .all();
        assert.equal(tables.length, 6);
      } finally {
        db.close();
      }
    });
  }

  test("a new database takes the configured page size and a checkpoint threshold of the same WAL bytes; an existing one keeps its page size", () => {
    const file = path.join(t.dir, "small-pages.db");
    const created = openAgentDatabase(file, { ...settings, pageSizeBytes: 1024 });
    try {
      assert.equal(created.pragma("page_size", { simple: true }), 1024);
      assert.equal(created.pragma("wal_autocheckpoint", { simple: true }), walAutocheckpointPages(file) * 4);
      assert.equal(walAutocheckpointPages(file, 1024), walAutocheckpointPages(file) * 4);
    } finally {
      created.close();
    }
    const reopened = openAgentDatabase(file, { ...settings, pageSizeBytes: 8192 });
    try {
      assert.equal(reopened.pragma("page_size", { simple: true }), 1024, "a page size is fixed at creation");
      assert.equal(reopened.pragma("wal_autocheckpoint", { simple: true }), walAutocheckpointPages(file, 1024));
    } finally {
      reopened.close();
    }
  });

  test("a database reopened after a commit keeps its rows and the configured synchronous level", () => {
    const file = path.join(t.dir, "reopen.db");
    const first = new SqlRunner(openAgentDatabase(file, settings));
    first.run("INSERT INTO _bridge_directory (kind, key, value) VALUES (?, ?, ?)", "k", "a", null);
    first.db.close();
    const db = openAgentDatabase(file, settings);
    try {
      assert.equal(db.pragma("synchronous", { simple: true }), SYNC_LEVEL.NORMAL);
      assert.deepEqual(db.prepare("SELECT key FROM _bridge_directory").all(), [{ key: "a" }]);
    } finally {
      db.close();
    }
  });
});
