/**
 * Server-side resource figures read from /proc, so every target (the bridge, aedes, mosquitto) is measured the same
 * way from outside, without instrumenting it: CPU time from /proc/PID/stat (utime + stime) and RSS from
 * /proc/PID/status.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";

/** CPU and memory of one process at one moment. */
export interface ProcSample {
  /** utime + stime, seconds. */
  cpuSeconds: number;
  /** Resident set size now, bytes. */
  rssBytes: number;
  /** Peak resident set size so far (VmHWM), bytes. */
  peakRssBytes: number;
  /** Resident anonymous memory (heaps, malloc), bytes. */
  rssAnonBytes: number;
  /** Resident file-backed and shared memory (mapped code, mmapped files), bytes. */
  rssFileBytes: number;
}

let ticksPerSecond: number | undefined;

/** Clock ticks per second of /proc/PID/stat times (`getconf CLK_TCK`, 100 on Linux almost everywhere). */
function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** Reads the sample of `pid`; undefined once the process is gone. */
export function sampleProcess(pid: number): ProcSample | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces and parentheses: fields are counted after its closing one.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
    return {
      cpuSeconds: (utime + stime) / clockTicks(),
      rssBytes: statusKb(status, "VmRSS") * 1024,
      peakRssBytes: statusKb(status, "VmHWM") * 1024,
      rssAnonBytes: statusKb(status, "RssAnon") * 1024,
      rssFileBytes: (statusKb(status, "RssFile") + statusKb(status, "RssShmem")) * 1024,
    };
  } catch {
    return undefined;
  }
}

function statusKb(status: string, key: string): number {
  const match = new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status);
  return match ? Number(match[1]) : 0;
}
