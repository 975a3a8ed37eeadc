import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import Database from "better-sqlite3";
import { createDeviceRegistry } from "../../broker/index.ts";
import { BridgeError } from "../../errors/index.ts";

const cheap = { N: 1024, r: 8, p: 1 };

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
});
