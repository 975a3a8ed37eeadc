/**
 * What `agent-bridge` loads, read from its sources: every repository file reachable from `bin/agent-bridge.js` through
 * static and literal dynamic imports (every command's lazy `import("...")` included), the files those read beside
 * themselves (`new URL("./x", import.meta.url)`), and the packages they import. The deployment tests check a container
 * image against it: a folder its context leaves out, or a package `npm ci --omit=dev` leaves out, would fail there
 * only at run time.
 */
import { existsSync, readFileSync } from "node:fs";
import { builtinModules } from "node:module";
import path from "node:path";
import ts from "typescript";

export const REPO_ROOT = path.resolve(import.meta.dirname, "../../..");

export interface RuntimeImportGraph {
  /** Repository-relative paths (with `/`) of the modules and the files beside them that they read. */
  files: Set<string>;
  /** Package names imported by those modules (`pino`, `tsx`, `@scope/name`), node's built-ins left out. */
  packages: Set<string>;
}

const BUILTINS = new Set(builtinModules);
const BESIDE_URL = /new URL\(\s*["']([^"']+)["']\s*,\s*import\.meta\.url\s*\)/g;

/** The package a bare specifier names (`tsx/esm/api` -> `tsx`), or undefined for a built-in. */
export function packageOf(specifier: string): string | undefined {
  if (specifier.startsWith("node:")) return undefined;
  const parts = specifier.split("/");
  const name = specifier.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0];
  return BUILTINS.has(name) ? undefined : name;
}

/** Walks the imports from `entry` (repository-relative). */
export function runtimeImportGraph(entry = "bin/agent-bridge.js"): RuntimeImportGraph {
  const files = new Set<string>();
  const packages = new Set<string>();
  const pending = [path.join(REPO_ROOT, entry)];
  while (pending.length > 0) {
    const file = pending.pop() as string;
    const relative = path.relative(REPO_ROOT, file).split(path.sep).join("/");
    if (files.has(relative)) continue;
    files.add(relative);
    if (!/\.[cm]?[jt]s$/.test(file)) continue;
    const text = readFileSync(file, "utf8");
    for (const { fileName: specifier } of ts.preProcessFile(text, true, true).importedFiles) {
      if (!specifier.startsWith(".")) {
        const name = packageOf(specifier);
        if (name !== undefined) packages.add(name);
        continue;
      }
      const target = path.resolve(path.dirname(file), specifier);
      if (!existsSync(target)) throw new Error(`${relative} imports ${specifier}, which does not exist`);
      pending.push(target);
    }
    for (const match of text.matchAll(BESIDE_URL)) {
      const target = path.resolve(path.dirname(file), match[1]);
      // A folder read as a whole (the dashboard's static files) counts as the folder.
      if (existsSync(target)) files.add(path.relative(REPO_ROOT, target).split(path.sep).join("/"));
    }
  }
  return { files, packages };
}
