/** Starts bench/engine/sim-process.ts (the engine simulator in its own process) and reads back its URL. */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";

export interface SimProcess {
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** `answerTokens`: the natural length of every answer; a request's `max_tokens` below it cuts it shorter. */
export async function startSimProcess(timeScale: number, answerTokens: number): Promise<SimProcess> {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", new URL("./sim-process.ts", import.meta.url).pathname, String(timeScale), String(answerTokens)],
    { stdio: ["pipe", "pipe", "inherit"] },
  );
  const lines = createInterface({ input: child.stdout! });
  const [line] = (await once(lines, "line")) as [string];
  const { url } = JSON.parse(line) as { url: string };
  return {
    url,
    child,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      await once(child, "exit");
    },
  };
}
