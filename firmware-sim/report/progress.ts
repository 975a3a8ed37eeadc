/**
 * The live progress line on stderr. On a terminal it rewrites one line in place every second; otherwise (CI logs,
 * files) it prints a plain line every `plainIntervalMs`, so logs stay readable.
 */
import type { FleetStats } from "../stats.ts";
import { formatProgress } from "./format.ts";

/** Where progress goes: a stream-like object (process.stderr in the CLI). */
export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
}

/** Starts printing; returns a function that stops it (and ends the in-place line). */
export function startProgress(
  stream: ProgressStream,
  stats: () => FleetStats,
  plainIntervalMs = 5000,
  ttyIntervalMs = 1000,
): () => void {
  const tty = stream.isTTY === true;
  const timer = setInterval(
    () => {
      const line = formatProgress(stats());
      stream.write(tty ? `\r\x1b[2K${line}` : `${line}\n`);
    },
    tty ? ttyIntervalMs : plainIntervalMs,
  );
  return () => {
    clearInterval(timer);
    if (tty) stream.write("\r\x1b[2K");
  };
}

/**
 * Writes one log line while the progress line may be showing: on a terminal the in-place line is cleared first (the
 * next tick redraws it), so the two do not run into one another.
 */
export function writeLogLine(stream: ProgressStream, line: string): void {
  stream.write(`${stream.isTTY === true ? "\r\x1b[2K" : ""}${line}\n`);
}
