import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, describe, test } from "node:test";
import { pino } from "pino";
import { createBridge } from "../../app/bridge.ts";
import { type BridgeConfig, loadConfig } from "../../app/config/index.ts";
import { hasErrorCode } from "../../errors/index.ts";
import { makeTempDir } from "./support/bridge-process.ts";

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});

function freshDir(): string {
  const dir = makeTempDir("bridge-build-failure-");
  dirs.push(dir);
  return dir;
}

/** A loopback config whose API token comes from `<dataDir>/api-token` (none configured). */
function configFor(dataDir: string, engineUrls: string[] = []): BridgeConfig {
  const loaded = loadConfig({
    overrides: {
      dataDir,
      mqtt: { host: "127.0.0.1", port: 0 },
      http: { host: "127.0.0.1", port: 0 },
      engine: { urls: engineUrls },
    },
  });
  if (!loaded.ok) throw new Error(`the test config did not load: ${JSON.stringify(loaded.issues)}`);
  return loaded.config;
}

/** This process's open file descriptors on files under `dir` (Linux only; undefined elsewhere). */
function openFilesUnder(dir: string): string[] | undefined {
  if (!fs.existsSync("/proc/self/fd")) return undefined;
  const open: string[] = [];
  for (const fd of fs.readdirSync("/proc/self/fd")) {
    try {
      const target = fs.readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(`${dir}${path.sep}`)) open.push(target);
    } catch {
      // The descriptor readdir itself used, closed by now.
    }
  }
  return open;
}

const logger = pino({ level: "silent" });

describe("createBridge that fails while building", () => {
  test("closes what it opened, so a second createBridge on the same data directory starts and serves", async () => {
    const dataDir = freshDir();
    // Refused only after the registry and the agent runtime (its exclusive runtime.db) are open.
    fs.writeFileSync(path.join(dataDir, "api-token"), "short\n");
    await assert.rejects(createBridge(configFor(dataDir), { logger }), (err) =>
      hasErrorCode(err, "BRIDGE_ERR_API_TOKEN"),
    );
    const left = openFilesUnder(dataDir);
    if (left !== undefined) assert.deepEqual(left, [], "no file of the data directory stays open");

    fs.writeFileSync(path.join(dataDir, "api-token"), "a-long-enough-operator-token-0123\n");
    const bridge = await createBridge(configFor(dataDir), { logger });
    try {
      await bridge.start();
      const ping = await bridge.runtime.call("after-failure-1", "ping", []);
      assert.equal(ping.ok, true, JSON.stringify(ping));
    } finally {
      await bridge.stop();
    }
  });

  test("a failure after generating the API token removes its file: the next start makes and shows one", async () => {
    const dataDir = freshDir();
    // A build step after the token is generated fails: the agent socket server's logger cannot be made.
    const failing = pino({ level: "silent" });
    const child = failing.child.bind(failing);
    failing.child = ((bindings, options) => {
      if (bindings.component === "ws") throw new Error("injected build failure");
      return child(bindings, options);
    }) as typeof failing.child;
    await assert.rejects(createBridge(configFor(dataDir), { logger: failing }), /injected build failure/);
    // Nobody saw it and nothing ever listened with it: left behind, it would never be shown (later starts only say
    // where it is).
    assert.equal(fs.existsSync(path.join(dataDir, "api-token")), false, "the unseen token file is removed");
    const bridge = await createBridge(configFor(dataDir), { logger });
    try {
      assert.equal(bridge.apiTokenSource, "generated");
      assert.equal(fs.readFileSync(path.join(dataDir, "api-token"), "utf8").trim(), bridge.apiToken);
    } finally {
      await bridge.stop();
    }
  });

  test("an engine setting the engine client refuses leaves no registry handle open", async () => {
    const dataDir = freshDir();
    const url = "http://127.0.0.1:9";
    await assert.rejects(createBridge(configFor(dataDir, [url, url]), { logger }), (err) =>
      hasErrorCode(err, "BRIDGE_ERR_CONFIG"),
    );
    const left = openFilesUnder(dataDir);
    if (left !== undefined) assert.deepEqual(left, [], "no file of the data directory stays open");
    const bridge = await createBridge(configFor(dataDir), { logger });
    await bridge.start();
    await bridge.stop();
  });
});
