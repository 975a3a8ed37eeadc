/**
 * `npm start` (and `npm run demo`, `npm run sim`) as the README runs them: npm runs the script through `sh -c`, and a
 * SIGTERM sent to npm (the pid an operator sees, the one `docker stop` signals when npm is the container's command)
 * reached only npm and that shell, which ended and left the bridge running on its own, still holding its ports and
 * the data directory's lock. A script that `exec`s node has npm's signal reach the bridge, which stops gracefully.
 */
import assert from "node:assert/strict";
import { type ChildProcessByStdio, spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import type { Readable } from "node:stream";
import { after, test } from "node:test";
import { LOCK_FILE } from "../../app/bridge/data-dir-lock.ts";
import { loopbackStartArgs, makeTempDir, ROOT, TEST_API_TOKEN } from "./support/bridge-process.ts";

const dataDir = makeTempDir("bridge-npm-start-");
const ctrlCDataDir = makeTempDir("bridge-npm-ctrl-c-");
/** The bridge's pid once it started, so a bridge left running is ended by the test whatever happens. */
let bridgePid: number | undefined;
/** The process group of an `npm start` run as a terminal runs it, ended by the test whatever happens. */
let npmGroup: number | undefined;
const sockets: net.Socket[] = [];

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** `npm run -s <script> -- <args>` from the repository root, with its stdout and stderr gathered as they come. */
function runNpmScript(
  script: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; detached?: boolean } = {},
): { npm: ChildProcessByStdio<null, Readable, Readable>; output: () => string; exited: Promise<NpmExit> } {
  const npm = spawn("npm", ["run", "-s", script, "--", ...args], {
    cwd: ROOT,
    env: options.env ?? process.env,
    stdio: ["ignore", "pipe", "pipe"],
    detached: options.detached ?? false,
  });
  let out = "";
  const gather = (chunk: Buffer): void => {
    out += chunk.toString();
  };
  npm.stdout.on("data", gather);
  npm.stderr.on("data", gather);
  const exited = new Promise<NpmExit>((resolve) => npm.on("exit", (code, signal) => resolve({ code, signal })));
  return { npm, output: () => out, exited };
}

interface NpmExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Waits until `output()` passes `done`, 30 s at most (the caller asserts what it waited for). */
async function waitForOutput(output: () => string, done: (out: string) => boolean): Promise<void> {
  for (let i = 0; i < 600 && !done(output()); i++) await new Promise((r) => setTimeout(r, 50));
}

/** The arguments of `npm start` for a bridge on `dir`, on loopback and ports the system picks (`start` is npm's). */
const npmStartArgs = (dir: string): string[] => loopbackStartArgs(dir).slice(1);

after(() => {
  if (bridgePid !== undefined && alive(bridgePid)) process.kill(bridgePid, "SIGKILL");
  if (npmGroup !== undefined) {
    try {
      process.kill(-npmGroup, "SIGKILL");
    } catch {
      // The group ended already.
    }
  }
  for (const s of sockets) s.destroy();
  fs.rmSync(dataDir, { recursive: true, force: true });
  fs.rmSync(ctrlCDataDir, { recursive: true, force: true });
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
  const {
    npm,
    output,
    exited: npmExited,
  } = runNpmScript("start", npmStartArgs(dataDir), {
    env: { ...process.env, BRIDGE_API_TOKEN: TEST_API_TOKEN },
  });
  await waitForOutput(output, (out) => out.includes('"msg":"bridge started"'));
  assert.match(output(), /"msg":"bridge started"/);
  // npm start runs node on V8's defaults (app/node-flags.ts), and the started line says so.
  assert.match(output(), /"memoryReducer":"on"/);
  const lockFile = path.join(dataDir, LOCK_FILE);
  bridgePid = (JSON.parse(fs.readFileSync(lockFile, "utf8")) as { pid: number }).pid;
  assert.notEqual(bridgePid, npm.pid, "the lock names the bridge's node process");

  npm.kill("SIGTERM");
  await npmExited;
  for (let i = 0; i < 200 && alive(bridgePid); i++) await new Promise((r) => setTimeout(r, 50));
  assert.equal(alive(bridgePid), false, "the bridge was left running after npm ended");
  assert.match(output(), /"signal":"SIGTERM","msg":"stopping: no new connections, draining mailboxes"/);
  assert.equal(fs.existsSync(lockFile), false, "a graceful stop releases the data directory");
});

test("Ctrl-C in the terminal running `npm start` stops the bridge gracefully, though the bridge gets the SIGINT twice", async () => {
  // A terminal sends Ctrl-C's SIGINT to its whole foreground process group: npm and the bridge it exec'd. npm forwards
  // the SIGINT it got to its script, so the bridge gets a second one a moment later.
  const {
    npm,
    output,
    exited: npmExited,
  } = runNpmScript("start", npmStartArgs(ctrlCDataDir), {
    env: { ...process.env, BRIDGE_API_TOKEN: TEST_API_TOKEN },
    detached: true,
  });
  npmGroup = npm.pid;
  await waitForOutput(output, (out) => out.includes('"msg":"bridge started"'));
  const started = output()
    .split("\n")
    .find((l) => l.includes('"msg":"bridge started"'));
  assert.ok(started !== undefined, output());
  const httpPort = (JSON.parse(started) as { addresses: { http: { port: number } } }).addresses.http.port;
  // A client in the middle of a request head holds the stop for the HTTP close grace (3 s): the second SIGINT comes
  // while the bridge is stopping, whatever the machine's speed.
  const stalled = net.connect(httpPort, "127.0.0.1");
  sockets.push(stalled);
  stalled.on("error", () => {});
  await new Promise<void>((resolve) => stalled.once("connect", () => resolve()));
  stalled.write("GET /healthz HTTP/1.1\r\nHost: x\r\n");
  await new Promise((r) => setTimeout(r, 100));

  process.kill(-(npm.pid as number), "SIGINT");
  const { code } = await npmExited;
  const out = output();
  assert.doesNotMatch(out, /forcing exit/);
  assert.match(out, /"msg":"stopped"/);
  assert.equal(code, 0, out);
  npmGroup = undefined;
});

test("Ctrl-C in the terminal running `npm run sim` stops the fleet early and still prints its report", async () => {
  // No broker at that port: the devices keep retrying, which is all this needs; the run reports once interrupted.
  const {
    npm,
    output,
    exited: npmExited,
  } = runNpmScript(
    "sim",
    ["--url", "mqtt://127.0.0.1:9", "--devices", "1", "--duration", "60", "--drain-timeout-ms", "100"],
    { detached: true },
  );
  npmGroup = npm.pid;
  // The first progress line (every 5 s without a terminal) shows once the run is under way, its interrupt handler in.
  await waitForOutput(output, (out) => /online \d+\/1/.test(out));
  assert.match(output(), /online \d+\/1/);

  process.kill(-(npm.pid as number), "SIGINT");
  const exit = await npmExited;
  const out = output();
  assert.equal(exit.signal, null, `killed by ${exit.signal}: ${out}`);
  assert.match(out, /sim: interrupted, stopped early/);
  assert.match(out, /verdict/);
  npmGroup = undefined;
});
