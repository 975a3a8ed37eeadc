/**
 * The measuring loop both codec benchmarks share: contenders take turns in short slices of process CPU time, so a
 * change in machine load hits them alike, and each figure is a contender's total runs over its total CPU time.
 */
import { option } from "../cli-args.ts";

/** One unit of work; returns 1 when it succeeded, so a silent failure cannot pass for speed. */
export type Run = () => number;

/** Reads `--name N` from the command line; refuses anything but a positive number. */
export function positiveOption(name: string, fallback: number): number {
  const value = Number(option(name, String(fallback)));
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be a positive number`);
  return value;
}

/**
 * Runs `run` for about one slice of this process's CPU time; returns how many ran and the CPU time (ms) they took.
 * CPU time rather than wall time, so that being descheduled on a busy machine does not count against a contender.
 * Throws `failure` when any run did not return 1.
 */
export function slice(run: Run, sliceMs: number, failure: string): { n: number; ms: number } {
  let n = 0;
  let sink = 0;
  const start = process.cpuUsage();
  let ms = 0;
  while (ms < sliceMs) {
    for (let i = 0; i < 100; i++) sink += run();
    n += 100;
    const used = process.cpuUsage(start);
    ms = (used.user + used.system) / 1000;
  }
  if (sink !== n) throw new Error(failure);
  return { n, ms };
}

/** Options of {@link interleave}. */
export interface InterleaveOptions {
  /** Rounds in which every contender runs one slice. */
  slices: number;
  /** CPU time of one slice, in milliseconds. */
  sliceMs: number;
  /** Message of the error thrown when a run fails. */
  failure: string;
}

/**
 * Warms every contender up (2,000 runs, for the JIT), then runs them in turn, one slice each, `slices` times; adds
 * the runs and CPU time of each into its `n` and `ms`.
 */
export function interleave(runs: { run: Run; n: number; ms: number }[], options: InterleaveOptions): void {
  for (const r of runs) for (let i = 0; i < 2000; i++) r.run();
  for (let i = 0; i < options.slices; i++) {
    for (const r of runs) {
      const done = slice(r.run, options.sliceMs, options.failure);
      r.n += done.n;
      r.ms += done.ms;
    }
  }
}
