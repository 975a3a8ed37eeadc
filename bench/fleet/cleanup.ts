/**
 * Everything the benchmark starts (server and load processes, temp dirs) is registered here, so one call (also on
 * Ctrl-C, an uncaught error or the overall deadline) kills what is left and removes every temp dir.
 */
import type { ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

export class Cleanup {
  readonly #children = new Set<ChildProcess>();
  readonly #dirs = new Set<string>();

  /** Tracks a child until it exits. */
  process(child: ChildProcess): void {
    this.#children.add(child);
    child.once("exit", () => this.#children.delete(child));
  }

  /** A new temp dir, removed at the end. */
  tempDir(prefix: string): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    this.#dirs.add(dir);
    return dir;
  }

  removeDir(dir: string): void {
    fs.rmSync(dir, { recursive: true, force: true });
    this.#dirs.delete(dir);
  }

  /**
   * Makes sure nothing outlives the benchmark: cleans up when the process exits or is interrupted (exit code 130),
   * and after `deadlineMs` says so through `log` and exits with 1. The deadline timer does not keep the process alive;
   * the returned function disarms it once the work is done.
   */
  guardProcess(label: string, deadlineMs: number, log: (line: string) => void): () => void {
    const deadline = setTimeout(() => {
      log(`${label}: deadline of ${deadlineMs / 1000} s passed, stopping`);
      this.all();
      process.exit(1);
    }, deadlineMs);
    deadline.unref();
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      process.once(signal, () => {
        this.all();
        process.exit(130);
      });
    }
    process.once("exit", () => this.all());
    return () => clearTimeout(deadline);
  }

  /** SIGKILLs every child still running (each by its own pid) and removes every temp dir. Synchronous: safe in exit handlers. */
  all(): void {
    for (const child of this.#children) {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    }
    this.#children.clear();
    for (const dir of this.#dirs) fs.rmSync(dir, { recursive: true, force: true });
    this.#dirs.clear();
  }
}
