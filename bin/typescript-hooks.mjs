// Module hooks that load the bridge's own TypeScript sources: each .ts file of this package (not of its
// node_modules) is transformed by esbuild (types removed, nothing else rewritten) when it is first imported.
// Registered by bin/register-loaders.mjs after tsx, which loads everything else: an operator's agent class modules
// (.ts, .mts, `./x.js` imports of `x.ts` and the rest of what tsx resolves).
//
// Why not tsx's own register(), which the tests and benchmarks use: tsx runs esbuild with `keepNames`, which wraps
// every named function and class in a `__name(fn, "name")` call so that minified code keeps its names. Nothing here is
// minified, so names are kept anyway, and those calls run each time a closure is made: on the reasoning path they
// were 0.13-0.16 ms of the bridge's added first-chunk latency at one device (docs/benchmarks.md, "Session 13").
// The transform is otherwise tsx's: the same esbuild, the project's TypeScript settings, inline source maps.
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { transform } from "esbuild";

/** The tsconfig.json settings that change what esbuild emits (the rest only concern type checking). */
const TSCONFIG = Object.freeze({
  compilerOptions: { verbatimModuleSyntax: true, useDefineForClassFields: true, target: "ES2022" },
});

/** This package's directory, as the prefix of its files' URLs. */
const PACKAGE_ROOT = new URL("../", import.meta.url).href;

/** Whether `url` is one of the bridge's own TypeScript sources. */
function isOwnSource(url) {
  return url.startsWith(PACKAGE_ROOT) && url.endsWith(".ts") && !url.includes("/node_modules/", PACKAGE_ROOT.length);
}

/** Node's `load` hook: the bridge's own sources are transformed here; everything else goes on to tsx and Node. */
export async function load(url, context, nextLoad) {
  if (!isOwnSource(url)) return nextLoad(url, context);
  const file = fileURLToPath(url);
  const { code } = await transform(await readFile(file, "utf8"), {
    loader: "ts",
    format: "esm",
    target: `node${process.versions.node}`,
    sourcemap: "inline",
    sourcefile: file,
    tsconfigRaw: TSCONFIG,
  });
  return { format: "module", source: code, shortCircuit: true };
}
