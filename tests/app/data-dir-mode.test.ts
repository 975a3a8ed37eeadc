/**
 * The folders the bridge keeps its data in are created readable by their owner only: they hold the device registry
 * (scrypt hashes of every device secret), the API token and each agent's telemetry and conversations, and a
 * world-readable folder (mode 0755 under the usual umask 022) let any local user read them.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";
import { openAgentsDir } from "../../agents/data-dir.ts";
import { makeDataDir, warnIfOpenToOthers } from "../../app/bridge/data-dir.ts";
import { loadOrCreateApiToken } from "../../app/api/token.ts";
import { createBroker } from "../../broker/index.ts";
import { RecordingHost } from "../broker/helpers.ts";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "data-dir-mode-"));
after(() => fs.rmSync(root, { recursive: true, force: true }));

/** The permission bits group and others hold on `dir`. */
function openToOthers(dir: string): number {
  return fs.statSync(dir).mode & 0o077;
}

describe("data folders created by the bridge", () => {
  test("makeDataDir creates the data directory, and its missing parents, with mode 0700", () => {
    const dir = path.join(root, "make", "nested", "data");
    makeDataDir(dir);
    assert.equal(openToOthers(dir), 0);
    assert.equal(openToOthers(path.join(root, "make", "nested")), 0);
  });

  test("makeDataDir leaves the mode of an existing directory as the operator set it", () => {
    const dir = path.join(root, "existing");
    fs.mkdirSync(dir, { mode: 0o750 });
    fs.chmodSync(dir, 0o750);
    makeDataDir(dir);
    assert.equal(fs.statSync(dir).mode & 0o777, 0o750);
  });

  test("the runtime's agents folder is created with mode 0700", () => {
    const dir = path.join(root, "runtime", "agents");
    openAgentsDir(dir);
    assert.equal(openToOthers(dir), 0);
  });

  test("a broker opening its own registry creates its data directory with mode 0700", async () => {
    const dir = path.join(root, "broker");
    const broker = createBroker({ host: new RecordingHost(), dataDir: dir, tcp: false, websocket: false });
    try {
      assert.equal(openToOthers(dir), 0);
    } finally {
      await broker.close();
    }
  });

  test("the token file's directory, created for it, has mode 0700", () => {
    const dir = path.join(root, "token");
    loadOrCreateApiToken(dir);
    assert.equal(openToOthers(dir), 0);
    assert.equal(fs.statSync(path.join(dir, "api-token")).mode & 0o077, 0);
  });

  test("a data directory others can read is warned about once, naming it and its mode; an owner-only one is not", () => {
    const warnings: Array<{ fields: object; message: string }> = [];
    const logger = { warn: (fields: object, message: string) => warnings.push({ fields, message }) };
    const open = path.join(root, "open");
    fs.mkdirSync(open);
    fs.chmodSync(open, 0o755);
    warnIfOpenToOthers(open, logger);
    assert.equal(warnings.length, 1);
    assert.deepEqual(warnings[0].fields, { dataDir: open, mode: "0755" });
    assert.match(warnings[0].message, /chmod 700/);
    fs.chmodSync(open, 0o700);
    warnIfOpenToOthers(open, logger);
    warnIfOpenToOthers(path.join(root, "not-there"), logger);
    assert.equal(warnings.length, 1);
  });
});
