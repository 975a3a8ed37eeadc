/**
 * One bridge per data directory: a second `agent-bridge start` on a directory in use fails with exit code 1 and
 * names the owner's pid, the `devices` commands keep working beside a running bridge, and a lock left by SIGKILL is
 * taken over by the next start. The lock module's own rules (stale pids, reused pids, one bridge per process) are
 * checked in process with injected probes.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { describe, test } from "node:test";
import { acquireDataDirLock, LOCK_FILE } from "../../app/bridge/data-dir-lock.ts";
import { hasErrorCode } from "../../errors/index.ts";
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
  test("a second start on a directory in use exits 1 with one line naming the directory and the pid, and devices commands still work", async () => {
    const dataDir = tempDir("bridge-lock-");
    const first = await startBridgeProcess({ dataDir });
    running.push(first);
    assert.ok(fs.existsSync(path.join(dataDir, LOCK_FILE)), "the running bridge holds the lock file");

    const second = startExpectingFailure(dataDir);
    const output = `${second.stderr}\n${second.stdout}`;
    assert.equal(second.status, 1, output);
    // The operator's situation to resolve, not a fault of the bridge: one plain line, no fatal log line, no stack.
    assert.equal(second.stderr, `error: data directory ${dataDir} is in use by pid ${first.child.pid}\n`, output);
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
    assert.equal(fs.existsSync(path.join(dataDir, LOCK_FILE)), false, "a graceful stop removes the lock");
  });

  test("after SIGKILL of the first bridge, a new start takes the stale lock over and serves", async () => {
    const dataDir = tempDir("bridge-lock-kill-");
    const first = await startBridgeProcess({ dataDir });
    running.push(first);
    assert.equal(await first.stop("SIGKILL"), "SIGKILL");
    assert.ok(fs.existsSync(path.join(dataDir, LOCK_FILE)), "SIGKILL leaves the lock behind");

    const next = await startBridgeProcess({ dataDir });
    running.push(next);
    const owner = JSON.parse(fs.readFileSync(path.join(dataDir, LOCK_FILE), "utf8")) as { pid: number };
    assert.equal(owner.pid, next.child.pid);
    assert.equal((await next.api("GET", "/healthz")).status, 200);
    assert.equal(await next.stop("SIGTERM"), 0);
  });
});

describe("acquireDataDirLock", () => {
  test("refuses a directory whose lock names a running pid with the same process start", () => {
    const dir = tempDir("lock-unit-");
    const held = acquireDataDirLock(dir, { pid: 4242, processStart: () => "100", isRunning: () => true });
    assert.throws(
      () => acquireDataDirLock(dir, { pid: 5151, processStart: () => "100", isRunning: () => true }),
      (err: unknown) =>
        hasErrorCode(err, "BRIDGE_ERR_DATA_DIR_LOCKED") &&
        (err as Error).message === `data directory ${dir} is in use by pid 4242`,
    );
    held.release();
  });

  test("takes over a lock whose pid no longer runs", () => {
    const dir = tempDir("lock-unit-");
    acquireDataDirLock(dir, { pid: 4242, processStart: () => "100", isRunning: () => true });
    const next = acquireDataDirLock(dir, { pid: 5151, processStart: () => "200", isRunning: (pid) => pid !== 4242 });
    assert.equal(JSON.parse(fs.readFileSync(next.file, "utf8")).pid, 5151);
    next.release();
    assert.equal(fs.existsSync(next.file), false);
  });

  test("takes over a lock whose pid now belongs to a process started at another time", () => {
    const dir = tempDir("lock-unit-");
    acquireDataDirLock(dir, { pid: 4242, processStart: () => "100", isRunning: () => true });
    const next = acquireDataDirLock(dir, {
      pid: 5151,
      processStart: (pid) => (pid === 4242 ? "999" : "200"),
      isRunning: () => true,
    });
    assert.equal(JSON.parse(fs.readFileSync(next.file, "utf8")).pid, 5151);
    next.release();
  });

  test("takes over a lock left with its own pid by an earlier process, but refuses a second lock in one process", () => {
    const dir = tempDir("lock-unit-");
    // An earlier container run had the same pid: the file is there, but this process never took it.
    fs.writeFileSync(path.join(dir, LOCK_FILE), `${JSON.stringify({ pid: process.pid, startedAt: "x", host: "h" })}\n`);
    const lock = acquireDataDirLock(dir);
    assert.throws(
      () => acquireDataDirLock(dir),
      (err: unknown) => hasErrorCode(err, "BRIDGE_ERR_DATA_DIR_LOCKED"),
    );
    lock.release();
    lock.release(); // idempotent
    const again = acquireDataDirLock(dir);
    again.release();
  });

  test("refuses while a fresh unreadable lock may still be being written, takes an old one as stale, leaves no temp files", () => {
    const dir = tempDir("lock-unit-");
    const file = path.join(dir, LOCK_FILE);
    fs.writeFileSync(file, "not json");
    const written = fs.statSync(file).mtimeMs;
    // Fresh: another start may be writing it.
    assert.throws(
      () => acquireDataDirLock(dir, { pid: 5151, isRunning: () => true, nowMs: () => written + 1000 }),
      (err: unknown) => hasErrorCode(err, "BRIDGE_ERR_DATA_DIR_LOCKED"),
    );
    assert.deepEqual(fs.readdirSync(dir), [LOCK_FILE]);
    const lock = acquireDataDirLock(dir, { pid: 5151, isRunning: () => true, nowMs: () => written + 60_000 });
    assert.deepEqual(fs.readdirSync(dir), [LOCK_FILE]);
    lock.release();
    assert.deepEqual(fs.readdirSync(dir), []);
  });
});
