/**
 * The machine a benchmark ran on, printed with every suite's tables (its figures mean little without it) and kept in
 * the JSON results: cores, CPU model, memory, Node, load average.
 */
import { execFileSync } from "node:child_process";
import os from "node:os";

export interface Machine {
  nproc: number;
  cpuModel: string;
  memoryBytes: number;
  node: string;
  platform: string;
  /** The first lines of `lscpu`; "" where it is not installed. */
  lscpu: string;
  loadAverage: number[];
}

export function describeMachine(): Machine {
  let lscpu = "";
  try {
    lscpu = execFileSync("lscpu", { encoding: "utf8" }).split("\n").slice(0, 10).join("\n");
  } catch {
    // lscpu is optional; the rest still describes the run.
  }
  return {
    nproc: os.availableParallelism(),
    cpuModel: /Model name:\s+(.*)/.exec(lscpu)?.[1] ?? os.cpus()[0]?.model ?? "unknown",
    memoryBytes: os.totalmem(),
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
    lscpu,
    loadAverage: os.loadavg(),
  };
}

/** `2 x AMD EPYC ..., 3.8 GiB, node v20.20.2, load 0.1 0.4 1.4`: the one line a suite prints before its tables. */
export function machineLine(m: Machine = describeMachine()): string {
  const load = m.loadAverage.map((l) => l.toFixed(1)).join(" ");
  return `${m.nproc} x ${m.cpuModel}, ${(m.memoryBytes / 2 ** 30).toFixed(1)} GiB, node ${m.node}, load ${load}`;
}
