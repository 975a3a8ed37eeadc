/**
 * `agent-bridge start` in process: a SIGTERM that arrives while the bridge is still starting is a graceful stop
 * (exit 0), not a failed start. The signal is emitted the moment `runStart` installs its handler, so it always lands
 * inside `bridge.start()`.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, test } from "node:test";
import { runStart } from "../../app/cli/start.ts";
import { LOCK_FILE } from "../../app/bridge/data-dir-lock.ts";
import { makeTempDir } from "./support/bridge-process.ts";

const dataDir = makeTempDir("bridge-start-signal-");
after(() => {
  // runStart installs process-wide handlers; this file is its own process, but leave nothing behind anyway.
  for (const event of ["SIGTERM", "SIGINT", "uncaughtException", "unhandledRejection"] as const) {
    process.removeAllListeners(event);
  }
  fs.rmSync(dataDir, { recursive: true, force: true });
});

test("a SIGTERM while the bridge is starting stops it gracefully with exit code 0", async () => {
  const signalOnHandler = (event: string | symbol) => {
    if (event !== "SIGTERM") return;
    process.off("newListener", signalOnHandler);
    queueMicrotask(() => process.emit("SIGTERM", "SIGTERM"));
  };
  process.on("newListener", signalOnHandler);
  const code = await runStart(
    { dataDir, logLevel: "silent" },
    {
      mqtt: { host: "127.0.0.1", port: 0 },
      http: { host: "127.0.0.1", port: 0, apiToken: "start-signal-token-0123456789" },
    },
  );
  assert.equal(code, 0);
  assert.equal(fs.existsSync(path.join(dataDir, LOCK_FILE)), false, "the data directory lock is released");
});
