/**
 * `agent-bridge start` in process: a SIGTERM that arrives while the bridge is still starting is a graceful stop
 * (exit 0), not a failed start. The signal is emitted the moment the bridge's start begins, so it always lands inside
 * `bridge.start()`. One that lands while the bridge is still being built is a graceful stop too.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, test } from "node:test";
import { runStart } from "../../app/cli/start.ts";
import { LOCK_FILE } from "../../app/bridge/data-dir-lock.ts";
import { BridgeLifecycle } from "../../app/bridge/lifecycle.ts";
import { makeTempDir, runCli } from "./support/bridge-process.ts";
import { writeSignalOnImportConfig } from "./support/signal-on-import.ts";

const dataDir = makeTempDir("bridge-start-signal-");
const buildDir = makeTempDir("bridge-start-signal-build-");
after(() => {
  // runStart installs process-wide handlers; this file is its own process, but leave nothing behind anyway.
  for (const event of ["SIGTERM", "SIGINT", "uncaughtException", "unhandledRejection"] as const) {
    process.removeAllListeners(event);
  }
  fs.rmSync(dataDir, { recursive: true, force: true });
  fs.rmSync(buildDir, { recursive: true, force: true });
});

test("a SIGTERM while the bridge is starting stops it gracefully with exit code 0", async () => {
  // runStart listens for signals from before the bridge is built: the signal waits for the start itself.
  const start = BridgeLifecycle.prototype.start;
  BridgeLifecycle.prototype.start = function (this: BridgeLifecycle, ...args: Parameters<typeof start>) {
    const starting = start.apply(this, args);
    queueMicrotask(() => process.emit("SIGTERM", "SIGTERM"));
    return starting;
  };
  let code: number;
  try {
    code = await runStart(
      { dataDir, logLevel: "silent" },
      {
        mqtt: { host: "127.0.0.1", port: 0 },
        http: { host: "127.0.0.1", port: 0, apiToken: "start-signal-token-0123456789" },
      },
    );
  } finally {
    BridgeLifecycle.prototype.start = start;
  }
  assert.equal(code, 0);
  assert.equal(fs.existsSync(path.join(dataDir, LOCK_FILE)), false, "the data directory lock is released");
});

test("a SIGTERM while the bridge is still being built (its agent classes loading) stops it with exit code 0", () => {
  // The signal lands inside createBridge, before bridge.start() (which the test above covers).
  const configFile = writeSignalOnImportConfig(buildDir);
  const bridgeDir = path.join(buildDir, "data");
  const result = runCli(
    ["start", "--data-dir", bridgeDir, "--config", configFile, "--host", "127.0.0.1", "--mqtt-port", "0"].concat([
      "--http-port",
      "0",
      "--log-level",
      "info",
    ]),
    { BRIDGE_API_TOKEN: "start-signal-token-0123456789" },
  );
  assert.equal(result.status, 0, `stderr: ${result.stderr}; stdout: ${result.stdout}`);
  assert.match(result.stdout, /"msg":"stopped"/);
  assert.equal(fs.existsSync(path.join(bridgeDir, LOCK_FILE)), false, "the data directory lock is released");
});
