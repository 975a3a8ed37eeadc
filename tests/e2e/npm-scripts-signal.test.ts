/**
 * `npm start` (and `npm run demo`, `npm run sim`) as the README runs them: npm runs the script through `sh -c`, and a
 * SIGTERM sent to npm (the pid an operator sees, the one `docker stop` signals when npm is the container's command)
 * reached only npm and that shell, which ended and left the bridge running on its own, still holding its ports and
 * the data directory's lock. A script that `exec`s node has npm's signal reach the bridge, which stops gracefully.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { after, test } from "node:test";
import { LOCK_FILE } from "../../app/bridge/data-dir-lock.ts";
import { makeTempDir, ROOT, TEST_API_TOKEN } from "./support/bridge-process.ts";

const dataDir = makeTempDir("bridge-npm-start-");
/** The bridge's pid once it started, so a bridge left running is ended by the test whatever happens. */
let bridgePid: number | undefined;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

after(() => {
  if (bridgePid !== undefined && alive(bridgePid)) process.kill(bridgePid, "SIGKILL");
  fs.rmSync(dataDir, { recursive: true, force: true });
});

test("every npm script that runs the CLI execs node, so npm's signals reach it", () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as {
    scripts: Record<string, string>;
  };
  for (const name of ["start", "demo", "sim"]) {
    assert.match(pkg.scripts[name] ?? "", /^exec node bin\/agent-bridge\.js /, `scripts.${name}`);
  }
});

test("a SIGTERM to `npm start` stops the bridge gracefully: the bridge ends and lets go of its data directory", async () => {
  const npm = spawn(
    "npm",
    ["run", "-s", "start", "--", "--data-dir", dataDir, "--host", "127.0.0.1", "--mqtt-port", "0", "--http-port", "0"],
    { cwd: ROOT, env: { ...process.env, BRIDGE_API_TOKEN: TEST_API_TOKEN }, stdio: ["ignore", "pipe", "pipe"] },
  );
  let out = "";
  npm.stdout.on("data", (chunk: Buffer) => {
    out += chunk.toString();
  });
  npm.stderr.on("data", (chunk: Buffer) => {
    out += chunk.toString();
  });
  const npmExited = new Promise<void>((resolve) => npm.on("exit", () => resolve()));
  for (let i = 0; i < 600 && !out.includes('"msg":"bridge started"'); i++) await new Promise((r) => setTimeout(r, 50));
  assert.match(out, /"msg":"bridge started"/);
  const lockFile = path.join(dataDir, LOCK_FILE);
  bridgePid = (JSON.parse(fs.readFileSync(lockFile, "utf8")) as { pid: number }).pid;
  assert.notEqual(bridgePid, npm.pid, "the lock names the bridge's node process");

  npm.kill("SIGTERM");
  await npmExited;
  for (let i = 0; i < 200 && alive(bridgePid); i++) await new Promise((r) => setTimeout(r, 50));
  assert.equal(alive(bridgePid), false, "the bridge was left running after npm ended");
  assert.match(out, /"signal":"SIGTERM","msg":"stopping: no new connections, draining mailboxes"/);
  assert.equal(fs.existsSync(lockFile), false, "a graceful stop releases the data directory");
});
