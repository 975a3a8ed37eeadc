/**
 * A rolled-back bridge on a data directory a newer build wrote: `start` refuses it (exit 1, one fatal log line naming
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

/** Runs `start` to its end on `dataDir`; returns its exit code and its fatal log line. */
function startToEnd(dataDir: string): { status: number | null; fatal: LogLine | undefined } {
  const result = runCli(loopbackStartArgs(dataDir), { BRIDGE_API_TOKEN: TEST_API_TOKEN });
  const lines = result.stdout
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as LogLine);
  return { status: result.status, fatal: lines.find((line) => line.level === 60) };
}

test("start refuses a registry.db or runtime.db a newer build wrote, with exit 1 and the versions", async () => {
  const dataDir = path.join(cleanup.tempDir("downgrade-"), "data");
  const bridge = await startBridgeProcess({ dataDir });
  assert.equal(await bridge.stop(), 0);

  for (const file of [path.join(dataDir, "registry.db"), path.join(dataDir, "agents", "runtime.db")]) {
    const known = userVersion(file);
    userVersion(file, known + 1);
    const { status, fatal } = startToEnd(dataDir);
    assert.equal(status, 1, file);
    assert.equal(fatal?.msg, "bridge could not be built");
    const message = String((fatal?.err as { message?: string } | undefined)?.message);
    assert.ok(
      message.includes(`its schema version ${known + 1} is newer than this agent-bridge knows (${known})`),
      message,
    );
    assert.equal(userVersion(file), known + 1, "the file is left as it was");
    userVersion(file, known);
  }
  // Put back, the same files start again.
  const again = await startBridgeProcess({ dataDir });
  assert.equal(await again.stop(), 0);
});
