/**
 * Another build of this repository to measure against in the same run: the files of a git commit extracted into a
 * temp dir (`git archive`, so the repository's worktrees and index are left alone), with this checkout's
 * node_modules linked in, so both builds run on the same dependencies.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import type { Cleanup } from "./cleanup.ts";

/** The commit `ref` names, as a full hash: what the report prints, so a run says what its baseline was. */
export function resolveCommit(repoRoot: string, ref: string): string {
  return execFileSync("git", ["-C", repoRoot, "rev-parse", "--verify", `${ref}^{commit}`], { encoding: "utf8" }).trim();
}

/** Extracts `commit` into a temp dir (removed by `cleanup`) and returns the dir. */
export function extractBaseline(repoRoot: string, commit: string, cleanup: Cleanup): string {
  const dir = cleanup.tempDir("bench-baseline-");
  const tar = execFileSync("git", ["-C", repoRoot, "archive", "--format=tar", commit], { maxBuffer: 512 * 2 ** 20 });
  execFileSync("tar", ["-x", "-C", dir], { input: tar });
  fs.symlinkSync(fs.realpathSync(path.join(repoRoot, "node_modules")), path.join(dir, "node_modules"));
  return dir;
}
