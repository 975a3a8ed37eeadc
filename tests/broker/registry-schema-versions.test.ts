import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import Database from "better-sqlite3";
import { createDeviceRegistry } from "../../broker/index.ts";
import { hashSecret } from "../../broker/registry/secret-hash.ts";
import { BridgeError } from "../../errors/index.ts";

const cheap = { N: 1024, r: 8, p: 1 };
const HEX_ID = /^[0-9a-f]{32}$/;

function userVersion(file: string): number {
  const raw = new Database(file, { readonly: true });
  try {
    return raw.pragma("user_version", { simple: true }) as number;
  } finally {
    raw.close();
  }
}

/** Runs `sql` on the file as another program would: its own connection, no registry code. */
function rawExec(file: string, run: (db: Database.Database) => void): void {
  const raw = new Database(file);
  try {
    raw.pragma("busy_timeout = 5000");
    run(raw);
  } finally {
    raw.close();
  }
}

/** What a build of schema version 1 writes: rows without record_id and secret_id, a rotation of the hash alone. */
const v1 = {
  insert: (db: Database.Database, id: string, hash: string) =>
    db
      .prepare(
        "INSERT OR IGNORE INTO devices (id, secret_hash, codec, agent_class, created_at) VALUES (?, ?, NULL, NULL, ?)",
      )
      .run(id, hash, 1000),
  rotate: (db: Database.Database, id: string, hash: string) =>
    db.prepare("UPDATE devices SET secret_hash = ? WHERE id = ?").run(hash, id),
};

describe("device registry files written by other versions", () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "broker-registry-versions-"));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  test("a file of a schema version newer than this build knows is refused with a clear error and left as it was", async () => {
    const file = path.join(dir, "newer.db");
    const current = createDeviceRegistry({ path: file, scrypt: cheap });
    await current.add("dev-1");
    current.close();
    const known = userVersion(file);
    rawExec(file, (db) => db.pragma(`user_version = ${known + 1}`));

    assert.throws(
      () => createDeviceRegistry({ path: file, scrypt: cheap }),
      (err: unknown) => {
        assert.ok(err instanceof BridgeError);
        assert.equal(err.code, "BRIDGE_ERR_REGISTRY");
        assert.deepEqual(err.details, { path: file, schemaVersion: known + 1, knownSchemaVersion: known });
        assert.match(err.message, new RegExp(`schema version ${known + 1}`));
        assert.match(err.message, /newer agent-bridge/);
        return true;
      },
    );
    assert.equal(userVersion(file), known + 1, "not migrated back or stamped");
  });

  // A newer build may keep its file in another journal mode; `journal_mode = WAL` would convert it for good.
  for (const journalMode of ["delete", "truncate", "wal"] as const) {
    test(`a newer build's file in ${journalMode} journal mode is refused and left byte for byte as it was found`, async () => {
      const file = path.join(dir, `newer-${journalMode}.db`);
      const current = createDeviceRegistry({ path: file, scrypt: cheap });
      await current.add("dev-1");
      current.close();
      const known = userVersion(file);
      rawExec(file, (db) => {
        db.pragma(`journal_mode = ${journalMode}`);
        db.pragma(`user_version = ${known + 1}`);
      });
      const siblings = (): string[] =>
        fs
          .readdirSync(dir)
          .filter((name) => name.startsWith(`${path.basename(file)}-`))
          .sort();
      const bytes = fs.readFileSync(file);
      const found = siblings();

      assert.throws(() => createDeviceRegistry({ path: file, scrypt: cheap }), /newer agent-bridge/);
      assert.ok(fs.readFileSync(file).equals(bytes), "the file's bytes are unchanged");
      assert.deepEqual(siblings(), found, "no -wal, -shm or -journal file appeared or went");
    });
  }

  test("rows an older build writes into a current file get their own ids, and its rotation a new secretId", async () => {
    const file = path.join(dir, "mixed.db");
    const registry = createDeviceRegistry({ path: file, scrypt: cheap });
    try {
      await registry.add("new-1");
      const before = registry.get("new-1");
      assert.ok(before);
      // An older build (the CLI of the last release, a bridge rolled back) on the same file, while this one has it open.
      rawExec(file, (db) => {
        v1.insert(db, "old-1", "scrypt$1024$8$1$AAAA$BBBB");
        v1.insert(db, "old-2", "scrypt$1024$8$1$CCCC$DDDD");
        v1.rotate(db, "new-1", "scrypt$1024$8$1$EEEE$FFFF");
      });
      const [one, two, rotated] = [registry.get("old-1"), registry.get("old-2"), registry.get("new-1")];
      assert.ok(one && two && rotated);
      for (const id of [one.recordId, one.secretId, two.recordId, two.secretId]) assert.match(id, HEX_ID);
      assert.equal(new Set([one.recordId, one.secretId, two.recordId, two.secretId]).size, 4, "each its own");
      assert.equal(rotated.recordId, before.recordId, "the same record");
      assert.match(rotated.secretId, HEX_ID);
      assert.notEqual(rotated.secretId, before.secretId, "a rotated secret is another secret");
      // The registry's own rotation draws the secretId itself; it is not drawn twice.
      await registry.rotateSecret("new-1");
      assert.match(registry.get("new-1")?.secretId ?? "", HEX_ID);
    } finally {
      registry.close();
    }
  });

  test("the triggers leave alone the ids this build writes: its add, its rotation and updates of other fields", async () => {
    const file = path.join(dir, "own-writes.db");
    const registry = createDeviceRegistry({ path: file, scrypt: cheap });
    try {
      await registry.add("own-1");
      const added = registry.get("own-1");
      assert.ok(added);
      registry.setCodec("own-1", "json");
      registry.setFirmware("own-1", "2.0.1");
      registry.touch("own-1", 5000);
      registry.flush();
      const updated = registry.get("own-1");
      assert.deepEqual([updated?.recordId, updated?.secretId], [added.recordId, added.secretId], "nothing re-keyed");
      // This build's writes as the registry makes them, with ids of the test's choosing: the file keeps those.
      rawExec(file, (db) => {
        db.prepare(
          "INSERT OR IGNORE INTO devices (id, secret_hash, codec, agent_class, created_at, record_id, secret_id) " +
            "VALUES ('own-2', 'scrypt$1024$8$1$AAAA$BBBB', NULL, NULL, 1, 'record-own-2', 'secret-own-2')",
        ).run();
        db.prepare("UPDATE devices SET secret_hash = ?, secret_id = ? WHERE id = ?").run(
          "scrypt$1024$8$1$CCCC$DDDD",
          "secret-rotated",
          "own-1",
        );
      });
      const [own1, own2] = [registry.get("own-1"), registry.get("own-2")];
      assert.deepEqual([own2?.recordId, own2?.secretId], ["record-own-2", "secret-own-2"]);
      assert.deepEqual([own1?.recordId, own1?.secretId], [added.recordId, "secret-rotated"], "not drawn a second time");
    } finally {
      registry.close();
    }
  });

  test("a schema 2 file with rows an older build wrote without ids is repaired when opened", async () => {
    const file = path.join(dir, "v2-empty-ids.db");
    const secret = "a-secret-from-the-old-cli";
    const hash = await hashSecret(secret, cheap);
    // Schema 2 as it first shipped: the id columns with '' as their default, nothing filling them for other writers.
    rawExec(file, (db) => {
      db.exec(`
        CREATE TABLE devices (
          id          TEXT PRIMARY KEY NOT NULL,
          secret_hash TEXT NOT NULL,
          codec       TEXT,
          agent_class TEXT,
          created_at  INTEGER NOT NULL,
          last_seen   INTEGER,
          firmware    TEXT
        ) STRICT;
        ALTER TABLE devices ADD COLUMN record_id TEXT NOT NULL DEFAULT '';
        ALTER TABLE devices ADD COLUMN secret_id TEXT NOT NULL DEFAULT '';
      `);
      db.prepare(
        "INSERT INTO devices (id, secret_hash, created_at, record_id, secret_id) VALUES ('kept', ?, 1, 'aaaa', 'bbbb')",
      ).run(hash);
      v1.insert(db, "old-1", hash);
      v1.insert(db, "old-2", hash);
      db.pragma("user_version = 2");
    });
    const registry = createDeviceRegistry({ path: file, scrypt: cheap });
    try {
      const [one, two] = [registry.get("old-1"), registry.get("old-2")];
      assert.ok(one && two);
      for (const id of [one.recordId, one.secretId, two.recordId, two.secretId]) assert.match(id, HEX_ID);
      assert.equal(new Set([one.recordId, one.secretId, two.recordId, two.secretId]).size, 4);
      assert.equal((await registry.verify("old-1", secret)).status, "ok", "its secret keeps working");
      const kept = registry.get("kept");
      assert.deepEqual([kept?.recordId, kept?.secretId], ["aaaa", "bbbb"], "ids already drawn are kept");
    } finally {
      registry.close();
    }
  });
});
