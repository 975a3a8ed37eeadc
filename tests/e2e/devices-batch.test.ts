import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, describe, test } from "node:test";
import { createDeviceRegistry } from "../../broker/registry/index.ts";
import { parseCredentials } from "../../firmware-sim/index.ts";
import { REGISTRY_FILE } from "../../app/bridge/layout.ts";
import { makeTempDir, runCli } from "./support/bridge-process.ts";

describe("devices add --count", () => {
  const dataDir = makeTempDir("e2e-devices-batch-");
  after(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  test("provisions N devices in one call and prints JSON lines that sim --credentials reads, with working secrets", async () => {
    const res = runCli([
      "devices",
      "add",
      "--count",
      "12",
      "--prefix",
      "b-",
      "--codec",
      "pb",
      "--json",
      "--data-dir",
      dataDir,
    ]);
    assert.equal(res.status, 0, res.stderr);
    const lines = res.stdout.trim().split("\n");
    assert.equal(lines.length, 12);
    const credentials = parseCredentials(res.stdout);
    assert.deepEqual(
      credentials.map((c) => c.id),
      Array.from({ length: 12 }, (_, i) => `b-${String(i + 1).padStart(2, "0")}`),
    );
    const registry = createDeviceRegistry({ path: path.join(dataDir, REGISTRY_FILE) });
    try {
      assert.equal(registry.list().length, 12);
      assert.equal(registry.get("b-07")?.codec, "pb");
      const first = credentials[0] as { id: string; secret: string };
      assert.equal((await registry.verify(first.id, first.secret)).status, "ok");
      assert.notEqual((await registry.verify("b-02", first.secret)).status, "ok", "each device has its own secret");
    } finally {
      registry.close();
    }
  });

  test("refuses a batch that would clash with existing ids and adds none of it", () => {
    const res = runCli(["devices", "add", "--count", "15", "--prefix", "b-", "--data-dir", dataDir]);
    assert.equal(res.status, 1);
    assert.match(res.stderr, /exist already/);
    const list = runCli(["devices", "list", "--json", "--data-dir", dataDir]);
    assert.equal((JSON.parse(list.stdout) as unknown[]).length, 12);
  });

  test("prints a table of ids and secrets without --json", () => {
    const res = runCli(["devices", "add", "--count", "3", "--prefix", "t", "--data-dir", dataDir]);
    assert.equal(res.status, 0, res.stderr);
    const rows = res.stdout.trim().split("\n");
    assert.equal(rows[0], "ID\tSECRET");
    assert.deepEqual(
      rows.slice(1).map((r) => r.split("\t")[0]),
      ["t1", "t2", "t3"],
    );
    assert.match(res.stderr, /shown once/);
  });

  test("bad counts, prefixes and mixes with an id are usage errors with exit code 2", () => {
    for (const args of [
      ["--count", "0", "--prefix", "x"],
      ["--count", "3", "--prefix", "bad/"],
      ["one-id", "--count", "3", "--prefix", "x"],
    ]) {
      const res = runCli(["devices", "add", ...args, "--data-dir", dataDir]);
      assert.equal(res.status, 2, `${args.join(" ")}: ${res.stderr}`);
    }
  });
});
