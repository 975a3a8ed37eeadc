import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, describe, test } from "node:test";
import Database from "better-sqlite3";
import { makeTempDir, runCli } from "./support/bridge-process.ts";

const dataDir = makeTempDir("bridge-devices-cli-");
after(() => fs.rmSync(dataDir, { recursive: true, force: true }));

describe("devices commands and bad input", () => {
  for (const purge of [[], ["--purge"]]) {
    test(`devices ${["rm", ...purge].join(" ")} with an invalid device id is a usage error (exit 2), as docs/errors.md says`, () => {
      const result = runCli(["devices", "rm", "bad/id", ...purge, "--data-dir", dataDir]);
      assert.equal(result.status, 2, result.stderr);
      assert.match(result.stderr, /device id must be 1 to 64 characters of A-Z a-z 0-9 _ \. -/);
      assert.doesNotMatch(result.stderr, /no device/);
    });
  }

  test('devices add .. is a usage error naming the id rule, as "." and ".." are no device ids', () => {
    const missing = path.join(dataDir, "never-made-dots");
    const result = runCli(["devices", "add", "..", "--data-dir", missing]);
    assert.equal(result.status, 2, result.stderr);
    assert.equal(
      result.stderr,
      'error: device id must be 1 to 64 characters of A-Z a-z 0-9 _ . -, and not "." or ".." (got "..")\n',
    );
    assert.equal(fs.existsSync(missing), false);
  });

  test('a device recorded as ".." before the rule refused it can still be removed, but not purged (a path segment)', () => {
    const legacy = path.join(dataDir, "legacy-dots");
    assert.equal(runCli(["devices", "add", "legacy-1", "--data-dir", legacy]).status, 0);
    const db = new Database(path.join(legacy, "registry.db"));
    db.prepare("UPDATE devices SET id = '..' WHERE id = 'legacy-1'").run();
    db.close();
    const purged = runCli(["devices", "rm", "..", "--purge", "--data-dir", legacy]);
    assert.equal(purged.status, 2, purged.stderr);
    assert.match(purged.stderr, /device id must be/);
    const removed = runCli(["devices", "rm", "..", "--json", "--data-dir", legacy]);
    assert.equal(removed.status, 0, removed.stderr);
    assert.deepEqual(JSON.parse(removed.stdout), { id: "..", removed: { record: true, agentData: false } });
    const listed = runCli(["devices", "list", "--json", "--data-dir", legacy]);
    assert.deepEqual(JSON.parse(listed.stdout), []);
  });

  test("devices add with an invalid device id is a usage error (exit 2) and creates no data directory", () => {
    const missing = path.join(dataDir, "never-made");
    const result = runCli(["devices", "add", "bad/id", "--data-dir", missing]);
    assert.equal(result.status, 2, result.stderr);
    assert.match(result.stderr, /device id must be/);
    assert.equal(fs.existsSync(missing), false);
  });

  for (const args of [["list"], ["list", "--json"], ["rm", "sensor-1"], ["rm", "sensor-1", "--purge"]]) {
    test(`devices ${args.join(" ")} on a data directory that does not exist says so (exit 1) and creates nothing`, () => {
      const missing = path.join(dataDir, "typo");
      const result = runCli(["devices", ...args, "--data-dir", missing]);
      assert.equal(result.status, 1, result.stderr);
      assert.equal(result.stdout, "");
      assert.equal(result.stderr, `error: no data directory at ${missing}\n`);
      assert.equal(fs.existsSync(missing), false);
    });
  }

  test("devices list on a registry a newer agent-bridge migrated says so (exit 1) and leaves the file as it was", () => {
    const newer = path.join(dataDir, "newer");
    fs.mkdirSync(newer);
    const file = path.join(newer, "registry.db");
    const db = new Database(file);
    db.pragma("user_version = 99");
    db.close();
    const result = runCli(["devices", "list", "--data-dir", newer]);
    assert.equal(result.status, 1, result.stderr);
    assert.equal(result.stdout, "");
    assert.match(result.stderr, /^error: cannot open device registry at .*: its schema version 99 is newer than/);
    const after = new Database(file, { readonly: true });
    assert.equal(after.pragma("user_version", { simple: true }), 99);
    after.close();
  });
});
