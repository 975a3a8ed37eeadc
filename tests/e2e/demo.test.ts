import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, test } from "node:test";
import { BIN, ROOT } from "./support/bridge-process.ts";

describe("agent-bridge demo", () => {
  test("runs the engine simulator, a bridge and a small fleet, prints reasoning answers and a clean report", () => {
    const result = spawnSync(process.execPath, [BIN, "demo", "--duration-s", "6", "--reason-interval-ms", "300"], {
      cwd: ROOT,
      encoding: "utf8",
      timeout: 90_000,
      env: { ...process.env, BRIDGE_DATA_DIR: "", BRIDGE_API_TOKEN: "" },
    });
    assert.equal(result.status, 0, `stdout: ${result.stdout}\nstderr: ${result.stderr}`);
    assert.match(result.stdout, /bridge ready: MQTT 127\.0\.0\.1:\d+/);
    assert.match(result.stdout, /device online \(4\/4\)/);
    assert.match(result.stdout, /\? demo-assistant-1 asks: .+/);
    assert.match(result.stdout, /! demo-assistant-1 answer \(\w+, \d+ prompt \+ \d+ completion tokens\): \S+/);
    assert.match(result.stdout, /violations\s+0/);
    assert.match(result.stdout, /demo stopped/);
  });
});
