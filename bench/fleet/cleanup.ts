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
