/**
 * A stored secret hash carries its own scrypt parameters (`scrypt$N$r$p$salt$hash`), read from `registry.db` on every
 * CONNECT. A hash whose parameters no scrypt accepts (N not a power of two), or whose cost is far beyond any this
 * bridge issues (a tampered or corrupted row), must simply never match: CONNACK 4 at once, not a registry fault
 * (CONNACK 3) on every reconnect, nor a verification holding a thread-pool thread for minutes (p = 8192: about five).
 */
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import Database from "better-sqlite3";
import { verifySecret } from "../../broker/registry/secret-hash.ts";
import { connackCode, startTestBroker, type TestBroker } from "./helpers.ts";

const SALT = Buffer.alloc(16).toString("base64url");
const KEY = Buffer.alloc(32).toString("base64url");

/** Resolves with what `promise` settled to, or "timeout" after `ms` (the timer is cleared either way). */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | "timeout"> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

describe("verifySecret with a stored hash's parameters out of bounds", () => {
  test("N not a power of two never matches (no rejection)", async () => {
    assert.equal(await verifySecret("x", `scrypt$3$8$1$${SALT}$${KEY}`), false);
  });

  test("a cost of minutes (p = 8192 at the default N and r) is refused without running scrypt", async () => {
    assert.equal(await within(verifySecret("x", `scrypt$16384$8$8192$${SALT}$${KEY}`), 2000), false);
  });

  test("a memory of gigabytes (N = 2^24, r = 8) is refused without running scrypt", async () => {
    assert.equal(await within(verifySecret("x", `scrypt$16777216$8$1$${SALT}$${KEY}`), 2000), false);
  });
});

describe("a CONNECT against a tampered stored hash", () => {
  let tb: TestBroker;
  let db: Database.Database;

  before(async () => {
    tb = await startTestBroker();
    db = new Database(path.join(tb.dir, "registry.db"));
  });
  after(async () => {
    db.close();
    await tb.close();
  });

  async function tampered(id: string, hash: string): Promise<string> {
    const secret = await tb.addDevice(id);
    db.prepare("UPDATE devices SET secret_hash = ? WHERE id = ?").run(hash, id);
    return secret;
  }

  test("N not a power of two: CONNACK 4 (bad credentials), not 3 (server fault)", async () => {
    const secret = await tampered("tampered-n", `scrypt$3$8$1$${SALT}$${KEY}`);
    assert.equal(await connackCode(tb.url, { clientId: "tampered-n", username: "tampered-n", password: secret }), 4);
    assert.equal(tb.broker.isOnline("tampered-n"), false);
  });

  test("a cost of minutes: CONNACK 4 within seconds", async () => {
    const secret = await tampered("tampered-p", `scrypt$16384$8$8192$${SALT}$${KEY}`);
    const code = connackCode(tb.url, { clientId: "tampered-p", username: "tampered-p", password: secret });
    assert.equal(await within(code, 3000), 4);
  });
});
