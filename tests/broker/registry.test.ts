import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import Database from "better-sqlite3";
import { createDeviceRegistry, type DeviceRegistry } from "../../broker/index.ts";
import { hashSecret } from "../../broker/registry/secret-hash.ts";
import { ManualClock } from "../support/manual-clock.ts";

const cheap = { N: 1024, r: 8, p: 1 };

describe("device registry", () => {
  let dir: string;
  let file: string;
  let clock: ManualClock;
  let registry: DeviceRegistry;

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "broker-registry-"));
    file = path.join(dir, "registry.db");
    clock = new ManualClock();
    registry = createDeviceRegistry({ path: file, clock, scrypt: cheap, touchFlushMs: 1000 });
  });
  after(() => {
    registry.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test("adding a device returns its secret once and stores only a scrypt hash", async () => {
    const added = await registry.add("dev-1", { codec: "pb", agentClass: "Thermostat" });
    assert.equal(added.status, "created");
    if (added.status !== "created") return;
    assert.ok(added.secret.length >= 32);
    const { recordId, secretId, ...facts } = added.device;
    assert.deepEqual(facts, {
      id: "dev-1",
      codec: "pb",
      agentClass: "Thermostat",
      createdAt: clock.now(),
      lastSeen: null,
      firmware: null,
    });
    assert.match(recordId, /^[0-9a-f]{32}$/);
    assert.match(secretId, /^[0-9a-f]{32}$/);
    assert.notEqual(recordId, secretId);
    const raw = new Database(file, { readonly: true });
    try {
      const row = raw.prepare("SELECT secret_hash FROM devices WHERE id = ?").get("dev-1") as { secret_hash: string };
      assert.match(row.secret_hash, /^scrypt\$1024\$8\$1\$/);
      assert.ok(!row.secret_hash.includes(added.secret));
    } finally {
      raw.close();
    }
    const again = await registry.add("dev-1");
    assert.equal(again.status, "exists");
  });

  test("an invalid device id or codec is refused as a value naming the field", async () => {
    assert.deepEqual(await registry.add("bad id!"), {
      status: "invalid",
      field: "id",
      message: 'device id must be 1 to 64 characters of A-Z a-z 0-9 _ . -, and not "." or ".."',
    });
    const tooLong = await registry.add("x".repeat(65));
    assert.equal(tooLong.status, "invalid");
    for (const id of [".", ".."]) {
      const dots = await registry.add(id);
      assert.equal(dots.status === "invalid" && dots.field, "id", id);
      assert.equal(registry.get(id), undefined, id);
    }
    const badCodec = await registry.add("ok-id", { codec: "xml" as "json" });
    assert.equal(badCodec.status === "invalid" && badCodec.field, "codec");
  });

  test("verify accepts the right secret and refuses a wrong one or an unknown device", async () => {
    const added = await registry.add("dev-2");
    assert.equal(added.status, "created");
    if (added.status !== "created") return;
    assert.equal((await registry.verify("dev-2", added.secret)).status, "ok");
    assert.equal((await registry.verify("dev-2", `${added.secret}x`)).status, "bad-secret");
    assert.equal((await registry.verify("dev-2", "")).status, "bad-secret");
    assert.equal((await registry.verify("nobody", added.secret)).status, "unknown-device");
  });

  test("a cached verification never outlives a secret rotation or a removal", async () => {
    const added = await registry.add("dev-3");
    if (added.status !== "created") throw new Error("not created");
    assert.equal((await registry.verify("dev-3", added.secret)).status, "ok");
    const rotated = await registry.rotateSecret("dev-3");
    assert.ok(rotated);
    assert.equal((await registry.verify("dev-3", added.secret)).status, "bad-secret");
    assert.equal((await registry.verify("dev-3", rotated!)).status, "ok");
    // Another process removes and re-adds the device: the cache must miss because the stored hash changed.
    const other = createDeviceRegistry({ path: file, scrypt: cheap });
    try {
      assert.equal(other.remove("dev-3"), true);
      const readded = await other.add("dev-3");
      assert.equal(readded.status, "created");
    } finally {
      other.close();
    }
    assert.equal((await registry.verify("dev-3", rotated!)).status, "bad-secret");
  });

  test("a rotation gives the record a new secretId and keeps its recordId; a device added again is a new record", async () => {
    await registry.add("gen-1");
    const first = registry.get("gen-1");
    assert.ok(first);
    registry.setCodec("gen-1", "json");
    registry.setFirmware("gen-1", "1.0.0");
    registry.touch("gen-1");
    registry.flush();
    assert.equal(registry.get("gen-1")?.secretId, first.secretId, "a hello or a touch leaves the secret as it was");
    await registry.rotateSecret("gen-1");
    const rotated = registry.get("gen-1");
    assert.equal(rotated?.recordId, first.recordId, "the same record");
    assert.notEqual(rotated?.secretId, first.secretId, "another secret");
    // Removed and added again in the same millisecond (time stands still here): createdAt cannot tell them apart.
    registry.remove("gen-1");
    await registry.add("gen-1");
    const again = registry.get("gen-1");
    assert.equal(again?.createdAt, first.createdAt);
    assert.notEqual(again?.recordId, first.recordId);
    assert.notEqual(again?.secretId, rotated?.secretId);
    // What verify and recall return is the record the secret was checked against, with its secretId.
    const secret = await registry.rotateSecret("gen-1");
    const verdict = await registry.verify("gen-1", secret ?? "");
    assert.equal(verdict.status === "ok" && verdict.device.secretId, registry.get("gen-1")?.secretId);
    assert.equal(registry.recall("gen-1", secret ?? "")?.secretId, registry.get("gen-1")?.secretId);
  });

  test("a registry file of schema version 1 is migrated: each device gets its own ids and keeps its secret", async () => {
    const v1 = path.join(dir, "registry-v1.db");
    // A file as the first schema left it, with a device provisioned then (its secret hashed by a registry of today).
    const donor = createDeviceRegistry({ path: ":memory:", scrypt: cheap });
    const provisioned = await donor.add("old-1");
    donor.close();
    assert.equal(provisioned.status, "created");
    const secret = provisioned.status === "created" ? provisioned.secret : "";
    const legacy = new Database(v1);
    try {
      legacy.exec(`
        CREATE TABLE devices (
          id          TEXT PRIMARY KEY NOT NULL,
          secret_hash TEXT NOT NULL,
          codec       TEXT,
          agent_class TEXT,
          created_at  INTEGER NOT NULL,
          last_seen   INTEGER,
          firmware    TEXT
        ) STRICT;
      `);
      legacy.pragma("user_version = 1");
      const insert = legacy.prepare("INSERT INTO devices (id, secret_hash, codec, created_at) VALUES (?, ?, ?, ?)");
      insert.run("old-1", await hashSecret(secret, cheap), "json", 1000);
      insert.run("old-2", await hashSecret("another-secret", cheap), null, 1000);
    } finally {
      legacy.close();
    }
    const migrated = createDeviceRegistry({ path: v1, scrypt: cheap });
    let firstIds: string[] = [];
    try {
      const [one, two] = [migrated.get("old-1"), migrated.get("old-2")];
      assert.ok(one && two);
      assert.equal(one.codec, "json");
      assert.equal(one.createdAt, 1000);
      for (const id of [one.recordId, one.secretId, two.recordId, two.secretId]) assert.match(id, /^[0-9a-f]{32}$/);
      assert.equal(new Set([one.recordId, one.secretId, two.recordId, two.secretId]).size, 4, "each its own");
      assert.equal((await migrated.verify("old-1", secret)).status, "ok");
      firstIds = [one.recordId, one.secretId];
    } finally {
      migrated.close();
    }
    // Opened again (the CLI after the bridge): migrated once, the ids kept.
    const reopened = createDeviceRegistry({ path: v1, scrypt: cheap });
    try {
      const raw = new Database(v1, { readonly: true });
      try {
        assert.equal(raw.pragma("user_version", { simple: true }), 3);
      } finally {
        raw.close();
      }
      const again = reopened.get("old-1");
      assert.deepEqual([again?.recordId, again?.secretId], firstIds);
    } finally {
      reopened.close();
    }
  });

  test("list returns devices ordered by id with paging, and remove deletes", async () => {
    await registry.add("a-first");
    const ids = registry.list().map((d) => d.id);
    assert.deepEqual(ids, [...ids].sort());
    assert.equal(registry.list({ limit: 1 })[0].id, "a-first");
    assert.equal(registry.list({ limit: 1, offset: 1 })[0].id, ids[1]);
    assert.equal(registry.remove("a-first"), true);
    assert.equal(registry.remove("a-first"), false);
    assert.equal(registry.get("a-first"), undefined);
  });

  test("touch is batched: last_seen is written only when the flush interval passes", async () => {
    await registry.add("dev-4");
    registry.touch("dev-4");
    registry.touch("dev-4", clock.now() + 5);
    assert.equal(registry.get("dev-4")?.lastSeen, null);
    clock.advanceSync(999);
    assert.equal(registry.get("dev-4")?.lastSeen, null);
    clock.advanceSync(1);
    assert.equal(registry.get("dev-4")?.lastSeen, clock.now() - 1000 + 5);
    // An older touch never moves last_seen backwards.
    registry.touch("dev-4", 1);
    registry.flush();
    assert.equal(registry.get("dev-4")?.lastSeen, clock.now() - 1000 + 5);
  });

  test("setCodec and setFirmware update the record", async () => {
    await registry.add("dev-5");
    registry.setCodec("dev-5", "json");
    registry.setFirmware("dev-5", "1.2.3");
    assert.equal(registry.get("dev-5")?.codec, "json");
    assert.equal(registry.get("dev-5")?.firmware, "1.2.3");
  });

  test("two registries open the same file at once (no exclusive lock)", async () => {
    const second = createDeviceRegistry({ path: file, scrypt: cheap });
    try {
      const added = await second.add("from-cli");
      assert.equal(added.status, "created");
      assert.equal(registry.get("from-cli")?.id, "from-cli");
    } finally {
      second.close();
    }
  });

  test("bad options are refused with the field named", () => {
    assert.throws(
      () => createDeviceRegistry({ path: file, touchFlushMs: -1 }),
      (err: unknown) => (err as { details?: { field?: string } }).details?.field === "touchFlushMs",
    );
    assert.throws(
      () => createDeviceRegistry({ path: file, scrypt: { N: 1000, r: 8, p: 1 } }),
      (err: unknown) => (err as { code?: string }).code === "BRIDGE_ERR_BROKER_CONFIG",
    );
  });
});
