/**
 * The servers under test, each in its own process so its CPU and RSS can be read from /proc: the bridge
 * (`agent-bridge start`, as an operator runs it), plain aedes (aedes-server.ts) and mosquitto when installed.
 */
import { type ChildProcess, spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import readline from "node:readline";
import type { Cleanup } from "./cleanup.ts";
import { inspectorUrlIn } from "./inspector-gc.ts";

const ROOT = path.resolve(import.meta.dirname, "../..");
const BIN = path.join(ROOT, "bin/agent-bridge.js");
export const MOSQUITTO = "/usr/sbin/mosquitto";

/** The brokers the benchmarks start; "relay-floor" is the engine benchmark's bare relay (bench/engine/relay-floor.ts). */
export type TargetName = "bridge" | "aedes" | "mosquitto" | "relay-floor";

/** A running server. */
export interface Target {
  readonly name: TargetName;
  readonly pid: number;
  readonly host: string;
  readonly port: number;
  /** The bridge's operator HTTP base URL. */
  readonly apiUrl?: string;
  /** The inspector's URL when the process was started with `--inspect=127.0.0.1:0` (bridge only). */
  inspectorUrl?(): string | undefined;
  /** Resolves with the exit code or signal name. */
  readonly exited: Promise<number | string>;
  /** Sends `signal` (SIGTERM by default), waits for the exit (SIGKILL after `graceMs`). */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<number | string>;
}

function track(child: ChildProcess, cleanup: Cleanup): Promise<number | string> {
  cleanup.process(child);
  return new Promise((resolve) => child.once("exit", (code, signal) => resolve(code ?? signal ?? "unknown")));
}

function stopper(child: ChildProcess, exited: Promise<number | string>) {
  return async (signal: NodeJS.Signals = "SIGTERM", graceMs = 20_000): Promise<number | string> => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    const result = await exited;
    clearTimeout(timer);
    return result;
  };
}

/** Resolves with the first stdout line `pick` accepts; rejects when the process exits first or after `timeoutMs`. */
function waitForLine<T>(
  child: ChildProcess,
  exited: Promise<number | string>,
  timeoutMs: number,
  pick: (line: string) => T | undefined,
  what: string,
): Promise<T> {
  return new Promise((resolve, reject) => {
    let stderr = "";
    child.stderr?.on("data", (chunk: Buffer) => {
      stderr = (stderr + chunk.toString("utf8")).slice(-4000);
    });
    const timer = setTimeout(
      () => reject(new Error(`${what} did not start within ${timeoutMs} ms: ${stderr}`)),
      timeoutMs,
    );
    if (child.stdout) {
      readline.createInterface({ input: child.stdout }).on("line", (line) => {
        const found = pick(line);
        if (found !== undefined) {
          clearTimeout(timer);
          resolve(found);
        }
      });
    }
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${code}) before it started: ${stderr}`));
    });
  });
}

/** Node flags given on a benchmark's command line as one space-separated argument (`--node-flags "A B"`). */
export function nodeFlagsOption(text: string): string[] {
  return text.split(" ").filter((flag) => flag !== "");
}

/** Options of {@link startBridge}. */
export interface BridgeStartOptions {
  dataDir: string;
  /** JSON config file (limits, idle timeout). */
  configFile: string;
  apiToken: string;
  anonymous: boolean;
  /** Node flags before the script (e.g. --cpu-prof, or a V8 option whose effect is measured). */
  nodeFlags?: string[];
  /** The bridge's entry script; default this checkout's bin/agent-bridge.js (another build's, to compare two). */
  bin?: string;
}

/**
 * `agent-bridge start` on 127.0.0.1 as `npm start` runs it (plus `nodeFlags`), ports picked by the OS, read back from
 * its "bridge started" log line.
 */
export async function startBridge(options: BridgeStartOptions, cleanup: Cleanup): Promise<Target> {
  const args = [
    ...(options.nodeFlags ?? []),
    options.bin ?? BIN,
    "start",
    "--data-dir",
    options.dataDir,
    "--config",
    options.configFile,
    "--host",
    "127.0.0.1",
    "--mqtt-port",
    "0",
    "--http-port",
    "0",
    ...(options.anonymous ? ["--allow-anonymous"] : []),
  ];
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, BRIDGE_API_TOKEN: options.apiToken },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = track(child, cleanup);
  let inspector: string | undefined;
  let stderrHead = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    if (inspector !== undefined || stderrHead.length > 8000) return;
    stderrHead += chunk.toString("utf8");
    inspector = inspectorUrlIn(stderrHead);
  });
  const ports = await waitForLine(
    child,
    exited,
    60_000,
    (line) => {
      try {
        const parsed = JSON.parse(line) as {
          msg?: string;
          addresses?: { mqtt: { port: number }; http: { port: number } };
        };
        return parsed.msg === "bridge started" && parsed.addresses ? parsed.addresses : undefined;
      } catch {
        return undefined;
      }
    },
    "the bridge",
  );
  // Keep draining stdout so a chatty log never blocks the bridge on a full pipe.
  child.stdout?.resume();
  return {
    name: "bridge",
    pid: child.pid ?? 0,
    host: "127.0.0.1",
    port: ports.mqtt.port,
    apiUrl: `http://127.0.0.1:${ports.http.port}`,
    inspectorUrl: () => inspector,
    exited,
    stop: stopper(child, exited),
  };
}

/** Plain aedes over net (aedes-server.ts). */
export function startAedes(cleanup: Cleanup): Promise<Target> {
  return startScriptTarget("aedes", path.join(import.meta.dirname, "aedes-server.ts"), [], cleanup);
}

/**
 * A broker made of one TypeScript script run through tsx, which prints `{"port": N}` once it listens on 127.0.0.1
 * and stops on SIGTERM (aedes-server.ts, bench/engine/relay-floor.ts).
 */
export async function startScriptTarget(
  name: TargetName,
  script: string,
  args: readonly string[],
  cleanup: Cleanup,
): Promise<Target> {
  const child = spawn(process.execPath, ["--import", "tsx", script, ...args], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = track(child, cleanup);
  const port = await waitForLine(
    child,
    exited,
    30_000,
    (line) => {
      try {
        return (JSON.parse(line) as { port?: number }).port;
      } catch {
        return undefined;
      }
    },
    name,
  );
  return { name, pid: child.pid ?? 0, host: "127.0.0.1", port, exited, stop: stopper(child, exited) };
}

/** A free TCP port on 127.0.0.1 (mosquitto cannot listen on port 0 and report it). */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (!address || typeof address !== "object") throw new Error("no free port");
  return address.port;
}

async function waitForPort(port: number, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host: "127.0.0.1", port }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.on("error", () => resolve(false));
    });
    if (ok) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

/** mosquitto with a temp config (one listener on 127.0.0.1, anonymous, no persistence); undefined when not installed. */
export async function startMosquitto(cleanup: Cleanup): Promise<Target | undefined> {
  if (!fs.existsSync(MOSQUITTO)) return undefined;
  const dir = cleanup.tempDir("bench-fleet-mosq-");
  const port = await freePort();
  const config = path.join(dir, "mosquitto.conf");
  fs.writeFileSync(
    config,
    [
      `listener ${port} 127.0.0.1`,
      "allow_anonymous true",
      "persistence false",
      "log_dest stderr",
      "log_type error",
      "max_connections -1",
      "",
    ].join("\n"),
  );
  const child = spawn(MOSQUITTO, ["-c", config], { stdio: ["ignore", "ignore", "pipe"] });
  child.stderr?.resume();
  const exited = track(child, cleanup);
  if (!(await waitForPort(port, 10_000))) {
    child.kill("SIGKILL");
    throw new Error("mosquitto did not open its port within 10 s");
  }
  return { name: "mosquitto", pid: child.pid ?? 0, host: "127.0.0.1", port, exited, stop: stopper(child, exited) };
}
