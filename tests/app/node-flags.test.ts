import assert from "node:assert/strict";
import { test } from "node:test";
import { memoryReducerOff } from "../../app/node-flags.ts";

test("memoryReducerOff reads the spellings V8 takes, the last one winning", () => {
  assert.equal(memoryReducerOff([]), false);
  assert.equal(memoryReducerOff(["--import", "tsx"]), false);
  assert.equal(memoryReducerOff(["--no-memory-reducer"]), true);
  assert.equal(memoryReducerOff(["--no_memory_reducer"]), true);
  assert.equal(memoryReducerOff(["--nomemory-reducer"]), true);
  assert.equal(memoryReducerOff(["--memory-reducer=false"]), true);
  assert.equal(memoryReducerOff(["--no-memory-reducer", "--memory-reducer"]), false);
  assert.equal(memoryReducerOff(["--memory-reducer", "--no-memory-reducer"]), true);
  // Other flags that merely contain the name say nothing about it.
  assert.equal(memoryReducerOff(["--memory-reducer-for-small-heaps", "--no-memory-reducer-single-gc"]), false);
});

test("this process's own flags are read by default", () => {
  assert.equal(memoryReducerOff(), memoryReducerOff(process.execArgv));
});
