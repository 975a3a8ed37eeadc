/**
 * Starts the bridge the way a user does (`node bin/agent-bridge.js start`) in a child process, on ports 0 and a
 * temporary data directory, and reads the real ports from its "bridge started" log line.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after } from "node:test";
import { fileURLToPath } from "node:url";
import { Agent, fetch } from "undici";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
export const BIN = path.join(ROOT, "bin/agent-bridge.js");
/** The operator token the tests configure (BRIDGE_API_TOKEN). */
export const TEST_API_TOKEN = "e2e-operator-token-0123456789";

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

export interface BridgeProcess {
  readonly child: ChildProcess;
  readonly dataDir: string;
  readonly mqttPort: number;
  readonly httpPort: number;
  /** Every listener's address from the start line (mqtt, mqtts, http). */
  readonly addresses: Record<string, { host: string; port: number }>;
  readonly logs: LogLine[];
  /** Raw stderr text. */
  stderr(): string;
  /** Resolves with the exit code (or the signal name) once the process ended. */
  exited: Promise<number | string>;
  /** Sends `signal` and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<number | string>;
  /** GET/POST on the operator HTTP server with the test token. */
  api(method: string, urlPath: string, body?: unknown): Promise<{ status: number; body: unknown }>;
}

/**
 * One connection per API call. A kept-alive one is not safe here: runCli blocks this process (spawnSync) for seconds
 * under load, the bridge closes the idle connection meanwhile (its keep-alive timeout), and the next call, sent
 * before this process's timers noticed, fails with "other side closed".
 */
const freshConnections = new Agent({ pipelining: 0 });

/** Bridges this test process started and that still run; killed if the test process ends first (a timeout). */
const children = new Set<ChildProcess>();
let reaperInstalled = false;

function installReaper(): void {
  if (reaperInstalled) return;
  reaperInstalled = true;
  const reap = () => {
    for (const child of children) child.kill("SIGKILL");
  };
  process.once("exit", reap);
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    process.once(signal, () => {
      reap();
      process.exit(1);
    });
  }
}

export function makeTempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** What a suite starts that its end must clean up (see {@link suiteCleanup}). */
export interface SuiteCleanup {
  /** A temporary directory, removed after the suite. */
  tempDir(prefix: string): string;
  /** Bridge processes the suite started; those still here after it are killed (SIGKILL). */
  readonly running: BridgeProcess[];
}

/** Registers, once at the top of a test file, the removal of its temporary directories and bridge processes. */
export function suiteCleanup(): SuiteCleanup {
  const dirs: string[] = [];
  const running: BridgeProcess[] = [];
  after(async () => {
    for (const b of running) await b.stop("SIGKILL");
    for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
  });
  return {
    tempDir(prefix) {
      const dir = makeTempDir(prefix);
      dirs.push(dir);
      return dir;
    },
    running,
  };
}

export interface StartOptions {
  dataDir: string;
  /** Extra flags after `start`. */
  args?: string[];
  env?: Record<string, string>;
  /** Longest wait for the start line. Default 60000 ms (a busy CI machine starts slowly). */
  timeoutMs?: number;
}

/** `start` arguments for a bridge on `dataDir` listening on loopback only, on ports the system picks by default. */
export function loopbackStartArgs(dataDir: string, mqttPort = 0): string[] {
  return ["start", "--data-dir", dataDir, "--host", "127.0.0.1", "--mqtt-port", String(mqttPort), "--http-port", "0"];
}

/** Spawns `agent-bridge start` and resolves once it logged its real addresses. */
export async function startBridgeProcess(options: StartOptions): Promise<BridgeProcess> {
  const args = [BIN, ...loopbackStartArgs(options.dataDir), ...(options.args ?? [])];
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, BRIDGE_API_TOKEN: TEST_API_TOKEN, ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  installReaper();
  children.add(child);
  child.once("exit", () => children.delete(child));
  const logs: LogLine[] = [];
  let stderrText = "";
  let stdoutRest = "";
  const exited = new Promise<number | string>((resolve) => {
    child.on("exit", (code, signal) => resolve(code ?? signal ?? "unknown"));
  });
  const started = new Promise<LogLine>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`bridge did not start in time; stderr: ${stderrText}; logs: ${JSON.stringify(logs)}`)),
      options.timeoutMs ?? 60_000,
    );
    child.stdout?.setEncoding("utf8");
    child.stdout?.on("data", (chunk: string) => {
      stdoutRest += chunk;
      const lines = stdoutRest.split("\n");
      stdoutRest = lines.pop() ?? "";
      for (const line of lines) {
        if (line.trim() === "") continue;
        try {
          const parsed = JSON.parse(line) as LogLine;
          logs.push(parsed);
          if (parsed.msg === "bridge started") {
            clearTimeout(timer);
            resolve(parsed);
          }
        } catch {
          logs.push({ level: 0, msg: line });
        }
      }
    });
    child.stderr?.setEncoding("utf8");
    child.stderr?.on("data", (chunk: string) => {
      stderrText += chunk;
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(
        new Error(`bridge exited (${code}) before it started; stderr: ${stderrText}; logs: ${JSON.stringify(logs)}`),
      );
    });
  });
  let line: LogLine;
  try {
    line = await started;
  } catch (err) {
    child.kill("SIGKILL");
    throw err;
  }
  const addresses = line.addresses as Record<string, { host: string; port: number }> & {
    mqtt: { port: number };
    http: { port: number };
  };
  const httpPort = addresses.http.port;
  return {
    child,
    dataDir: options.dataDir,
    mqttPort: addresses.mqtt.port,
    httpPort,
    addresses,
    logs,
    stderr: () => stderrText,
    exited,
    async stop(signal: NodeJS.Signals = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
    async api(method, urlPath, body) {
      const response = await fetch(`http://127.0.0.1:${httpPort}${urlPath}`, {
        dispatcher: freshConnections,
        method,
        headers: {
          authorization: `Bearer ${TEST_API_TOKEN}`,
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await response.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        // not JSON: keep the text
      }
      return { status: response.status, body: parsed };
    },
  };
}

/** Runs the CLI to completion (devices add/list/rm, config errors). */
export function runCli(
  args: string[],
  env: Record<string, string> = {},
): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [BIN, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    encoding: "utf8",
    timeout: 60_000,
  });
  const killed =
    result.signal === null ? "" : `killed by ${result.signal}${result.error ? ` (${result.error.message})` : ""}`;
  return { status: result.status, stdout: result.stdout, stderr: result.stderr + killed };
}

/** A child's stdout and stderr gathered as they come; `closed` resolves with its exit code once both have ended. */
export function gatherOutput(child: ChildProcess): {
  stdout(): string;
  stderr(): string;
  closed: Promise<number | null>;
} {
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (data: Buffer) => {
    stdout += data.toString();
  });
  child.stderr?.on("data", (data: Buffer) => {
    stderr += data.toString();
  });
  const closed = new Promise<number | null>((resolve) =>
    child.once("close", (status: number | null) => resolve(status)),
  );
  return { stdout: () => stdout, stderr: () => stderr, closed };
}

/**
 * runCli without blocking this process: for a CLI run that needs a server of the test's own (an engine simulator the
 * demo asks) to keep answering meanwhile.
 */
export async function runCliAsync(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const output = gatherOutput(spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...process.env, ...env } }));
  const status = await output.closed;
  return { status, stdout: output.stdout(), stderr: output.stderr() };
}

/** Provisions a device through the CLI and returns its secret. */
export function addDevice(dataDir: string, id: string, codec?: string): string {
  const result = runCli(["devices", "add", id, "--data-dir", dataDir, "--json", ...(codec ? ["--codec", codec] : [])]);
  if (result.status !== 0) {
    throw new Error(`devices add ${id} failed (status ${result.status}): ${result.stderr} ${result.stdout}`);
  }
  return (JSON.parse(result.stdout) as { secret: string }).secret;
}

/** Sum of every sample of metric `name` in a Prometheus text exposition (0 when absent). */
export function metricSum(exposition: string, name: string): number {
  let sum = 0;
  for (const line of exposition.split("\n")) {
    if (line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (match && match[1] === name) sum += Number(match[3]);
  }
  return sum;
}

/** Scrapes /metrics of a bridge process with the test token. */
export async function scrapeMetrics(bridge: BridgeProcess): Promise<string> {
  const response = await bridge.api("GET", "/metrics");
  if (response.status !== 200) throw new Error(`/metrics answered ${response.status}`);
  return String(response.body);
}
