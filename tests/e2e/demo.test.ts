import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { describe, test } from "node:test";
import { startEngineSimulator } from "../../engine-client/sim/index.ts";
import { BIN, makeTempDir, ROOT, runCliAsync } from "./support/bridge-process.ts";

describe("agent-bridge demo", () => {
  test("runs the engine simulator, a bridge and a small fleet, prints reasoning answers and a clean report", () => {
    const result = spawnSync(process.execPath, [BIN, "demo", "--duration-s", "6", "--reason-interval-ms", "300"], {
      cwd: ROOT,
      encoding: "utf8",
      timeout: 90_000,
      env: { ...process.env, BRIDGE_DATA_DIR: "", BRIDGE_API_TOKEN: "", BRIDGE_ENGINE_URL: "" },
    });
    assert.equal(result.status, 0, `stdout: ${result.stdout}\nstderr: ${result.stderr}`);
    assert.match(result.stdout, /bridge ready: MQTT 127\.0\.0\.1:\d+/);
    assert.match(result.stdout, /device online \(4\/4\)/);
    assert.match(result.stdout, /\? demo-assistant-1 asks: .+/);
    assert.match(result.stdout, /! demo-assistant-1 answer \(\w+, \d+ prompt \+ \d+ completion tokens\): \S+/);
    assert.match(result.stdout, /violations\s+0/);
    assert.match(result.stdout, /demo stopped/);
  });

  test("an engine given with --engine-url is the one asked, and no simulator of its own is started", async () => {
    // The demo runs as a child: the engine answers from this process, so the child is awaited, not run synchronously.
    const engine = await startEngineSimulator({ host: "127.0.0.1", port: 0 });
    try {
      const args = ["demo", "--duration-s", "5", "--reason-interval-ms", "300", "--engine-url", engine.url];
      const { status, stdout, stderr } = await runCliAsync(args, {
        BRIDGE_DATA_DIR: "",
        BRIDGE_API_TOKEN: "",
        BRIDGE_ENGINE_URL: "",
      });
      assert.equal(status, 0, `stdout: ${stdout}\nstderr: ${stderr}`);
      assert.match(stdout, new RegExp(`engine: ${engine.url.replace(/[.]/g, "\\.")} \\(from the configuration\\)`));
      assert.doesNotMatch(stdout, /starting the engine simulator/);
      assert.match(stdout, /! demo-assistant-1 answer \(\w+, \d+ prompt \+ \d+ completion tokens\): \S+/);
      assert.ok(engine.requests().length > 0, "the questions reached the given engine");
    } finally {
      await engine.close();
    }
  });

  test("with the listeners bound to another address, the fleet and the read-back reach them there", () => {
    // 127.0.0.2 is loopback on Linux, and nothing listens for the demo on 127.0.0.1.
    const args = ["demo", "--duration-s", "4", "--reason-interval-ms", "300", "--host", "127.0.0.2"];
    const result = spawnSync(process.execPath, [BIN, ...args, "--http-host", "127.0.0.2"], {
      cwd: ROOT,
      encoding: "utf8",
      timeout: 90_000,
      env: { ...process.env, BRIDGE_DATA_DIR: "", BRIDGE_API_TOKEN: "", BRIDGE_ENGINE_URL: "" },
    });
    assert.equal(result.status, 0, `stdout: ${result.stdout}\nstderr: ${result.stderr}`);
    assert.match(result.stdout, /bridge ready: MQTT 127\.0\.0\.2:\d+, HTTP http:\/\/127\.0\.0\.2:\d+/);
    assert.match(result.stdout, /device online \(4\/4\)/);
    assert.match(result.stdout, /violations\s+0/);
  });

  test("a demo that cannot start leaves no temporary data directory behind", () => {
    const tmp = makeTempDir("bridge-demo-tmp-");
    try {
      const badClass = path.join(tmp, "bad-class.json");
      fs.writeFileSync(badClass, JSON.stringify({ agents: { classes: [{ pattern: "x-*", module: "./absent.mts" }] } }));
      for (const [args, status] of [
        [["--log-level", "loud"], 2],
        [["--config", badClass], 1],
      ] as const) {
        const result = spawnSync(process.execPath, [BIN, "demo", "--duration-s", "1", ...args], {
          cwd: ROOT,
          encoding: "utf8",
          timeout: 60_000,
          env: { ...process.env, TMPDIR: tmp, BRIDGE_DATA_DIR: "", BRIDGE_API_TOKEN: "" },
        });
        assert.equal(result.status, status, `stdout: ${result.stdout}\nstderr: ${result.stderr}`);
        const left = fs.readdirSync(tmp).filter((name) => name.startsWith("agent-bridge-demo-"));
        assert.deepEqual(left, [], `after demo ${args.join(" ")}`);
      }
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});
