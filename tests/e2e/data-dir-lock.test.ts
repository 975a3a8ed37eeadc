/**
 * One bridge per data directory: a second `agent-bridge start` on a directory in use fails with exit code 1 and
 * names the owner's pid and host, the `devices` commands keep working beside a running bridge, and a bridge killed
 * with SIGKILL leaves the directory free for the next start at once. The lock's own rules:
 * tests/app/data-dir-lock.test.ts (in one process) and tests/app/data-dir-lock-holders.test.ts (other processes).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, test } from "node:test";
import { LOCK_DATABASE_FILE, LOCK_FILE } from "../../app/bridge/data-dir-lock.ts";
import {
  BIN,
  loopbackStartArgs,
  ROOT,
  runCli,
  startBridgeProcess,
  suiteCleanup,
  TEST_API_TOKEN,
} from "./support/bridge-process.ts";

const { tempDir, running } = suiteCleanup();

/** Runs a `start` that is expected to fail at once; a start that wrongly runs is killed after 30 s. */
function startExpectingFailure(dataDir: string): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [BIN, ...loopbackStartArgs(dataDir)], {
    cwd: ROOT,
    env: { ...process.env, BRIDGE_API_TOKEN: TEST_API_TOKEN },
    encoding: "utf8",
    timeout: 30_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe("the data directory lock of agent-bridge start", () => {
  test("a second start on a directory in use exits 1, one line naming its owner; devices commands still work", async () => {
    const dataDir = tempDir("bridge-lock-");
    const first = await startBridgeProcess({ dataDir });
    running.push(first);
    const owner = JSON.parse(fs.readFileSync(path.join(dataDir, LOCK_FILE), "utf8")) as { pid: number };
    assert.equal(owner.pid, first.child.pid, "the running bridge records itself as the owner");

    const second = startExpectingFailure(dataDir);
    const output = `${second.stderr}\n${second.stdout}`;
    assert.equal(second.status, 1, output);
    // The operator's situation to resolve, not a fault of the bridge: one plain line, no fatal log line, no stack.
    assert.equal(
      second.stderr,
      `error: data directory ${dataDir} is in use by pid ${first.child.pid} on host ${os.hostname()} ` +
        "(as recorded by the owner, which may run in another container)\n",
      output,
    );
    assert.doesNotMatch(second.stdout, /"level":60|bridge could not be built|\n\s+at /, output);

    const added = runCli(["devices", "add", "beside-1", "--data-dir", dataDir, "--json"]);
    assert.equal(added.status, 0, added.stderr);
    const listed = runCli(["devices", "list", "--data-dir", dataDir, "--json"]);
    assert.equal(listed.status, 0, listed.stderr);
    assert.ok(listed.stdout.includes("beside-1"), listed.stdout);

    // The first bridge was not disturbed: it still serves.
    const health = await first.api("GET", "/healthz");
    assert.equal(health.status, 200);
    assert.equal(await first.stop("SIGTERM"), 0);
    assert.equal(fs.existsSync(path.join(dataDir, LOCK_FILE)), false, "a graceful stop removes the owner record");
    assert.ok(fs.existsSync(path.join(dataDir, LOCK_DATABASE_FILE)), "the lock database is never removed");
  });

  test("after SIGKILL of the first bridge, a new start takes the lock at once and serves", async () => {
    const dataDir = tempDir("bridge-lock-kill-");
    const first = await startBridgeProcess({ dataDir });
    running.push(first);
    assert.equal(await first.stop("SIGKILL"), "SIGKILL");
    assert.ok(fs.existsSync(path.join(dataDir, LOCK_FILE)), "SIGKILL leaves the owner record behind");

    const next = await startBridgeProcess({ dataDir });
    running.push(next);
    const owner = JSON.parse(fs.readFileSync(path.join(dataDir, LOCK_FILE), "utf8")) as { pid: number };
    assert.equal(owner.pid, next.child.pid);
    assert.equal((await next.api("GET", "/healthz")).status, 200);
    assert.equal(await next.stop("SIGTERM"), 0);
  });
});
