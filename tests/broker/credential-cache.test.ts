import assert from "node:assert/strict";
import crypto from "node:crypto";
import fs from "node:fs";
import { syncBuiltinESMExports } from "node:module";
import os from "node:os";
import path from "node:path";
import { after, before, describe, mock, test } from "node:test";
import { createDeviceRegistry } from "../../broker/index.ts";
import { CredentialCache } from "../../broker/registry/credential-cache.ts";
import { ManualClock } from "../support/manual-clock.ts";

const cheap = { N: 1024, r: 8, p: 1 };
const key = Buffer.alloc(32, 7);

describe("credential cache", () => {
  test("a remembered secret hits only with the same secret, the same stored hash and within its time", () => {
    const clock = new ManualClock();
    const cache = new CredentialCache({ ttlMs: 1000, maxEntries: 10, clock, key });
    cache.remember("d1", "hash-1", "s3cret");
    assert.equal(cache.has("d1", "hash-1", "s3cret"), true);
    assert.equal(cache.has("d1", "hash-1", "s3cret-not"), false);
    assert.equal(cache.has("d2", "hash-1", "s3cret"), false);
    clock.advanceSync(999);
    assert.equal(cache.has("d1", "hash-1", "s3cret"), true);
    clock.advanceSync(1);
    assert.equal(cache.has("d1", "hash-1", "s3cret"), false);
    assert.equal(cache.size, 0);
  });

  test("an entry checked against another stored hash (a rotated secret) is dropped", () => {
    const cache = new CredentialCache({ ttlMs: 1000, maxEntries: 10, clock: new ManualClock(), key });
    cache.remember("d1", "hash-1", "s3cret");
    assert.equal(cache.has("d1", "hash-2", "s3cret"), false);
    assert.equal(cache.size, 0);
    assert.equal(cache.has("d1", "hash-1", "s3cret"), false);
  });

  test("the cache keeps at most maxEntries devices and drops the least recently verified first", () => {
    const cache = new CredentialCache({ ttlMs: 60_000, maxEntries: 2, clock: new ManualClock(), key });
    cache.remember("a", "h", "sa");
    cache.remember("b", "h", "sb");
    assert.equal(cache.has("a", "h", "sa"), true); // a is now the most recent
    cache.remember("c", "h", "sc");
    assert.equal(cache.size, 2);
    assert.equal(cache.has("b", "h", "sb"), false);
    assert.equal(cache.has("a", "h", "sa"), true);
    assert.equal(cache.has("c", "h", "sc"), true);
  });

  test("a TTL of 0 or no room remembers nothing", () => {
    const off = new CredentialCache({ ttlMs: 0, maxEntries: 10, clock: new ManualClock(), key });
    off.remember("d1", "h", "s");
    assert.equal(off.has("d1", "h", "s"), false);
    const none = new CredentialCache({ ttlMs: 1000, maxEntries: 0, clock: new ManualClock(), key });
    none.remember("d1", "h", "s");
    assert.equal(none.size, 0);
  });
});

describe("device registry verification cache", () => {
  let dir: string;
  let scryptCalls = 0;

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "broker-credential-cache-"));
    const original = crypto.scrypt;
    // Count scrypt runs through the ESM binding secret-hash.ts imports.
    mock.method(crypto, "scrypt", (...args: Parameters<typeof crypto.scrypt>) => {
      scryptCalls++;
      return Reflect.apply(original, crypto, args);
    });
    syncBuiltinESMExports();
  });
  after(() => {
    mock.restoreAll();
    syncBuiltinESMExports();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test("a reconnect with the secret that last verified skips scrypt; a wrong secret never does", async () => {
    const registry = createDeviceRegistry({ path: path.join(dir, "hit.db"), clock: new ManualClock(), scrypt: cheap });
    try {
      const added = await registry.add("dev-1");
      assert.equal(added.status, "created");
      if (added.status !== "created") return;
      scryptCalls = 0;
      assert.equal((await registry.verify("dev-1", added.secret)).status, "ok");
      assert.equal(scryptCalls, 1);
      assert.equal((await registry.verify("dev-1", added.secret)).status, "ok");
      assert.equal(scryptCalls, 1);
      assert.equal((await registry.verify("dev-1", `${added.secret}x`)).status, "bad-secret");
      assert.equal(scryptCalls, 2);
    } finally {
      registry.close();
    }
  });

  test("after a rotation or a removal the remembered secret misses and is refused", async () => {
    const registry = createDeviceRegistry({ path: path.join(dir, "miss.db"), clock: new ManualClock(), scrypt: cheap });
    try {
      const added = await registry.add("dev-2");
      if (added.status !== "created") return assert.fail("not created");
      assert.equal((await registry.verify("dev-2", added.secret)).status, "ok");
      const rotated = await registry.rotateSecret("dev-2");
      assert.ok(rotated);
      scryptCalls = 0;
      assert.equal((await registry.verify("dev-2", added.secret)).status, "bad-secret");
      assert.equal(scryptCalls, 1);
      assert.equal((await registry.verify("dev-2", rotated)).status, "ok");
      assert.equal(registry.remove("dev-2"), true);
      assert.equal((await registry.verify("dev-2", rotated)).status, "unknown-device");
    } finally {
      registry.close();
    }
  });

  test("with the cache turned off every verification runs scrypt", async () => {
    const registry = createDeviceRegistry({
      path: path.join(dir, "off.db"),
      clock: new ManualClock(),
      scrypt: cheap,
      verifyCacheMs: 0,
    });
    try {
      const added = await registry.add("dev-3");
      if (added.status !== "created") return assert.fail("not created");
      scryptCalls = 0;
      await registry.verify("dev-3", added.secret);
      await registry.verify("dev-3", added.secret);
      assert.equal(scryptCalls, 2);
    } finally {
      registry.close();
    }
  });

  test("verifyCacheMaxEntries must be an integer >= 0", () => {
    assert.throws(
      () => createDeviceRegistry({ path: path.join(dir, "bad.db"), verifyCacheMaxEntries: -1 }),
      (err: unknown) => err instanceof Error && /verifyCacheMaxEntries/.test(err.message),
    );
  });
});
