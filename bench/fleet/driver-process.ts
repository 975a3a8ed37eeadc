/** The parent's side of the load generator: spawns driver.ts and exchanges one command for one reply. */
import { type ChildProcess, spawn } from "node:child_process";
import path from "node:path";
import readline from "node:readline";
import type { CloseReply, ConnectCommand, ConnectReply, DriverCommand, DriverReply, RunCommand, RunReply } from "./driver-protocol.ts";
import type { Cleanup } from "./cleanup.ts";

export interface DriverProcess {
  readonly pid: number;
  connect(command: Omit<ConnectCommand, "op">): Promise<ConnectReply>;
  run(command: Omit<RunCommand, "op">): Promise<RunReply>;
  /** DISCONNECTs every device, then ends the process. */
  close(): Promise<void>;
}

/** Starts a load-generator process; it is registered with `cleanup` so it dies with the benchmark. */
export function startDriver(cleanup: Cleanup): DriverProcess {
  const child: ChildProcess = spawn(process.execPath, ["--import", "tsx", path.join(import.meta.dirname, "driver.ts")], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  cleanup.process(child);
  const waiting: Array<(reply: DriverReply) => void> = [];
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  void exited.then(() => {
    for (const w of waiting.splice(0)) w({ op: "error", message: "load generator exited" });
  });
  if (!child.stdout || !child.stdin || child.pid === undefined) throw new Error("load generator did not start");
  readline.createInterface({ input: child.stdout }).on("line", (line) => {
    let parsed: DriverReply;
    try {
      parsed = JSON.parse(line) as DriverReply;
    } catch {
      return; // not a reply (a stray log line)
    }
    waiting.shift()?.(parsed);
  });
  const stdin = child.stdin;
  function send<R extends DriverReply>(command: DriverCommand): Promise<R> {
    return new Promise((resolve, reject) => {
      waiting.push((reply) => {
        if (reply.op === "error") reject(new Error(`load generator: ${reply.message}`));
        else resolve(reply as R);
      });
      stdin.write(`${JSON.stringify(command)}\n`);
    });
  }
  return {
    pid: child.pid,
    connect: (c) => send<ConnectReply>({ op: "connect", ...c }),
    run: (c) => send<RunReply>({ op: "run", ...c }),
    async close() {
      await Promise.race([send<CloseReply>({ op: "close" }).catch(() => undefined), exited]);
      stdin.end();
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
    },
  };
}
