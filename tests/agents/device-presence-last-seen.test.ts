import assert from "node:assert/strict";
import path from "node:path";
import { after, describe, test } from "node:test";
import Database from "better-sqlite3";
import { LAST_SEEN_PERSIST_MS, PresenceStore } from "../../agents/device/presence.ts";
import type { SqlTag } from "../../agents/device/sql.ts";
import { tempDir } from "./helpers.ts";

describe("presence last_seen", () => {
  const t = tempDir("presence-");
  after(() => t.remove());

  function store(now: () => number): { presence: PresenceStore; writes: () => number; close(): void } {
    const db = new Database(path.join(t.dir, `p-${Math.random().toString(36).slice(2)}.db`));
    db.exec("CREATE TABLE device_meta (key TEXT PRIMARY KEY, value BLOB)");
    let writes = 0;
    const sql: SqlTag = <Row>(strings: TemplateStringsArray, ...values: Array<unknown>): Row[] => {
      const text = strings.join("?");
      const params = values.map((v) => (typeof v === "boolean" ? (v ? 1 : 0) : v));
      const stmt = db.prepare(text);
      if (stmt.reader) return stmt.all(...params) as Row[];
      if (text.includes("last_seen") || params.includes("last_seen")) writes++;
      stmt.run(...params);
      return [];
    };
    return { presence: new PresenceStore(sql, now), writes: () => writes, close: () => db.close() };
  }

  test("messages within the persist interval write last_seen once, and status reports the latest time heard", () => {
    let now = 1_000_000;
    const s = store(() => now);
    try {
      s.presence.touch();
      for (let i = 0; i < 5; i++) {
        now += 100;
        s.presence.touch();
      }
      assert.equal(s.writes(), 1);
      assert.equal(s.presence.status(1).lastSeen, 1_000_500);
      now = 1_000_000 + LAST_SEEN_PERSIST_MS;
      s.presence.touch();
      assert.equal(s.writes(), 2, "a touch a full interval after the last write writes again");
    } finally {
      s.close();
    }
  });

  test("a close always writes last_seen, and a new store (a woken agent) reads it back", () => {
    let now = 5_000;
    const s = store(() => now);
    try {
      s.presence.touch();
      now += 10;
      s.presence.touch();
      now += 10;
      s.presence.recordClose("disconnect");
      const status = s.presence.status(0);
      assert.equal(status.lastSeen, 5_020);
      assert.equal(status.lastClose, "disconnect");
    } finally {
      s.close();
    }
  });

  test("a wall clock stepped back (an NTP correction) does not freeze last_seen at the time before the step", () => {
    let now = 50_000_000;
    const s = store(() => now);
    try {
      s.presence.touch();
      now -= 3_600_000;
      s.presence.touch();
      assert.equal(s.writes(), 2, "the step back is written at once, not an hour later");
      assert.equal(s.presence.status(1).lastSeen, now);
      now += 100;
      s.presence.touch();
      assert.equal(s.writes(), 2, "and then at most once per interval again");
    } finally {
      s.close();
    }
  });

  test("after a rolled-back event (invalidate) the next touch writes last_seen again", () => {
    let now = 9_000;
    const s = store(() => now);
    try {
      s.presence.touch();
      now += 10;
      s.presence.invalidate();
      s.presence.touch();
      assert.equal(s.writes(), 2);
    } finally {
      s.close();
    }
  });
});
