import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import Database from "better-sqlite3";
import { createDeviceRegistry, type DeviceRegistry } from "../../broker/index.ts";
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
    assert.deepEqual(added.device, {
      id: "dev-1",
      codec: "pb",
      agentClass: "Thermostat",
      createdAt: clock.now(),
      lastSeen: null,
      firmware: null,
    });
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
      message: "device id must match [A-Za-z0-9_.-]{1,64}",
    });
    const tooLong = await registry.add("x".repeat(65));
    assert.equal(tooLong.status, "invalid");
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
