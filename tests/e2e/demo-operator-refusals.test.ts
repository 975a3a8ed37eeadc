/**
 * `agent-bridge demo` on a data directory it cannot use ends as `start` does (docs/errors.md): one plain line on
 * stderr, no fatal log line and no stack. A directory another running bridge holds is exit 1; an `api-token` file in it
 * that breaks the token rule is exit 2.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, test } from "node:test";
import { runCli, startBridgeProcess, suiteCleanup } from "./support/bridge-process.ts";

const { tempDir, running } = suiteCleanup();

/** A demo on `dataDir` that should stop before it runs; its duration only bounds one that wrongly runs. */
function demoOn(dataDir: string): ReturnType<typeof runCli> {
  return runCli(["demo", "--data-dir", dataDir, "--duration-s", "1"], { BRIDGE_DATA_DIR: "", BRIDGE_API_TOKEN: "" });
}

/** No fatal log line, no "could not be built", no stack frame, on either stream. */
function assertNoFault(result: ReturnType<typeof runCli>): void {
  const output = `${result.stderr}\n${result.stdout}`;
  assert.doesNotMatch(output, /"level":60|could not be built|\n\s+at /, output);
}

describe("agent-bridge demo on a data directory it cannot use", () => {
  test("one another running bridge holds: one error line naming the directory and the pid, exit 1", async () => {
    const dataDir = tempDir("bridge-demo-locked-");
    const holder = await startBridgeProcess({ dataDir });
    running.push(holder);

    const result = demoOn(dataDir);
    assert.equal(result.status, 1, `stdout: ${result.stdout}\nstderr: ${result.stderr}`);
    assert.equal(
      result.stderr,
      `error: data directory ${dataDir} is in use by pid ${holder.child.pid} on host ${os.hostname()} ` +
        "(as recorded by the owner, which may run in another container)\n",
    );
    assertNoFault(result);
    assert.equal((await holder.api("GET", "/healthz")).status, 200, "the holder still serves");
  });

  test("one whose api-token file is too short: one config error line naming the file and the rule, exit 2", () => {
    const dataDir = tempDir("bridge-demo-token-");
    const file = path.join(dataDir, "api-token");
    fs.writeFileSync(file, "short\n", { mode: 0o600 });

    const result = demoOn(dataDir);
    assert.equal(result.status, 2, `stdout: ${result.stdout}\nstderr: ${result.stderr}`);
    assert.equal(
      result.stderr,
      `config error: the token file ${file} must hold at least 16 visible ASCII characters (no spaces)\n`,
    );
    assertNoFault(result);
    assert.equal(fs.readFileSync(file, "utf8"), "short\n", "the file is left as it was");
  });
});
