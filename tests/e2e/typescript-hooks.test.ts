/**
 * The module hooks the `agent-bridge` command runs with (bin/register-loaders.mjs): the bridge's own sources load
 * through bin/typescript-hooks.mjs, so no function of theirs is wrapped in esbuild's `__name` (the reason the command
 * does not load them through tsx), and a stack trace still points at the .ts source line. TypeScript outside the
 * package (an operator's agent class module) goes to tsx: tests/e2e/agent-classes.test.ts loads one.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import { makeTempDir, ROOT } from "./support/bridge-process.ts";

const url = (relative: string) => pathToFileURL(path.join(ROOT, relative)).href;
const BATCHER = "agents/device/reasoning/chunk-batcher.ts";
const REFUSAL = "flushBytes must be a number >= 1";

// esbuild's keepNames helper names each function and class through Object.defineProperty(fn, "name", ...): the
// runner counts such calls made for the bridge's functions, from before its sources load until after they ran.
const RUNNER = `import ${JSON.stringify(url("bin/register-loaders.mjs"))};
const defineProperty = Object.defineProperty;
let namings = 0;
Object.defineProperty = (target, key, descriptor) => {
  // tsx's own modules (node_modules) are bundled with keepNames too; only the bridge's count.
  if (key === "name" && typeof target === "function" && !new Error().stack.includes("/node_modules/")) namings++;
  return defineProperty(target, key, descriptor);
};
const { ChunkBatcher, chunkBatchOptions } = await import(${JSON.stringify(url(BATCHER))});
const emitted = [];
const batcher = new ChunkBatcher((update) => emitted.push(update));
batcher.push({ text: "hello" });
batcher.flush();
let stack = "";
try {
  chunkBatchOptions({ flushBytes: 0 });
} catch (err) {
  stack = err.stack;
}
console.log(JSON.stringify({ emitted, namings, stack }));
`;

describe("the command's module hooks", () => {
  let dir: string;
  before(() => {
    dir = makeTempDir("ab-ts-hooks-");
    fs.writeFileSync(path.join(dir, "runner.mjs"), RUNNER);
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("load the bridge's sources without __name wrappers, with stacks on .ts lines", () => {
    const result = spawnSync(process.execPath, [path.join(dir, "runner.mjs")], { cwd: ROOT, encoding: "utf8" });
    assert.equal(result.status, 0, result.stderr);
    const out = JSON.parse(result.stdout) as { emitted: unknown[]; namings: number; stack: string };
    assert.deepEqual(out.emitted, [{ text: "hello" }]);
    assert.equal(out.namings, 0, "functions were named at run time (esbuild keepNames)");
    const line =
      fs
        .readFileSync(path.join(ROOT, BATCHER), "utf8")
        .split("\n")
        .findIndex((l) => l.includes(REFUSAL)) + 1;
    assert.match(out.stack, new RegExp(`chunk-batcher\\.ts:${line}:`));
  });
});
