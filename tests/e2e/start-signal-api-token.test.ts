/**
 * A first start (no configured token) that a signal stops before the bridge is up still shows the token it generated,
 * once: otherwise it would be shown never, since every later start finds the file and says only where it is. In its
 * own file because runStart installs process-wide signal handlers that a second run in one process would share.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, test } from "node:test";
import { runStart } from "../../app/cli/start.ts";
import { BridgeLifecycle } from "../../app/bridge/lifecycle.ts";
import { makeTempDir, runCli } from "./support/bridge-process.ts";
import { writeSignalOnImportConfig } from "./support/signal-on-import.ts";

const startDir = makeTempDir("bridge-signal-token-start-");
const buildDir = makeTempDir("bridge-signal-token-build-");
after(() => {
  for (const event of ["SIGTERM", "SIGINT", "uncaughtException", "unhandledRejection"] as const) {
    process.removeAllListeners(event);
  }
  fs.rmSync(startDir, { recursive: true, force: true });
  fs.rmSync(buildDir, { recursive: true, force: true });
});

/** The token line a first start prints for the token in `dataDir`'s file. */
function tokenLine(dataDir: string): string {
  const file = path.join(dataDir, "api-token");
  return `operator API token (shown once; kept in ${file}): ${fs.readFileSync(file, "utf8").trim()}\n`;
}

test("a SIGTERM while the bridge is starting shows the generated token once", async () => {
  const start = BridgeLifecycle.prototype.start;
  BridgeLifecycle.prototype.start = function (this: BridgeLifecycle, ...args: Parameters<typeof start>) {
    const starting = start.apply(this, args);
    queueMicrotask(() => process.emit("SIGTERM", "SIGTERM"));
    return starting;
  };
  const written: string[] = [];
  const write = process.stdout.write;
  process.stdout.write = ((chunk: string | Uint8Array) => written.push(String(chunk)) > 0) as typeof write;
  let code: number;
  try {
    const saved = process.env.BRIDGE_API_TOKEN;
    delete process.env.BRIDGE_API_TOKEN;
    try {
      code = await runStart(
        { dataDir: startDir, logLevel: "silent" },
        { mqtt: { host: "127.0.0.1", port: 0 }, http: { host: "127.0.0.1", port: 0 } },
      );
    } finally {
      if (saved !== undefined) process.env.BRIDGE_API_TOKEN = saved;
    }
  } finally {
    process.stdout.write = write;
    BridgeLifecycle.prototype.start = start;
  }
  assert.equal(code, 0);
  assert.deepEqual(
    written.filter((chunk) => chunk.includes("operator API token")),
    [tokenLine(startDir)],
  );
});

test("a SIGTERM while the bridge is still being built shows the token the build generated once", () => {
  const configFile = writeSignalOnImportConfig(buildDir);
  const dataDir = path.join(buildDir, "data");
  const result = runCli(
    ["start", "--data-dir", dataDir, "--config", configFile, "--host", "127.0.0.1", "--mqtt-port", "0"].concat([
      "--http-port",
      "0",
    ]),
    { BRIDGE_API_TOKEN: "" },
  );
  assert.equal(result.status, 0, `stderr: ${result.stderr}; stdout: ${result.stdout}`);
  assert.match(result.stdout, /"msg":"stopped"/);
  assert.equal(result.stdout.split(tokenLine(dataDir)).length, 2, result.stdout);
});
