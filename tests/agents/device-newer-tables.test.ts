/**
 * DeviceAgent tables a newer build migrated (their `device_schema` version above this build's, the operator then
 * rolled back) are refused: the agent's wake fails with BRIDGE_ERR_STORAGE naming both versions, before any of its
 * code reads them, and the version row stays as the newer build left it. Before, the migration loop simply had
 * nothing to do and this build's older code ran on tables of a shape it did not know. Another device of the same
 * runtime is unaffected.
 */
import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import Database from "better-sqlite3";
import { DeviceHarness } from "./device-harness.ts";

function deviceSchemaVersion(file: string, set?: number): number {
  const db = new Database(file);
  try {
    if (set !== undefined) db.prepare("UPDATE device_schema SET version = ?").run(set);
    return Number((db.prepare("SELECT version FROM device_schema").get() as { version: number }).version);
  } finally {
    db.close();
  }
}

test("an agent whose device tables a newer build migrated fails its wake, naming the versions, untouched", async (t) => {
  const h = new DeviceHarness();
  t.after(() => h.dispose());
  await h.call("newer-dev", "ping");
  await h.call("other-dev", "ping");
  const file = path.join(h.dataDir, "agents", "newer-dev.db");
  let known = 0;
  await h.restart(() => {
    known = deviceSchemaVersion(file);
    deviceSchemaVersion(file, known + 1);
  });
  for (let attempt = 0; attempt < 2; attempt++) {
    const refused = await h.runtime.call("newer-dev", "ping", []);
    assert.equal(refused.ok, false);
    if (refused.ok) return;
    assert.equal(refused.code, "BRIDGE_ERR_STORAGE");
    assert.match(refused.message, new RegExp(`schema version ${known + 1} is newer than this agent-bridge knows`));
    assert.match(refused.message, new RegExp(`\\(${known}\\)`));
  }
  const other = await h.runtime.call("other-dev", "ping", []);
  assert.equal(other.ok, true, "another device's agent starts as before");
  // Its wake failed, so no handle holds the file: it can be read while the runtime runs.
  assert.equal(deviceSchemaVersion(file), known + 1, "the tables are left as the newer build left them");
});
