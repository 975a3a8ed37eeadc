/**
 * A rolled-back bridge on a data directory a newer build wrote: `start` refuses it (exit 2, one `error:` line naming
 * the file's schema version and its own) and leaves the files as they were, for registry.db and agents/runtime.db
 * alike (docs/operations.md, "Upgrading and downgrading").
 */
import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import Database from "better-sqlite3";
import {
  type LogLine,
  loopbackStartArgs,
  runCli,
  startBridgeProcess,
  suiteCleanup,
  TEST_API_TOKEN,
} from "./support/bridge-process.ts";

const cleanup = suiteCleanup();

function userVersion(file: string, set?: number): number {
  const db = new Database(file);
  try {
    if (set !== undefined) db.pragma(`user_version = ${set}`);
    return db.pragma("user_version", { simple: true }) as number;
  } finally {
    db.close();
  }
}

/** Runs `start` to its end on `dataDir`; returns its exit code, its stderr and its fatal log line, if any. */
function startToEnd(dataDir: string): { status: number | null; stderr: string; fatal: LogLine | undefined } {
  const result = runCli(loopbackStartArgs(dataDir), { BRIDGE_API_TOKEN: TEST_API_TOKEN });
  const lines = result.stdout
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as LogLine);
  return { status: result.status, stderr: result.stderr, fatal: lines.find((line) => line.level === 60) };
}

test("start refuses a registry.db or runtime.db a newer build wrote: one line with the versions, exit 2", async () => {
  const dataDir = path.join(cleanup.tempDir("downgrade-"), "data");
  const bridge = await startBridgeProcess({ dataDir });
  assert.equal(await bridge.stop(), 0);

  for (const file of [path.join(dataDir, "registry.db"), path.join(dataDir, "agents", "runtime.db")]) {
    const known = userVersion(file);
    userVersion(file, known + 1);
    const { status, stderr, fatal } = startToEnd(dataDir);
    // 2, not 1: only another build resolves it, so a service manager must not restart this one in a loop.
    assert.equal(status, 2, file);
    assert.equal(fatal, undefined, "one plain line, not a fatal log line with a stack");
    const lines = stderr.trim().split("\n");
    assert.equal(lines.length, 1, stderr);
    assert.ok(lines[0].startsWith("error: "), stderr);
    assert.ok(lines[0].includes(file), stderr);
    assert.ok(
      lines[0].includes(`its schema version ${known + 1} is newer than this agent-bridge knows (${known})`),
      stderr,
    );
    assert.equal(userVersion(file), known + 1, "the file is left as it was");
    userVersion(file, known);
  }
  // Put back, the same files start again.
  const again = await startBridgeProcess({ dataDir });
  assert.equal(await again.stop(), 0);
});
