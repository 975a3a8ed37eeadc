import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, test } from "node:test";
import { BIN, ROOT } from "./support/bridge-process.ts";

/** Runs `agent-bridge demo ARGS` with a temporary data directory of its own; fails the test rather than hang. */
function demo(args: string[]) {
  return spawnSync(process.execPath, [BIN, "demo", ...args], {
    cwd: ROOT,
    encoding: "utf8",
    timeout: 60_000,
    env: { ...process.env, BRIDGE_DATA_DIR: "", BRIDGE_API_TOKEN: "" },
  });
}

describe("agent-bridge demo flag bounds", () => {
  test("a --duration-s past what a timer can wait is bad usage, not a demo that stops at once", () => {
    // 2200000 s is 2.2e9 ms, past setTimeout's 2^31-1 ms: Node fires such a timer after 1 ms.
    const result = demo(["--duration-s", "2200000"]);
    assert.equal(result.status, 2, `stdout: ${result.stdout}\nstderr: ${result.stderr}`);
    assert.match(result.stderr, /--duration-s must be a number from 0 to 2147483 \(got "2200000"\)/);
    assert.doesNotMatch(result.stdout, /starting the engine simulator/);
  });

  test("the longest --duration-s is accepted", () => {
    const result = demo(["--duration-s", "2147483", "--log-level", "nope"]);
    // The duration passes; the bad log level behind it is what stops the demo (exit 2, before anything starts).
    assert.equal(result.status, 2, result.stderr);
    assert.match(result.stderr, /config error: log\.level/);
  });

  test("a --reason-interval-ms over an hour is bad usage before anything starts, named by its flag", () => {
    const result = demo(["--duration-s", "1", "--reason-interval-ms", "3600001"]);
    assert.equal(result.status, 2, `stdout: ${result.stdout}\nstderr: ${result.stderr}`);
    assert.match(result.stderr, /--reason-interval-ms must be a number from 0 to 3600000 \(got "3600001"\)/);
    assert.doesNotMatch(result.stdout, /starting the engine simulator/);
  });
});
