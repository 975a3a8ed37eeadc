import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, describe, test } from "node:test";
import { checkTarget, MANIFEST_FILE } from "../../app/backup/target.ts";
import { tempDir } from "../agents/helpers.ts";

describe("backup targets", () => {
  const t = tempDir("backup-target-");
  after(() => t.remove());

  test("a bridge on a snapshot kept inside another restored data directory backs up into its own backup.dir", () => {
    // `old` was restored in place (its backup.json stays); a later restore started a bridge on one of its backups.
    const old = path.join(t.dir, "old");
    const data = path.join(old, "backups", "backup-1");
    fs.mkdirSync(data, { recursive: true });
    fs.writeFileSync(path.join(old, MANIFEST_FILE), "{}");
    fs.writeFileSync(path.join(data, MANIFEST_FILE), "{}");
    const target = path.join(data, "backups", "backup-2");
    assert.equal(checkTarget(target, data), target);
  });

  test("a target inside a snapshot that is no bridge's data directory is still refused", () => {
    const snapshot = path.join(t.dir, "snap");
    fs.mkdirSync(snapshot, { recursive: true });
    fs.writeFileSync(path.join(snapshot, MANIFEST_FILE), "{}");
    assert.throws(() => checkTarget(path.join(snapshot, "inner"), path.join(t.dir, "live")), {
      code: "BRIDGE_ERR_BACKUP_TARGET",
      message: /inside the snapshot/,
    });
  });
});
